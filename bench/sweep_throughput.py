"""Benchmark: jobs per minute of a small Hydra multirun sweep with the joblib launcher.

Runs the same sweep of J jobs (``pnetsim -m model.frailty_rho=<J values> cohort.n=N
output.figures=false``: the default comparison, one job per value) with
``hydra/launcher=joblib hydra.launcher.n_jobs=W`` for each W in ``--workers`` (default 1 and 2),
each into its own fresh temporary ``output.root`` (so no job is skipped as already complete, see
``sim/sweep.py``), and reports the wall time of the whole ``pnetsim`` command (start-up, every
job, launcher overhead), jobs per minute and the speed-up over one worker. It checks that every
job left a complete run folder (its ``_COMPLETE`` marker).

The frailty values only make the jobs distinct; ``rho`` in [0, 0.7] keeps each job's work similar.

Usage::

    python bench/sweep_throughput.py            # 8 jobs, cohort.n=2000, workers 1 and 2
    python bench/sweep_throughput.py --quick    # 4 jobs, cohort.n=100
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def pnetsim() -> list[str]:
    """The ``pnetsim`` console command of this interpreter's environment (or the module form)."""
    exe = Path(sys.executable).parent / "pnetsim"
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from experiments.run import main; main()"]


def run_sweep(jobs: int, n: int, workers: int, extra: list[str]) -> tuple[float, int]:
    """Wall seconds of one multirun and the number of complete job folders it left."""
    rhos = ",".join(f"{x:.4g}" for x in np.linspace(0.0, 0.7, jobs))
    with tempfile.TemporaryDirectory(prefix="pnetsim-sweep-") as root:
        cmd = pnetsim() + ["-m", "hydra/launcher=joblib", f"hydra.launcher.n_jobs={workers}",
                           f"cohort.n={n}", "output.figures=false", "output.progress=false",
                           f"output.root={root}", f"model.frailty_rho={rhos}"] + extra
        t = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       env={**os.environ, "HYDRA_FULL_ERROR": "1"})
        secs = time.perf_counter() - t
        complete = sum(1 for _ in Path(root).rglob("_COMPLETE"))
    return secs, complete


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="jobs per minute of a joblib multirun sweep")
    ap.add_argument("--quick", action="store_true", help="4 jobs of cohort.n=100")
    ap.add_argument("--jobs", type=int, default=None, help="jobs in the sweep (default 8)")
    ap.add_argument("--n", type=int, default=None, help="cohort.n of each job (default 2000)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="joblib n_jobs values")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides for every job (e.g. engine=vectorised)")
    a = ap.parse_args(argv)
    jobs = a.jobs or (4 if a.quick else 8)
    n = a.n or (100 if a.quick else 2000)
    rows = []
    for w in a.workers:
        secs, done = run_sweep(jobs, n, w, a.overrides)
        rows.append((w, secs, done))
        print(f"  n_jobs={w}: {secs:.1f} s, {done}/{jobs} complete", file=sys.stderr)
    print(f"# Sweep throughput ({'quick mode' if a.quick else 'full size'})\n")
    print(f"{datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; {jobs} jobs of "
          f"`{' '.join(['pnetsim', f'cohort.n={n}', 'output.figures=false', *a.overrides])}` "
          "(model.frailty_rho sweep), joblib launcher\n")
    print("| n_jobs | seconds | jobs / minute | speed-up | complete |")
    print("|---:|---:|---:|---:|---:|")
    base = rows[0][1]
    for w, secs, done in rows:
        print(f"| {w} | {secs:.1f} | {jobs / secs * 60:.1f} | {base / secs:.2f} | {done}/{jobs} |")
    if any(done != jobs for _, _, done in rows):
        sys.exit("some jobs did not complete")


if __name__ == "__main__":
    main()
