"""A sweep on SLURM (``hydra/launcher=slurm``: hydra-submitit-launcher's ``submitit_slurm`` with the
project's defaults) merges to the same table as the same sweep on the joblib launcher, and a sweep one of
whose array tasks SLURM cancels ends with an error, after which re-running the same command redoes only
the cancelled job.

Needs a SLURM cluster with accounting that this machine can submit to and whose jobs see this machine's
temporary folder, i.e. the one-node cluster of ``.ci/slurm-up`` (then ``. /tmp/pnetsim-slurm/env``
exports ``SLURM_CONF``). Without one the tests are
skipped, unless ``PNETSIM_REQUIRE_SLURM=1`` (as in ``.ci/run``): then its absence is a failure. Every
SLURM job the tests submit carries a job name unique to this module; teardown cancels whatever of them
is left and waits until the queue holds none of them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from experiments.aggregate import main as aggregate_main
from sim.sweep import MARKER, verify

REPO = Path(__file__).resolve().parents[1]
#: the small sweep of tests/test_sweep.py (4 jobs, ~1 s each after a ~4 s start)
SWEEP = ["seed=1,2,3,4", "cohort.n=100", "output.figures=false"]
#: per-job settings small enough for a one-node test cluster
LAUNCHER = ["hydra/launcher=slurm", "hydra.launcher.timeout_min=10", "hydra.launcher.mem_gb=1"]
REQUIRE = "PNETSIM_REQUIRE_SLURM"
COMMANDS = ("sinfo", "sbatch", "squeue", "sacct", "scancel", "scontrol")


def unavailable(reason: str):
    """Skip for a missing SLURM, or fail when PNETSIM_REQUIRE_SLURM=1 (CI must have it)."""
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{REQUIRE}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def slurm_cmd(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)


def bin_script(name: str) -> str:
    """A console script of this interpreter's environment (``pnetsim``)."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else shutil.which(name) or name


@pytest.fixture(scope="module")
def slurm():
    """A reachable SLURM with a node that takes jobs and with accounting (slurmdbd), else skip/fail.

    Accounting is required: without it submitit never learns that a job died without a result and
    the killed-job test would wait forever.
    """
    if importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None:
        unavailable("hydra-submitit-launcher is not installed (pip install -e '.[cluster]')")
    missing = [c for c in COMMANDS if shutil.which(c) is None]
    if missing:
        unavailable(f"no SLURM here: {', '.join(missing)} not on PATH (.ci/slurm-up starts one)")
    conf = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf"))
    if not conf.is_file():
        unavailable(f"no SLURM configuration {conf} (set SLURM_CONF; `. /tmp/pnetsim-slurm/env` after .ci/slurm-up)")
    try:
        nodes = slurm_cmd("sinfo", "-h", "-N", "-o", "%t")
        config = slurm_cmd("scontrol", "show", "config")
    except subprocess.TimeoutExpired:
        unavailable("SLURM does not answer within 30 s (is slurmctld running? is SLURM_CONF set?)")
    states = set(nodes.stdout.split())     # exact: "idle*" (not responding), "drain", "down" do not count
    if nodes.returncode != 0 or not states & {"idle", "mix", "alloc", "comp"}:
        unavailable(f"SLURM has no node taking jobs (sinfo exit {nodes.returncode}: "
                    f"{(nodes.stdout + nodes.stderr).strip()[-300:]!r}; SLURM_CONF={os.environ.get('SLURM_CONF')})")
    acct = [ln.split("=", 1)[1].strip() for ln in config.stdout.splitlines()
            if ln.startswith("AccountingStorageType")]
    if acct != ["accounting_storage/slurmdbd"]:
        unavailable(f"SLURM runs without slurmdbd accounting (AccountingStorageType={acct}); .ci/slurm-up has it")


@pytest.fixture(scope="module")
def job_names(slurm):
    """Make SLURM job names unique to this module; teardown cancels those jobs and waits until none is queued."""
    made: list[str] = []

    def new() -> str:
        made.append(f"pnetsim-test-{uuid.uuid4().hex[:10]}")
        return made[-1]

    yield new
    for name in made:
        slurm_cmd("scancel", f"--name={name}")
    deadline = time.monotonic() + 120
    while any(queued(n) for n in made):
        if time.monotonic() > deadline:
            pytest.fail(f"SLURM jobs {made} still queued 120 s after scancel")
        time.sleep(0.5)


def queued(name: str) -> list[str]:
    """Job ids of ``name`` still in the queue (pending, running or completing)."""
    return slurm_cmd("squeue", "-h", f"--name={name}", "-o", "%i").stdout.split()


def wait_until_drained(name: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while queued(name):
        assert time.monotonic() < deadline, f"jobs named {name} still queued after {timeout} s"
        time.sleep(0.5)


def task_states(name: str, expected: int, timeout: float = 60) -> dict[str, str]:
    """``{array task id: final state}`` of jobs named ``name`` from accounting, once all ``expected`` are final."""
    deadline = time.monotonic() + timeout
    while True:
        r = slurm_cmd("sacct", "-n", "-X", "-P", f"--name={name}", "-o", "JobID,State")
        states = dict(ln.split("|", 1) for ln in r.stdout.splitlines() if "|" in ln)
        states = {k: v.split()[0] for k, v in states.items()}
        if len(states) == expected and not {"PENDING", "RUNNING", "COMPLETING"} & set(states.values()):
            return states
        assert time.monotonic() < deadline, f"accounting of {name}: {states} (want {expected} final states)"
        time.sleep(1)


def pnetsim(root: Path, *extra: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``pnetsim -m <SWEEP> output.root=<root> <extra>`` (its own session, killed as a group on time-out)."""
    proc = subprocess.Popen([bin_script("pnetsim"), "-m", *SWEEP, f"output.root={root}", *extra], cwd=root.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"pnetsim did not finish within {timeout} s:\n{err[-3000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def sweep_dir(root: Path) -> Path:
    return root / "default" / "sweeps" / "default"


def visible_jobs(root: Path) -> list[str]:
    return sorted(p.name for p in sweep_dir(root).iterdir() if p.is_dir() and not p.name.startswith("."))


def merged(root: Path) -> pd.DataFrame:
    assert aggregate_main([str(sweep_dir(root)), "-q"]) == 0
    return pd.read_parquet(sweep_dir(root) / "sweep_summary.parquet")


def job_logs(folder: Path) -> str:
    """Everything the SLURM jobs of one submitit folder printed."""
    return "".join(p.read_text(errors="replace") for p in sorted(folder.glob("*/*_log.out")))


@pytest.fixture(scope="module")
def joblib_reference(tmp_path_factory) -> pd.DataFrame:
    """The merged table of the 4-job sweep on the joblib launcher, in the session's base temp folder shared
    with tests/test_sweep.py and tests/test_ray_sweep.py (whichever runs first computes it)."""
    root = tmp_path_factory.getbasetemp() / "joblib-sweep-reference" / "out"
    root.parent.mkdir(exist_ok=True)
    if not (sweep_dir(root).is_dir() and len(visible_jobs(root)) == 4
            and all(verify(sweep_dir(root) / k) is None for k in visible_jobs(root))):
        r = pnetsim(root, "hydra/launcher=joblib")
        assert r.returncode == 0, r.stderr[-3000:]
    return merged(root)


def test_the_slurm_launcher_config_is_the_plugin_config_with_the_documented_settings(monkeypatch):
    """hydra/launcher=slurm composes to submitit_slurm, changing only partition, cpus_per_task, mem_gb and
    array_parallelism (timeout_min is spelled out at the plugin's 60); the partition comes from
    PNETSIM_SLURM_PARTITION (default null)."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="hydra-submitit-launcher not installed")
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    def launcher(name: str) -> dict:
        with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
            cfg = compose("config", [f"hydra/launcher={name}"], return_hydra_config=True)
            return OmegaConf.to_container(cfg.hydra.launcher, resolve=False)

    monkeypatch.delenv("PNETSIM_SLURM_PARTITION", raising=False)
    mine, plugin = launcher("slurm"), launcher("submitit_slurm")
    changed = {k for k in plugin if mine[k] != plugin[k]}
    assert set(mine) == set(plugin) and mine["_target_"].endswith("SlurmLauncher")
    assert changed == {"partition", "cpus_per_task", "mem_gb", "array_parallelism"} and mine["timeout_min"] == 60
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        assert compose("config", ["hydra/launcher=slurm"], return_hydra_config=True).hydra.launcher.partition is None
        monkeypatch.setenv("PNETSIM_SLURM_PARTITION", "batch")
        assert compose("config", ["hydra/launcher=slurm"], return_hydra_config=True).hydra.launcher.partition == "batch"


def test_a_slurm_sweep_merges_like_the_joblib_sweep(slurm, job_names, joblib_reference, tmp_path):
    """The 4-job sweep submitted as one SLURM job array gives the joblib sweep's merged table, row for row,
    and SLURM's accounting shows the four array tasks completed."""
    root, name = tmp_path / "out", job_names()
    r = pnetsim(root, *LAUNCHER, f"hydra.launcher.name={name}")
    assert r.returncode == 0, r.stderr[-3000:]
    wait_until_drained(name)
    states = task_states(name, 4)
    assert sorted(states.values()) == ["COMPLETED"] * 4 and all("_" in k for k in states), states
    got = merged(root)
    assert got["job"].nunique() == 4
    pd.testing.assert_frame_equal(got, joblib_reference)


def test_a_job_cancelled_by_slurm_fails_the_sweep_and_a_rerun_redoes_only_that_job(slurm, job_names,
                                                                                   joblib_reference, tmp_path):
    """Array task 2 is cancelled by SLURM before it starts Python: the sweep exits non-zero naming the
    cancelled job, three jobs are complete and none is partial; the same command again computes only the
    missing job (three skipped, their markers untouched), and the merged table equals the joblib one."""
    root = tmp_path / "out"
    cancel = tmp_path / "cancel_task_2.sh"   # runs inside each job before Python (hydra.launcher.setup)
    cancel.write_text('if [ "$SLURM_ARRAY_TASK_ID" = 2 ]; then\n'
                      '  scancel "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"; sleep 300\nfi\n')
    first = job_names()
    r = pnetsim(root, *LAUNCHER, f"hydra.launcher.name={first}", f"hydra.launcher.setup=['bash {cancel}']",
                f"hydra.launcher.submitit_folder={tmp_path}/submitit-first/%j")
    assert r.returncode != 0
    assert "UncompletedJobError" in r.stderr and "CANCELLED" in r.stderr, r.stderr[-3000:]
    wait_until_drained(first)           # the other tasks may still run when the submitter gives up
    states = task_states(first, 4)
    assert sorted(states.values()) == ["CANCELLED", "COMPLETED", "COMPLETED", "COMPLETED"], states
    done = visible_jobs(root)
    assert len(done) == 3 and all(verify(sweep_dir(root) / k) is None for k in done)
    assert not [p.name for p in sweep_dir(root).iterdir() if p.name.startswith(".")]
    mtimes = {k: (sweep_dir(root) / k / MARKER).stat().st_mtime_ns for k in done}

    second = job_names()
    r = pnetsim(root, *LAUNCHER, f"hydra.launcher.name={second}",
                f"hydra.launcher.submitit_folder={tmp_path}/submitit-second/%j")
    assert r.returncode == 0, r.stderr[-3000:]
    wait_until_drained(second)
    logs = job_logs(tmp_path / "submitit-second")
    assert logs.count("pnetsim: skipped") == 3 and all(f"skipped {k}:" in logs for k in done), logs[-3000:]
    assert len(visible_jobs(root)) == 4 and set(done) < set(visible_jobs(root))
    assert {k: (sweep_dir(root) / k / MARKER).stat().st_mtime_ns for k in done} == mtimes
    pd.testing.assert_frame_equal(merged(root), joblib_reference)
