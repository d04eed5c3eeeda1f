"""Benchmark: the SimPy engine with shared PRRT capacity (``resources=prrt_uk``).

On the PRRT strategy of the default model (``experiment.strategies=[prrt]``), n patients:

* ``simpy, no resources``: the SimPy engine without the resource (chunks of 500, one environment each);
* ``simpy, resources=prrt_uk``: the whole cohort in one environment, arrivals, the PRRT queue and
  the booked later administrations (:mod:`sim.resources`), at the shipped capacity and at a
  congested one (``slots_per_week`` given by ``--congested``);
* ``bare SimPy``: one process per pathway doing 8 ``env.timeout`` in one environment of the same
  size, the reference of what SimPy itself costs (same run, same process).

Prints a Markdown table: pathways/s, the ratio to the bare SimPy loop, and the queue statistics
(utilisation, mean and 95th-percentile wait in weeks).

Usage::

    python bench/resources.py            # n = 5,000
    python bench/resources.py --quick    # n = 1,000
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
from pathlib import Path

import simpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import compose_config  # noqa: E402
from sim.config import build_model  # noqa: E402
from sim.run.executors import simulate  # noqa: E402
from sim.resources import WEEKS_PER_MONTH  # noqa: E402


def bare_simpy(pathways: int) -> float:
    """Seconds for ``pathways`` SimPy processes of 8 timeouts each, in one environment."""
    def proc(env):
        for _ in range(8):
            yield env.timeout(1.0)
    t = time.perf_counter()
    env = simpy.Environment()
    for _ in range(pathways):
        env.process(proc(env))
    env.run()
    return time.perf_counter() - t


def run(n: int, overrides: list[str]):
    m = build_model(compose_config([f"cohort.n={n}", "experiment.strategies=[prrt]", *overrides]))
    t = time.perf_counter()
    rec = simulate(m.cohort, m.strategies, m.therapies, m.rules, m.lifetable, m.seed, engine="simpy",
                   centre=m.centre)
    rec.frames()
    return time.perf_counter() - t, rec


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--congested", type=int, default=14, help="slots per week of the congested run")
    a = ap.parse_args(argv)
    n = a.n or (1000 if a.quick else 5000)
    t_bare = bare_simpy(n)
    rows = []
    for name, ov in (("simpy, no resources", []),
                     ("simpy, resources=prrt_uk", ["resources=prrt_uk"]),
                     (f"simpy, resources=prrt_uk, {a.congested} slots/week",
                      ["resources=prrt_uk", f"resources.prrt.slots_per_week={a.congested}"])):
        sec, rec = run(n, ov)
        q = rec.queues[0].summary() if rec.queues else None
        rows.append((name, f"{n:,}", f"{sec:.2f}", f"{n / sec:,.0f}", f"{(n / sec) / (n / t_bare):.4f}",
                     "" if q is None else f"{q['utilisation']:.2f}",
                     "" if q is None else f"{q['mean_wait_months'] * WEEKS_PER_MONTH:.2f}",
                     "" if q is None else f"{q['p95_wait_months'] * WEEKS_PER_MONTH:.2f}"))
    rows.append(("bare SimPy (8 timeouts per pathway)", f"{n:,}", f"{t_bare:.2f}", f"{n / t_bare:,.0f}", "1", "", "",
                 ""))
    print(f"{datetime.date.today()} {platform.machine()} Python {platform.python_version()}\n")
    head = ("what", "pathways", "seconds", "pathways/s", "vs bare SimPy", "utilisation", "mean wait (weeks)",
            "p95 wait (weeks)")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
