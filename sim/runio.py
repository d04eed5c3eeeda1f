"""Run folders written atomically, and the run manifest (config, seed, versions, git)."""

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
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.replace(tmp, final)


def write_manifest(folder: Path, config: dict, seed: int, timings: dict, extra: dict | None = None) -> Path:
    manifest = {
        "seed": seed,
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
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() % 1_000_000_000:09d}"
    name = f"{stamp}-seed{cfg['seed']}" + (f"-job{job}" if job is not None else "")
    return Path(cfg["output"]["root"]) / cfg["experiment"]["name"] / name
