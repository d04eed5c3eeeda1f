"""Run folders written atomically, and the run manifest (config, seed, versions, git).

Sweep jobs (:mod:`sim.sweep`) get a deterministic folder and a completion marker through the same
two functions every experiment kind calls: :func:`run_folder_name` and :func:`atomic_run_dir`.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from sim.sweep import active_job

REPO = Path(__file__).resolve().parents[1]


def git_revision() -> dict:
    """``{"commit": sha or None, "dirty": bool or None}`` of the source tree."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return {"commit": None, "dirty": None}
        return {"commit": sha.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in ("pnetsim", "numpy", "scipy", "pandas", "simpy", "hydra-core", "lifelines", "pyarrow"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


@contextmanager
def atomic_run_dir(final: Path):
    """Yield a temporary sibling folder; rename it to ``final`` only if the block succeeds.

    A failed or interrupted run leaves no folder under the final name (the partial one is
    removed), so a folder with the final name is always complete.

    When a sweep job is active (:func:`sim.sweep.activate`) and ``final`` is its folder, the
    temporary folder is ``.<key>.partial-<host>-<pid>``, partial folders of dead processes of this
    job on this host are removed first, and on success :meth:`sim.sweep.SweepJob.publish` writes the
    ``_COMPLETE`` marker as the last file before the rename.
    """
    final = Path(final)
    job = active_job()
    sweep = job is not None and final == job.folder
    final.parent.mkdir(parents=True, exist_ok=True)
    if sweep:
        job.remove_stale_partials()
        tmp = job.partial_dir()
    else:
        tmp = final.parent / f".{final.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if sweep:
        try:
            job.publish(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    else:
        os.replace(tmp, final)


def write_manifest(folder: Path, config: dict, seed: int, timings: dict, extra: dict | None = None) -> Path:
    """``manifest.json`` of a run: seed, time, git revision, package versions, timings, the
    executor that ran (``engine: auto`` resolved, :func:`sim.executors.resolve_engine`) and the
    resolved config, plus ``extra``."""
    from sim.executors import resolve_engine

    manifest = {
        "seed": seed,
        "executor": resolve_engine(config.get("engine", "auto")) if isinstance(config, dict) else None,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git": git_revision(),
        "versions": versions(),
        "timings_seconds": timings,
        "config": config,
    } | (extra or {})
    path = Path(folder) / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, default=str))
    return path


def progress_bar(setting, total: int, desc: str):
    """A tqdm bar on stderr (``auto``: only when stderr is a terminal)."""
    from tqdm import tqdm

    disable = (not sys.stderr.isatty()) if setting == "auto" else not bool(setting)
    return tqdm(total=total, desc=desc, unit="patient", disable=disable, file=sys.stderr)


def run_folder_name(cfg, job: int | None) -> Path:
    """Final folder of a run.

    In a sweep job (:func:`sim.sweep.activate`, set by ``experiments/run.py`` for a Hydra multirun or
    when ``sweep.name`` is set): the job's deterministic folder
    ``<output.root>/<experiment.name>/sweeps/<sweep id>/<job key>`` (see :mod:`sim.sweep`). Otherwise
    ``<output.root>/<experiment.name>/<YYYYmmdd-HHMMSS-ns>-seed<seed>[-job<job>]``.
    """
    sweep_job = active_job()
    if sweep_job is not None:
        return sweep_job.folder
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() % 1_000_000_000:09d}"
    name = f"{stamp}-seed{cfg['seed']}" + (f"-job{job}" if job is not None else "")
    return Path(cfg["output"]["root"]) / cfg["experiment"]["name"] / name
