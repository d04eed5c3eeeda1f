"""A sweep on a Ray cluster (hydra-ray-launcher against an existing head node on 127.0.0.1) merges to
the same table as the same sweep on the joblib launcher: results depend neither on the launcher nor on
the workers. The head node is started by a fixture and every process it started is ended in teardown
(by session id: only processes of this test's own ``ray start``). Without ray (the `cluster` extra) the
tests are skipped, unless ``PNETSIM_REQUIRE_RAY=1`` (as in ``.ci/run``): then its absence is a failure."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import pandas as pd
import pytest

from experiments.aggregate import main as aggregate_main
from sim.sweep import verify

REPO = Path(__file__).resolve().parents[1]
#: the small sweep of tests/test_sweep.py (4 jobs, ~1 s each)
SWEEP = ["seed=1,2,3,4", "cohort.n=100", "output.figures=false"]
#: Ray 2.60 needs these for a head on loopback without token auth (docs/sweeps.md)
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
REQUIRE = "PNETSIM_REQUIRE_RAY"


def unavailable(reason: str):
    """Skip for a missing Ray, or fail when PNETSIM_REQUIRE_RAY=1 (CI must have it)."""
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{REQUIRE}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module", autouse=True)
def ray_installed():
    """Every test here needs ray and hydra-ray-launcher (the `cluster` extra)."""
    for module in ("ray", "hydra_plugins.hydra_ray_launcher"):
        if importlib.util.find_spec(module) is None:
            unavailable(f"{module} is not installed (install the `cluster` extra: pip install -e '.[cluster]')")


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_pids(sid: int) -> list[int]:
    """Ids of the live processes of session ``sid`` (the ``ray start`` we launched leads it)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if os.getsid(int(d.name)) == sid:
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def bin_script(name: str) -> str:
    """A console script of this interpreter's environment (``ray``, ``pnetsim``)."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else shutil.which(name) or name


class RayHead:
    """A ``ray start --head --block`` process of this test module and its address."""

    def __init__(self, proc: subprocess.Popen, address: str, log: Path):
        self.proc, self.address, self.log = proc, address, log

    def wait(self, timeout: float = 180) -> str:
        """Block until the head reports it is up; return its address (fail the test otherwise)."""
        deadline = time.monotonic() + timeout
        while "Ray runtime started" not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start did not come up (exit {self.proc.poll()}):\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)
        return self.address


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head node on 127.0.0.1 (2 CPUs, its own temp dir and free ports), started without waiting
    (the test calls ``wait()``, so the start overlaps other set-up); every process of its session is
    ended in teardown."""
    if not Path("/proc").is_dir():
        unavailable("the Ray test ends its processes by session id via /proc (Linux)")
    temp = tempfile.mkdtemp(prefix="pnray", dir="/tmp")      # short: Ray's socket paths must fit 107 bytes
    port = free_port()
    cmd = [bin_script("ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
           "--num-cpus=2", f"--temp-dir={temp}", "--include-dashboard=false", "--disable-usage-stats",
           f"--ray-client-server-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
           f"--dashboard-agent-grpc-port={free_port()}", f"--metrics-export-port={free_port()}",
           f"--runtime-env-agent-port={free_port()}", f"--node-manager-port={free_port()}",
           f"--object-manager-port={free_port()}"]
    log = Path(temp) / "ray_start.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=os.environ | RAY_ENV,
                                start_new_session=True)
    try:
        yield RayHead(proc, f"127.0.0.1:{port}", log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)          # --block: ray start stops the processes it started
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + 10
        while session_pids(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in session_pids(proc.pid):            # anything left of our own session, by id
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        shutil.rmtree(temp, ignore_errors=True)


def run_sweep(root: Path, *extra: str, env=None) -> None:
    """``pnetsim -m <SWEEP> output.root=<root> <extra>``; fails the test on a non-zero exit."""
    r = subprocess.run([bin_script("pnetsim"), "-m", *SWEEP, f"output.root={root}", *extra], cwd=root.parent,
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]


def merged(root: Path) -> pd.DataFrame:
    folder = root / "default" / "sweeps" / "default"
    assert aggregate_main([str(folder), "-q"]) == 0
    return pd.read_parquet(folder / "sweep_summary.parquet")


@pytest.fixture(scope="module")
def joblib_reference(tmp_path_factory) -> pd.DataFrame:
    """The merged table of the 4-job sweep on the joblib launcher. The sweep lives in the session's
    base temp folder, shared with tests/test_sweep.py: whichever file runs second finds the four jobs
    complete and reuses them."""
    root = tmp_path_factory.getbasetemp() / "joblib-sweep-reference" / "out"
    root.parent.mkdir(exist_ok=True)
    folder = root / "default" / "sweeps" / "default"
    jobs = [p for p in folder.iterdir() if not p.name.startswith(".") and p.is_dir()] if folder.is_dir() else []
    if len(jobs) != 4 or any(verify(p) is not None for p in jobs):
        run_sweep(root, "hydra/launcher=joblib")
    return merged(root)


def test_the_ray_cluster_launcher_config_is_the_plugin_config_fixed_for_an_existing_cluster(monkeypatch):
    """hydra/launcher=ray_cluster composes to the plugin's ray launcher with object_store_memory null and
    the address from RAY_ADDRESS, i.e. to ``hydra/launcher=ray +...object_store_memory=null ...address=``."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6399")
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        mine = compose("config", ["hydra/launcher=ray_cluster"], return_hydra_config=True).hydra.launcher
        plugin = compose("config", ["hydra/launcher=ray", "+hydra.launcher.ray.init.object_store_memory=null",
                                    "hydra.launcher.ray.init.address=127.0.0.1:6399"],
                         return_hydra_config=True).hydra.launcher
    assert OmegaConf.to_container(mine, resolve=True) == OmegaConf.to_container(plugin, resolve=True)
    assert mine.ray.init.object_store_memory is None and mine._target_.endswith("RayLauncher")


def test_a_ray_cluster_sweep_merges_like_the_joblib_sweep(ray_head, joblib_reference, tmp_path):
    """The 4-job sweep on a Ray head node (hydra/launcher=ray_cluster) gives the joblib sweep's merged
    table, row for row."""
    address = ray_head.wait()
    root = tmp_path / "out"
    run_sweep(root, "hydra/launcher=ray_cluster", f"hydra.launcher.ray.init.address={address}",
              env=os.environ | RAY_ENV)
    got = merged(root)
    assert got["job"].nunique() == 4
    pd.testing.assert_frame_equal(got, joblib_reference)
