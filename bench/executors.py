"""Benchmark: pathways per second of both executors on the default experiment, with references.

Measured in one process, on one core:

* ``vectorised``: :func:`sim.run.executors.simulate` with ``engine="vectorised"`` on the default
  experiment (``cohort.n`` patients x the 3 default strategies), output frames built
  (``.frames()``), cohort generation and writing excluded;
* ``simpy``: the same with ``engine="simpy"`` (on ``--simpy-n`` patients: its time per pathway
  does not depend on the cohort size, so a smaller cohort keeps the run short);
* ``bare SimPy``: one SimPy process per pathway doing 8 ``env.timeout`` (500 processes per
  environment, like the engine's chunks) -- the cost of the SimPy machinery alone;
* ``bare NumPy``: drawing the same number of random numbers as the vectorised executor reads
  (pathways x 8 exponentials, cumulated) -- the cost of the arithmetic alone.

Reported as pathways/s (best of ``--repeats``) and the ratios vectorised/simpy,
vectorised/bare NumPy and simpy/bare SimPy, as a Markdown table.

Usage::

    python bench/executors.py            # n = 10,000 (vectorised), 1,000 (simpy), 3 repeats
    python bench/executors.py --quick    # n = 2,000 / 200, 1 repeat (a few seconds)
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time
from pathlib import Path

import numpy as np
import simpy
from hydra import compose, initialize_config_dir

from sim.config import build_model
from sim.run.executors import simulate

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")
#: timeouts per pathway of the bare SimPy loop and exponentials per pathway of the bare NumPy draw
STEPS = 8


def bare_simpy(pathways: int, per_env: int = 500) -> float:
    """Seconds for ``pathways`` SimPy processes of :data:`STEPS` unit timeouts each."""
    def proc(env):
        for _ in range(STEPS):
            yield env.timeout(1.0)

    t = time.perf_counter()
    for a in range(0, pathways, per_env):
        env = simpy.Environment()
        for _ in range(min(per_env, pathways - a)):
            env.process(proc(env))
        env.run()
    return time.perf_counter() - t


def bare_numpy(pathways: int) -> float:
    """Seconds to draw and cumulate ``pathways x STEPS`` exponentials with NumPy."""
    rng = np.random.default_rng(1)
    t = time.perf_counter()
    x = rng.exponential(size=(pathways, STEPS)).cumsum(axis=1)
    float(x[:, -1].sum())
    return time.perf_counter() - t


def best_seconds(fn, repeats: int) -> float:
    """Smallest wall time of ``repeats`` calls of ``fn``."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run_engine(model, cohort, engine: str):
    rec = simulate(cohort, model.strategies, model.therapies, model.rules, model.lifetable, model.seed,
                   engine=engine)
    return rec.frames()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (n=2000, simpy n=200, 1 repeat)")
    ap.add_argument("--n", type=int, default=None, help="patients for the vectorised executor (default 10000)")
    ap.add_argument("--simpy-n", type=int, default=None, help="patients for the SimPy engine (default 1000)")
    ap.add_argument("--repeats", type=int, default=None, help="repeats, best kept (default 3)")
    a = ap.parse_args(argv)
    n = a.n or (2_000 if a.quick else 10_000)
    n_simpy = min(n, a.simpy_n or (200 if a.quick else 1_000))
    reps = a.repeats or (1 if a.quick else 3)

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"cohort.n={n}"])
    model = build_model(cfg)
    k = len(model.strategies)
    run_engine(model, model.cohort.iloc[:50], "vectorised")          # warm-up (imports, vocabularies)
    run_engine(model, model.cohort.iloc[:5], "simpy")
    t_vec = best_seconds(lambda: run_engine(model, model.cohort, "vectorised"), reps)
    small = model.cohort.iloc[:n_simpy]
    t_spy = best_seconds(lambda: run_engine(model, small, "simpy"), reps)
    pw_vec, pw_spy = n * k, n_simpy * k
    t_bare_simpy = best_seconds(lambda: bare_simpy(pw_spy), reps)
    t_bare_np = best_seconds(lambda: bare_numpy(pw_vec), reps)

    rate = {"vectorised": pw_vec / t_vec, "simpy": pw_spy / t_spy,
            "bare SimPy (8 timeouts)": pw_spy / t_bare_simpy, "bare NumPy (8 draws)": pw_vec / t_bare_np}
    size = {"vectorised": pw_vec, "simpy": pw_spy, "bare SimPy (8 timeouts)": pw_spy, "bare NumPy (8 draws)": pw_vec}
    print(f"# Executors, default experiment ({'quick mode' if a.quick else 'full size'})\n")
    print(f"{datetime.date.today()}, {platform.machine()}, Python {platform.python_version()}, one process; "
          f"{k} strategies ({', '.join(model.strategies)}); best of {reps}\n")
    print("| what | pathways | pathways/s |")
    print("|---|---:|---:|")
    for name, r in rate.items():
        print(f"| {name} | {size[name]:,} | {r:,.0f} |")
    print("\n| ratio | value |")
    print("|---|---:|")
    print(f"| vectorised / simpy | {rate['vectorised'] / rate['simpy']:,.1f} |")
    print(f"| vectorised / bare NumPy | {rate['vectorised'] / rate['bare NumPy (8 draws)']:.4f} |")
    print(f"| simpy / bare SimPy | {rate['simpy'] / rate['bare SimPy (8 timeouts)']:.4f} |")


if __name__ == "__main__":
    main()
