"""Benchmark: wall time and peak memory of a PSA as the number of samples S grows.

:func:`sim.uncertainty.psa.run_samples` keeps only the per-sample, per-strategy means (each
sample's patient, line and event tables are dropped once evaluated), so its memory should be
flat in S while its time grows linearly. Each S runs in a fresh child process (peak RSS,
``resource.getrusage(RUSAGE_SELF).ru_maxrss``, is a per-process high-water mark); the child
reports:

* ``baseline``: peak RSS after imports, :func:`sim.uncertainty.psa.prepare` (config, base
  model, parameter set) and one warm-up sample (lazy imports, caches), before the S samples;
* ``peak``: peak RSS at the end of ``run_samples``; ``growth = peak - baseline``;
* optionally (``--tracemalloc``) the peak of Python/NumPy allocations traced during
  ``run_samples`` (slower);
* seconds and seconds per sample.

The PSA is the project's (``experiment=psa``: parameter distributions of
``configs/psa/default.yaml``, economics ``configs/economics/uk_nhs.yaml``), on N patients x 2
strategies (switch, rechallenge), one worker; the simulation uses whatever executor
:func:`sim.uncertainty.psa.simulate_sample` calls.

Usage::

    python bench/psa_memory.py                    # N = 200, S = 10, 50, 100, 200, 500, 1000
    python bench/psa_memory.py --quick            # N = 20,  S = 5, 20, 50
    python bench/psa_memory.py --n 500 --samples 10 50 100
    python bench/psa_memory.py --n 10000 --samples 1000 --workers 2   # the target size
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")


def _rss_mb() -> float:
    """Peak resident set size of this process so far, MB (ru_maxrss is in KB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(samples: int, n: int, trace: bool, workers: int = 1) -> dict:
    """Run one PSA of ``samples`` samples in this process (``workers`` processes) and measure it."""
    import tracemalloc

    from hydra import compose, initialize_config_dir

    from sim.uncertainty.psa import prepare, run_samples

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[
            "experiment=psa", f"cohort.n={n}", "experiment.strategies=[switch,rechallenge]",
            "experiment.reference=switch",
            "psa.intervention=rechallenge", "psa.comparator=switch", "psa.workers=1", "output.figures=false"])
    cfg, plain, model, st, paramset, groups = prepare(cfg)
    run_samples(cfg, paramset, [samples], workers=1)   # warm-up: lazy imports, caches
    baseline = _rss_mb()
    if trace:
        tracemalloc.start()
    t = time.perf_counter()
    rows = run_samples(cfg, paramset, range(samples), workers=workers)
    secs = time.perf_counter() - t
    traced = tracemalloc.get_traced_memory()[1] / 2**20 if trace else float("nan")
    worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0 if workers > 1 else float("nan")
    return {"S": samples, "N": n, "rows": len(rows), "seconds": secs, "baseline_mb": baseline,
            "peak_mb": _rss_mb(), "worker_peak_mb": worker_mb, "traced_peak_mb": traced}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="PSA wall time and peak memory against the number of samples")
    ap.add_argument("--quick", action="store_true", help="N = 20, S = 5, 20, 50")
    ap.add_argument("--n", type=int, default=None, help="patients (default 200)")
    ap.add_argument("--samples", type=int, nargs="+", default=None, help="values of S")
    ap.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations (slower)")
    ap.add_argument("--workers", type=int, default=1, help="worker processes of run_samples (default 1)")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    n = a.n or (20 if a.quick else 200)
    if a.child is not None:
        print(json.dumps(child(a.child, n, a.tracemalloc, a.workers)))
        return
    grid = a.samples or ([5, 20, 50] if a.quick else [10, 50, 100, 200, 500, 1000])
    results = []
    for s in grid:
        cmd = ([sys.executable, __file__, "--child", str(s), "--n", str(n), "--workers", str(a.workers)]
               + (["--tracemalloc"] if a.tracemalloc else []))
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = results[-1]
        print(f"  S={s}: {r['seconds']:.1f} s, peak {r['peak_mb']:.0f} MB", file=sys.stderr)

    print(f"# PSA memory ({'quick mode' if a.quick else 'full size'})\n")
    print(f"{datetime.date.today()}, {platform.machine()}, Python {platform.python_version()}; "
          f"N = {n} patients x 2 strategies, {a.workers} worker(s), one child process per S\n")
    print("| S | pathways | seconds | s / sample | baseline RSS (MB) | peak RSS (MB) | growth (MB) | "
          "largest worker RSS (MB) | traced peak (MB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['S']} | {r['S'] * 2 * n:,} | {r['seconds']:.1f} | {r['seconds'] / r['S']:.3f} | "
              f"{r['baseline_mb']:.0f} | {r['peak_mb']:.0f} | {r['peak_mb'] - r['baseline_mb']:.1f} | "
              f"{r['worker_peak_mb']:.0f} | {r['traced_peak_mb']:.1f} |")
    if len(results) >= 2:
        s = np.array([r["S"] for r in results], float)
        peak = np.array([r["peak_mb"] for r in results])
        secs = np.array([r["seconds"] for r in results])
        slope_mem = np.polyfit(s, peak, 1)[0]
        slope_t = np.polyfit(s, secs, 1)[0]
        print(f"\nLeast-squares slopes over S: peak RSS {slope_mem * 100:+.2f} MB per 100 samples; "
              f"time {slope_t:.3f} s per sample.")


if __name__ == "__main__":
    main()
