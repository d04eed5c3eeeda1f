"""Resumable sweeps (sim/sweep.py, sim/runio.py, experiments/run.py, experiments/aggregate.py):
job keys and config hashes, the completion marker, skip logic, invalid and partial folders,
aggregation, and killed-then-resumed sweeps run through the ``pnetsim`` command line."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from experiments.aggregate import main as aggregate_main
from sim.errors import UserError
from sim.runio import atomic_run_dir, run_folder_name
from sim.sweep import (MARKER, MixedConfigError, SweepError, SweepJob, activate, active_job, aggregate, config_hash,
                       current_job, make_job, safe_name, skip_if_complete, verify)

REPO = Path(__file__).resolve().parents[1]
#: the small sweep every command-line test runs (4 jobs; ~1 s each after a ~4 s start)
SWEEP = ["seed=1,2,3,4", "cohort.n=100", "output.figures=false"]


def plain_config(**changes) -> dict:
    """A small resolved config of the shape the experiments write to manifest.json."""
    cfg = {"seed": 1, "cohort": {"n": 100, "source": None}, "model": {"frailty_rho": 0.3},
           "experiment": {"name": "default", "kind": "compare"},
           "output": {"root": "/tmp/unused", "figures": False, "progress": "auto"}}
    for path, value in changes.items():
        d = cfg
        *head, last = path.split("__")
        for k in head:
            d = d.setdefault(k, {})
        d[last] = value
    return cfg


def write_job(root: Path, plain: dict, overrides, sweep: str = "s", summary: pd.DataFrame | None = None) -> SweepJob:
    """Publish a job folder as an experiment would (manifest + summary.csv) with the sweep job active."""
    plain = json.loads(json.dumps(plain)) | {"output": plain["output"] | {"root": str(root)}}
    job = make_job(plain, overrides, sweep)
    if summary is None:
        summary = pd.DataFrame({"strategy": ["a", "b"], "value": [plain["seed"] + 0.5, plain["seed"] * 2.25]})
    with activate(job):
        with atomic_run_dir(run_folder_name(plain, None)) as tmp:
            summary.to_csv(tmp / "summary.csv", index=False)
            (tmp / "manifest.json").write_text(json.dumps({"config": plain}))
    return job


def dead_pid() -> int:
    """The id of a process that has exited."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ---------------------------------------------------------------------------------------------- keys, hashes

def test_config_hash_ignores_keys_that_cannot_change_results():
    """output.root, output.progress, sweep and hydra do not enter the hash; key order does not matter."""
    a = plain_config()
    b = plain_config(output__root="/elsewhere", output__progress=True, sweep__name="x", hydra__job="y")
    reordered = dict(reversed(list(a.items())))
    assert config_hash(a) == config_hash(b) == config_hash(reordered)
    assert re.fullmatch(r"[0-9a-f]{64}", config_hash(a))


def test_config_hash_changes_with_any_result_relevant_key():
    """The seed, a model parameter or output.figures change the hash."""
    base = config_hash(plain_config())
    for change in ({"seed": 2}, {"model__frailty_rho": 0.6}, {"output__figures": True}, {"cohort__n": 101}):
        assert config_hash(plain_config(**change)) != base, change


def test_config_hash_follows_the_content_of_the_cohort_file(tmp_path):
    """With cohort.source, editing the file (same path) changes the hash."""
    f = tmp_path / "cohort.csv"
    f.write_text("patient_id\n0\n")
    h1 = config_hash(plain_config(cohort__source=str(f)))
    f.write_text("patient_id\n1\n")
    assert config_hash(plain_config(cohort__source=str(f))) != h1


def test_job_key_is_the_canonical_overrides_and_the_hash_prefix(tmp_path):
    """Key = sorted overrides with resolved values (false, not False), output.root/sweep/hydra ones dropped."""
    plain = plain_config(output__root=str(tmp_path))
    job = make_job(plain, ["seed=1", "output.figures=False", f"output.root={tmp_path}", "+sweep.name=s",
                           "hydra.verbose=true"], "s")
    assert job.key == f"output.figures=false,seed=1-{config_hash(plain)[:12]}"
    assert job.folder == tmp_path / "default" / "sweeps" / "s" / job.key
    assert job.overrides == ("output.figures=False", "seed=1")
    assert make_job(plain, ["output.figures=false", "seed=1"], "s").key == job.key
    assert make_job(plain, [], None).key.startswith("base-")
    assert make_job(plain, [], None).sweep_dir.name == "default"


def test_job_key_is_file_name_safe_and_bounded():
    """Unsafe characters become _ and the override text is at most 100 characters before the hash."""
    plain = plain_config()
    job = make_job(plain, ["experiment.name=a/b c", "model.x=" + "9" * 300], "../up")
    text, digest = job.key.rsplit("-", 1)
    assert "/" not in job.key and " " not in job.key and len(text) <= 100 and len(digest) == 12
    assert job.sweep_dir.name == safe_name("../up") and ".." not in job.sweep_dir.name


def test_a_long_job_key_keeps_the_last_path_segments_so_every_value_shows():
    """Override text over 100 characters: paths shortened to their last segment before any cut."""
    plain = plain_config(experiment__replicates=3, experiment__trials=["radiant3", "e2211"])
    job = make_job(plain, ["experiment.replicates=3", "experiment.trials=[radiant3,e2211]", "experiment=validation",
                           "output.figures=false", "model.frailty_rho=0.3", "seed=1"], None)
    assert job.key.rsplit("-", 1)[0] == \
        "replicates=3,trials=_radiant3,e2211_,experiment=validation,frailty_rho=0.3,figures=false,seed=1"


def test_sweep_job_rejects_a_hidden_key_and_a_malformed_hash(tmp_path):
    """SweepJob validates its key (visible folder name) and hash (64 hex digits) at construction."""
    with pytest.raises(ValueError, match="job key"):
        SweepJob(tmp_path, ".hidden", "0" * 64)
    with pytest.raises(ValueError, match="config_hash"):
        SweepJob(tmp_path, "k", "xyz")


def test_current_job_is_none_for_a_plain_run_and_a_job_with_sweep_name(tmp_path):
    """Outside a multirun without sweep.name there is no sweep job; sweep.name makes one."""
    assert current_job(plain_config()) is None
    job = current_job(plain_config(sweep__name="rho", output__root=str(tmp_path)))
    assert job is not None and job.sweep_dir == tmp_path / "default" / "sweeps" / "rho"


@pytest.mark.parametrize("bad", ["", " ", True, 1.5, ["a"]])
def test_an_invalid_sweep_name_is_a_user_error_naming_the_key(bad):
    """sweep.name must be a non-empty name: the UserError names sweep.name and the value."""
    with pytest.raises(UserError, match=r"sweep\.name must be .*got"):
        current_job(plain_config(sweep__name=bad))


# ---------------------------------------------------------------------------------------------- run folders

def test_a_plain_run_keeps_its_timestamped_folder(tmp_path):
    """Without an active sweep job, run_folder_name is <root>/<experiment>/<stamp>-seed<seed>[-job<n>]."""
    plain = plain_config(output__root=str(tmp_path))
    assert active_job() is None
    name = run_folder_name(plain, None)
    assert name.parent == tmp_path / "default"
    assert re.fullmatch(r"\d{8}-\d{6}-\d{9}-seed1", name.name)
    assert run_folder_name(plain, 3).name.endswith("-seed1-job3")
    with atomic_run_dir(name) as tmp:
        (tmp / "manifest.json").write_text("{}")
    assert sorted(p.name for p in name.iterdir()) == ["manifest.json"]      # no marker outside sweeps


def test_a_job_folder_appears_only_after_its_marker_is_written(tmp_path):
    """While the job writes, the final folder does not exist; afterwards the marker lists every file."""
    plain = plain_config(output__root=str(tmp_path))
    job = make_job(plain, ["seed=1"], "s")
    with activate(job):
        assert run_folder_name(plain, 7) == job.folder
        with atomic_run_dir(job.folder) as tmp:
            (tmp / "manifest.json").write_text("{}")
            (tmp / "sub").mkdir()
            (tmp / "sub" / "t.csv").write_text("a\n1\n")
            assert not job.folder.exists() and not (tmp / MARKER).exists()
            assert tmp.name.startswith(f".{job.key}.partial-")
    assert active_job() is None
    marker = json.loads((job.folder / MARKER).read_text())
    assert marker["config_hash"] == job.config_hash and marker["overrides"] == ["seed=1"]
    assert marker["files"] == {"manifest.json": 2, "sub/t.csv": 4}
    assert job.is_complete() and verify(job.folder, job.config_hash) is None
    assert [p.name for p in job.sweep_dir.iterdir()] == [job.key]


def test_a_failed_job_leaves_neither_a_folder_nor_a_partial(tmp_path):
    """An exception inside the block removes the partial folder and publishes nothing."""
    plain = plain_config(output__root=str(tmp_path))
    job = make_job(plain, ["seed=1"], "s")
    with activate(job), pytest.raises(RuntimeError):
        with atomic_run_dir(job.folder) as tmp:
            (tmp / "manifest.json").write_text("{}")
            raise RuntimeError("killed")
    assert list(job.sweep_dir.iterdir()) == []


def test_skip_only_a_job_whose_folder_is_complete_for_the_same_config(tmp_path, capsys):
    """skip_if_complete: True (one printed line) for a complete folder; False for none or another hash."""
    job = write_job(tmp_path, plain_config(), ["seed=1"])
    assert skip_if_complete(job)
    assert capsys.readouterr().out.strip() == f"pnetsim: skipped {job.key}: already complete in {job.folder}"
    assert not skip_if_complete(None)
    other = SweepJob(job.sweep_dir, job.key, "f" * 64, job.overrides)
    assert not other.is_complete() and "config hash" in verify(job.folder, other.config_hash)
    assert not skip_if_complete(make_job(plain_config(seed=2) | {"output": {"root": str(tmp_path)}}, ["seed=2"], "s"))


@pytest.mark.parametrize("damage, reason", [
    ("remove_marker", "no readable _COMPLETE"),
    ("garble_marker", "no readable _COMPLETE"),
    ("truncate_file", "summary.csv has"),
    ("delete_file", "summary.csv missing"),
])
def test_a_damaged_folder_is_not_complete(tmp_path, damage, reason):
    """A folder without a readable marker, or with a file missing or of another size, is not complete."""
    job = write_job(tmp_path, plain_config(), ["seed=1"])
    f = job.folder / "summary.csv"
    if damage == "remove_marker":
        (job.folder / MARKER).unlink()
    elif damage == "garble_marker":
        (job.folder / MARKER).write_text('{"key": ')
    elif damage == "truncate_file":
        f.write_text(f.read_text()[:-3])
    else:
        f.unlink()
    assert not job.is_complete()
    assert verify(job.folder, job.config_hash).startswith(reason)


def test_rerunning_a_damaged_job_moves_the_old_folder_aside_and_publishes_a_new_one(tmp_path):
    """The invalid folder is kept as .<key>.invalid-*, never deleted; the new folder is complete."""
    job = write_job(tmp_path, plain_config(), ["seed=1"])
    (job.folder / MARKER).unlink()
    write_job(tmp_path, plain_config(), ["seed=1"])
    names = sorted(p.name for p in job.sweep_dir.iterdir())
    assert names[1] == job.key and re.fullmatch(rf"\.{re.escape(job.key)}\.invalid-\d{{8}}-\d{{6}}-\d+", names[0])
    assert job.is_complete() and (job.sweep_dir / names[0] / "summary.csv").is_file()


def test_stale_partials_of_dead_processes_on_this_host_are_removed(tmp_path):
    """Partials of a dead pid on this host go; those of a live pid or of another host stay."""
    job = make_job(plain_config(output__root=str(tmp_path)), ["seed=1"], "s")
    host = safe_name(socket.gethostname(), 60)
    job.sweep_dir.mkdir(parents=True)
    dead = job.sweep_dir / f".{job.key}.partial-{host}-{dead_pid()}"
    live = job.sweep_dir / f".{job.key}.partial-{host}-{os.getppid()}"
    other_host = job.sweep_dir / f".{job.key}.partial-otherhost{host}-{dead_pid()}"
    for p in (dead, live, other_host):
        p.mkdir()
        (p / "half.parquet").write_bytes(b"PAR1")
    assert job.remove_stale_partials() == [dead]
    assert not dead.exists() and live.exists() and other_host.exists()


def test_publishing_a_job_that_finished_meanwhile_keeps_the_existing_folder(tmp_path):
    """If another worker completed the same job first, the new result is discarded, the folder kept."""
    job = write_job(tmp_path, plain_config(), ["seed=1"])
    before = (job.folder / MARKER).stat().st_mtime_ns
    tmp = job.sweep_dir / ".other.partial-x-1"
    tmp.mkdir()
    (tmp / "manifest.json").write_text("{}")
    assert job.publish(tmp) == job.folder
    assert not tmp.exists() and (job.folder / MARKER).stat().st_mtime_ns == before


# ---------------------------------------------------------------------------------------------- aggregate

def test_aggregate_rows_equal_the_per_job_summaries(tmp_path):
    """Each job's rows in the merged table are its summary.csv, after job and override columns."""
    jobs = [write_job(tmp_path, plain_config(seed=s), [f"seed={s}", "cohort.n=100"]) for s in (3, 1, 2)]
    df, s = aggregate(jobs[0].sweep_dir)
    assert list(df.columns[:3]) == ["job", "cohort.n", "seed"]
    assert list(df["job"].unique()) == sorted(j.key for j in jobs)
    for j in jobs:
        rows = df[df["job"] == j.key].drop(columns=["job", "cohort.n", "seed"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(rows, pd.read_csv(j.folder / "summary.csv"))
        assert (df.loc[df["job"] == j.key, "seed"] == int(j.overrides[1].split("=")[1])).all()
    assert (s.incomplete, s.duplicates) == ([], [])


def test_aggregate_refuses_mixed_configs_naming_keys_values_and_jobs(tmp_path):
    """Jobs differing in a key none of them overrides: MixedConfigError naming the key, values and jobs."""
    a = write_job(tmp_path, plain_config(seed=1), ["seed=1"])
    b = write_job(tmp_path, plain_config(seed=2, model__frailty_rho=0.6), ["seed=2"])
    with pytest.raises(MixedConfigError) as e:
        aggregate(a.sweep_dir)
    msg = str(e.value)
    parts = msg.split("overrides: ", 1)[1].split(" (re-run", 1)[0].split(" | ")
    assert "\n" not in msg and [p.split(" = ")[0] for p in parts] == ["model.frailty_rho"]
    assert f"0.3 in {a.key}" in msg and f"0.6 in {b.key}" in msg
    df, _ = aggregate(a.sweep_dir, allow_mixed=True)
    assert sorted(df["model.frailty_rho"].unique()) == [0.3, 0.6]


def test_aggregate_skips_incomplete_folders_and_keeps_duplicates_once(tmp_path):
    """Partial and unmarked folders are listed as incomplete; two folders of one config are merged once."""
    a = write_job(tmp_path, plain_config(seed=1), ["seed=1"])
    b = write_job(tmp_path, plain_config(seed=2), ["seed=2"])
    (b.folder / MARKER).unlink()
    (a.sweep_dir / f".{b.key}.partial-h-1").mkdir()
    shutil.copytree(a.folder, a.sweep_dir / "copy-of-a")
    df, s = aggregate(a.sweep_dir)
    assert df["job"].nunique() == 1 and len(s.complete) == 1
    assert {n for n, _ in s.incomplete} == {b.key, f".{b.key}.partial-h-1"}
    assert len(s.duplicates) == 1 and set(s.duplicates[0]) == {a.key, "copy-of-a"}


def test_aggregate_errors_name_the_missing_table_and_the_empty_sweep(tmp_path):
    """No complete job, or a table some job lacks: SweepError (a UserError) naming the folder or jobs."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(SweepError, match="no complete job"):
        aggregate(tmp_path / "empty")
    a = write_job(tmp_path, plain_config(), ["seed=1"])
    with pytest.raises(SweepError, match=rf"differences\.csv is missing in job\(s\) {re.escape(a.key)}"):
        aggregate(a.sweep_dir, "differences.csv")
    assert issubclass(SweepError, UserError)


def test_aggregate_command_writes_parquet_atomically_and_exits_2_on_user_errors(tmp_path, capsys):
    """pnetsim-aggregate: Parquet equal to the merged frame, no temporary file left; exit 2 + one line."""
    a = write_job(tmp_path, plain_config(seed=1), ["seed=1"])
    write_job(tmp_path, plain_config(seed=2), ["seed=2"])
    out = tmp_path / "merged" / "m.parquet"
    assert aggregate_main([str(a.sweep_dir), "-o", str(out), "-q"]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out), aggregate(a.sweep_dir)[0])
    assert [p.name for p in out.parent.iterdir()] == ["m.parquet"]
    capsys.readouterr()
    write_job(tmp_path, plain_config(seed=3, cohort__n=7), ["seed=3"])
    assert aggregate_main([str(a.sweep_dir), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pnetsim-aggregate: error:") and "cohort.n" in err
    assert not (a.sweep_dir / "sweep_summary.parquet").exists()
    assert aggregate_main([str(tmp_path / "nowhere")]) == 2
    assert aggregate_main([str(a.sweep_dir), "--table", "../x.csv"]) == 2


# ---------------------------------------------------------------------------------------------- command line

def pnetsim_command() -> list[str]:
    """The installed ``pnetsim`` script of this interpreter (``python -m experiments.run`` otherwise)."""
    script = Path(sys.executable).parent / "pnetsim"
    return [str(script)] if script.exists() else [sys.executable, "-m", "experiments.run"]


def run_sweep(root: Path, *extra: str, sweep=SWEEP, timeout: float = 300) -> subprocess.CompletedProcess:
    """``pnetsim -m <sweep> output.root=<root> <extra>`` in a subprocess; fails the test on a non-zero exit."""
    r = subprocess.run([*pnetsim_command(), "-m", *sweep, f"output.root={root}", *extra], cwd=root.parent,
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def sweep_dir(root: Path) -> Path:
    return root / "default" / "sweeps" / "default"


def merged(root: Path) -> pd.DataFrame:
    """The aggregated table of the sweep under ``root`` (via the command, which also writes the Parquet)."""
    assert aggregate_main([str(sweep_dir(root)), "-q"]) == 0
    return pd.read_parquet(sweep_dir(root) / "sweep_summary.parquet")


def visible_jobs(root: Path) -> list[str]:
    return sorted(p.name for p in sweep_dir(root).iterdir() if p.is_dir() and not p.name.startswith("."))


@pytest.fixture(scope="module")
def reference_root(tmp_path_factory) -> Path:
    """output.root of an uninterrupted 4-job sweep on all cores (joblib launcher). It lives in the
    session's base temp folder, shared with tests/test_ray_sweep.py: the second file to run finds the
    four jobs complete and reuses them."""
    root = tmp_path_factory.getbasetemp() / "joblib-sweep-reference" / "out"
    root.parent.mkdir(exist_ok=True)
    if not (sweep_dir(root).is_dir() and len(visible_jobs(root)) == 4
            and all(verify(sweep_dir(root) / k) is None for k in visible_jobs(root))):
        run_sweep(root, "hydra/launcher=joblib")
    assert len(visible_jobs(root)) == 4
    return root


@pytest.fixture(scope="module")
def reference(reference_root) -> pd.DataFrame:
    """The merged table of the uninterrupted sweep."""
    return merged(reference_root)


def test_a_resumed_sweep_redoes_only_damaged_jobs_and_merges_like_an_uninterrupted_one(reference_root, reference,
                                                                                       tmp_path):
    """Marker removed, job killed mid-write (partial left), folder deleted: re-running the same command
    recomputes exactly those three, skips the intact job (marker untouched), and merges equal."""
    root = tmp_path / "out"
    shutil.copytree(sweep_dir(reference_root), sweep_dir(root))
    (sweep_dir(root) / "sweep_summary.parquet").unlink(missing_ok=True)
    keys = visible_jobs(root)
    intact, unmarked, killed, deleted = keys
    d = sweep_dir(root)
    mtime = (d / intact / MARKER).stat().st_mtime_ns
    (d / unmarked / MARKER).unlink()
    partial = d / f".{killed}.partial-{safe_name(socket.gethostname(), 60)}-{dead_pid()}"
    os.replace(d / killed, partial)                                   # killed while writing: no marker yet
    (partial / MARKER).unlink()
    shutil.rmtree(d / deleted)

    r = run_sweep(root)
    assert r.stdout.count("pnetsim: skipped") == 1 and f"skipped {intact}:" in r.stdout
    assert visible_jobs(root) == keys                                  # every job exactly once
    assert (d / intact / MARKER).stat().st_mtime_ns == mtime           # not recomputed
    hidden = sorted(p.name for p in d.iterdir() if p.name.startswith("."))
    assert len(hidden) == 1 and hidden[0].startswith(f".{unmarked}.invalid-")   # kept aside, partial removed
    assert all(verify(d / k) is None for k in keys)
    pd.testing.assert_frame_equal(merged(root), reference)


def test_a_sweep_killed_part_way_resumes_to_the_uninterrupted_result(reference, tmp_path):
    """SIGKILL of `pnetsim -m` after its first job: the re-run skips finished jobs and merges equal."""
    root = tmp_path / "out"
    proc = subprocess.Popen([*pnetsim_command(), "-m", *SWEEP, f"output.root={root}"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if sweep_dir(root).is_dir() and visible_jobs(root):
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = {k: (sweep_dir(root) / k / MARKER).stat().st_mtime_ns for k in visible_jobs(root)}
    assert 1 <= len(done) <= 4
    r = run_sweep(root)
    assert r.stdout.count("pnetsim: skipped") == len(done)
    assert len(visible_jobs(root)) == 4
    assert {k: (sweep_dir(root) / k / MARKER).stat().st_mtime_ns for k in done} == done
    assert not [p for p in sweep_dir(root).iterdir() if ".partial-" in p.name]
    pd.testing.assert_frame_equal(merged(root), reference)


def test_a_submitit_local_sweep_merges_like_the_joblib_sweep(reference, tmp_path):
    """hydra/launcher=submitit_local (one process per job) gives the joblib sweep's rows for its jobs
    (two of the four seeds, to keep the test short)."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="hydra-submitit-launcher not installed")
    root = tmp_path / "out"
    run_sweep(root, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", sweep=["seed=1,2", *SWEEP[1:]])
    got = merged(root)
    want = reference[reference["job"].isin(set(got["job"]))].reset_index(drop=True)
    assert sorted(got["seed"].unique()) == [1, 2] and want["job"].nunique() == 2
    pd.testing.assert_frame_equal(got, want)
