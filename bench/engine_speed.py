"""Benchmark: patient pathways per second of both executors on the default experiment.

Prints the throughput (patients x strategies per second) of the vectorised executor
(:func:`sim.vectorised.simulate_vectorised`: simulation alone, and with the typed output
frames built) and of the SimPy engine (:func:`sim.engine.simulate`, simulation alone), their
ratio, and, measured in the same process as reference points, a bare SimPy loop of 8
timeouts per patient and a bare NumPy draw of the same number of uniforms. Cohort
generation and output writing are excluded. Single process.

Usage: ``python bench/engine_speed.py [n_patients] [repeats] [simpy_patients]``
(defaults 10000, 3, 1000: the SimPy engine is timed on fewer patients, its throughput per
pathway does not depend on the cohort size).
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import numpy as np
import simpy
from hydra import compose, initialize_config_dir

from sim.config import build_model
from sim.engine import simulate
from sim.vectorised import simulate_vectorised

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")


def bare_simpy(n: int) -> float:
    def proc(env):
        for _ in range(8):
            yield env.timeout(1.0)

    t = time.perf_counter()
    for a in range(0, n, 500):
        env = simpy.Environment()
        for _ in range(min(500, n - a)):
            env.process(proc(env))
        env.run()
    return n / (time.perf_counter() - t)


def bare_numpy(n: int) -> float:
    rng = np.random.default_rng(1)
    t = time.perf_counter()
    x = rng.exponential(size=(n, 8)).cumsum(axis=1)
    x.sum()
    return n / (time.perf_counter() - t)


def best_rate(fn, pathways: int, reps: int) -> float:
    best = 0.0
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = max(best, pathways / (time.perf_counter() - t))
    return best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    n_simpy = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"cohort.n={n}"])
    m = build_model(cfg)
    k = len(m.strategies)
    args = (m.strategies, m.therapies, m.rules, m.lifetable, m.seed)
    vec = best_rate(lambda: simulate_vectorised(m.cohort, *args), n * k, reps)
    vec_frames = best_rate(lambda: simulate_vectorised(m.cohort, *args).frames(), n * k, reps)
    small = m.cohort.iloc[:n_simpy]
    spy = best_rate(lambda: simulate(small, *args), len(small) * k, reps)
    ref_simpy, ref_np = bare_simpy(n * k), bare_numpy(n * k)
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}, 1 process")
    print(f"default experiment: {n} patients x {k} strategies (simpy: {len(small)} patients), best of {reps}")
    print(f"vectorised executor    {vec:12,.0f} pathways/s   (with output frames {vec_frames:,.0f})")
    print(f"simpy engine           {spy:12,.0f} pathways/s   vectorised/simpy = {vec / spy:.0f}x")
    print(f"bare simpy (8 timeouts){ref_simpy:12,.0f} patients/s   simpy engine/bare = {spy / ref_simpy:.3f}")
    print(f"bare numpy (8 draws)   {ref_np:12,.0f} patients/s   vectorised/bare = {vec / ref_np:.3f}")


if __name__ == "__main__":
    main()
