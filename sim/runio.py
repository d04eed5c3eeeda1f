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
import tempfile
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from tqdm import tqdm

from sim.errors import UserError, check, mapping
from sim.run.executors import resolve_engine
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
    executor that ran (``engine: auto`` resolved, :func:`sim.run.executors.resolve_engine`) and the
    resolved config, plus ``extra``."""
    manifest = {
        "seed": seed,
        "executor": (resolve_engine(config.get("engine", "auto"), bool(config.get("resources")))
                     if isinstance(config, dict) else None),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git": git_revision(),
        "versions": versions(),
        "timings_seconds": timings,
        "config": config,
    } | (extra or {})
    path = Path(folder) / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, default=str))
    return path


#: values of ``output.progress``
PROGRESS = ("auto", True, False)


def check_output(plain: dict) -> dict:
    """Validate the ``output`` group: ``root`` a non-empty path, ``figures`` a boolean
    (``true`` / ``false``, nothing else), ``progress`` ``auto``, ``true`` or ``false``; unknown keys
    are refused. Returns the group."""
    out = mapping("output", plain.get("output"))
    for k in out:
        check(k in ("root", "figures", "progress"), f"output.{k}", out[k],
              "is not a configuration key (known keys of output: root, figures, progress)")
    root = out.get("root")
    check(isinstance(root, str) and root.strip() != "", "output.root", root, "must be a folder path")
    figures = out.get("figures", True)
    check(isinstance(figures, bool), "output.figures", figures, "must be true or false")
    progress = out.get("progress", "auto")
    check(isinstance(progress, bool) or progress == "auto", "output.progress", progress,
          "must be auto, true or false")
    return out


def check_writable(root, name: str | None = None) -> None:
    """Raise a :class:`~sim.errors.UserError` unless run folders can be written under ``root``
    (and ``root/name`` when that folder exists): an existing path must be a writable folder, a
    missing one must have a writable folder as its nearest existing ancestor. A file is created
    and removed to prove it (permission bits do not tell on a read-only file system or for root).
    Nothing is left behind."""
    root = Path(root)
    for key, path in (("output.root", root), (f"output.root/{name}", root / name if name else None)):
        if path is None or not path.exists():
            continue
        check(path.is_dir(), key, str(path), "must be a folder (it is a file)")
        _probe(key, path)
    if not root.exists():
        parent = root.parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        check(parent.is_dir(), "output.root", str(root), f"cannot be created ({parent} is not a folder)")
        _probe("output.root", parent, shown=root)


def _probe(key: str, folder: Path, shown: Path | None = None) -> None:
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise UserError(f"{key} must be a writable folder ({exc.strerror or exc}), got {str(shown or folder)!r}") \
            from None


def memory_needed(n_patients: int, n_strategies: int) -> int:
    """Bytes a comparison of ``n_strategies`` strategies on ``n_patients`` patients needs, roughly:
    250 MB of libraries plus 16 kB per patient and strategy (the measured peak is about 12 kB on the
    default model: event, line and patient records with their tables)."""
    return 250 * 2 ** 20 + 16 * 1024 * int(n_patients) * max(int(n_strategies), 1)


def memory_available() -> int | None:
    """Bytes of memory available to a new run (``MemAvailable`` of ``/proc/meminfo``), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(n_patients: int, n_strategies: int, key: str = "cohort.n") -> None:
    """Refuse a run whose :func:`memory_needed` exceeds :func:`memory_available`."""
    need, have = memory_needed(n_patients, n_strategies), memory_available()
    if have is not None and need > have:
        raise UserError(f"{key} needs about {need / 2 ** 30:,.1f} GB of memory for {n_strategies} strategies "
                        f"({have / 2 ** 30:,.1f} GB available): use a smaller cohort, got {n_patients!r}")


#: below this many patients, confidence intervals and ICERs are dominated by Monte Carlo noise
MIN_PATIENTS = 100


def warn_small_cohort(n: int) -> bool:
    """Print one warning line on stderr when ``n`` < :data:`MIN_PATIENTS`; True when it warned."""
    if n >= MIN_PATIENTS:
        return False
    print(f"pnetsim: warning: cohort of {n} patients (below {MIN_PATIENTS}): confidence intervals and ICERs "
          f"are dominated by Monte Carlo noise", file=sys.stderr)
    return True


def progress_bar(setting, total: int, desc: str):
    """A tqdm bar on stderr (``auto``: only when stderr is a terminal)."""
    disable = (not sys.stderr.isatty()) if setting == "auto" else not bool(setting)
    return tqdm(total=total, desc=desc, unit="patient", disable=disable, file=sys.stderr)


class Steps:
    """Progress through the stages after the simulation (analysis, figures, report, tables), as a
    tqdm bar of steps on stderr shown under the same rule as :func:`progress_bar`.

    Parameters
    ----------
    setting : {"auto", True, False}
        ``output.progress``.
    names : sequence of str
        The stages, in order; :meth:`start` names the one beginning.
    """

    def __init__(self, setting, names):
        disable = (not sys.stderr.isatty()) if setting == "auto" else not bool(setting)
        self.bar = tqdm(total=len(names), desc=names[0] if names else "", unit="step", disable=disable,
                        file=sys.stderr, bar_format="{desc:<22}{bar}| {n_fmt}/{total_fmt} steps [{elapsed}]")
        self.started = False

    def start(self, name: str) -> None:
        """Mark the previous stage done and show ``name`` as running."""
        if self.started:
            self.bar.update(1)
        self.started = True
        self.bar.set_description_str(name)

    def close(self) -> None:
        """Mark the last stage done and close the bar."""
        if self.started:
            self.bar.update(1)
        self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


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
