"""Benchmark: patient pathways per second of the SimPy engine on the default experiment.

Prints the engine's throughput (patients x strategies per second of simulate(); cohort
generation and output writing excluded) and, measured in the same process as reference
points, a bare SimPy loop of 8 timeouts per patient and a bare NumPy draw of the same
number of uniforms. Usage: ``python bench/engine_speed.py [n_patients] [repeats]``.
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


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"cohort.n={n}"])
    m = build_model(cfg)
    k = len(m.strategies)
    best = 0.0
    for _ in range(reps):
        t = time.perf_counter()
        simulate(m.cohort, m.strategies, m.therapies, m.rules, m.lifetable, m.seed)
        best = max(best, n * k / (time.perf_counter() - t))
    ref_simpy, ref_np = bare_simpy(n * k), bare_numpy(n * k)
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}, 1 process")
    print(f"default experiment: {n} patients x {k} strategies, best of {reps}")
    print(f"simpy engine           {best:12,.0f} pathways/s")
    print(f"bare simpy (8 timeouts){ref_simpy:12,.0f} patients/s   engine/bare = {best / ref_simpy:.2f}")
    print(f"bare numpy (8 draws)   {ref_np:12,.0f} patients/s   engine/bare = {best / ref_np:.4f}")


if __name__ == "__main__":
    main()
