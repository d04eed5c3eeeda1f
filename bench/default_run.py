"""Benchmark: what a user waits for, the default ``pnetsim`` (no overrides but ``output.root``, a
temporary folder), by phase, and cold starts.

Each repeat runs, in fresh processes (``sys.executable``, the repository root as working folder):

* ``pnetsim --help`` (``python -m experiments.run --help``): wall time and CPU time (user + system,
  with its child processes);
* the full default run ``python -m experiments.run output.root=<tmp>``: the same;
* the same run under a driver (``main()`` from ``sys.argv``, as the command line) that times its
  phases, wall and CPU time of the main process: the import of ``experiments.run``, the import of
  the experiment (``sim.pipeline``), Hydra (composing the config twice, the time in ``main`` outside
  every timed function), and the exclusive time of each function of :data:`TIMED` (a function called
  inside another is counted once, in the innermost one). Work done in the forked figure processes
  (``sim/background.py``) shows as the main process waiting for them. "interpreter start and exit"
  is the wall time of the process minus everything measured inside it.

Medians over the repeats are printed as Markdown tables (the machine is shared: repeat, and read
the load averages printed with the figures).

Usage::

    python bench/default_run.py              # 5 repeats
    python bench/default_run.py --quick      # 1 repeat
    python bench/default_run.py --repeats 9
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: (phase, label, module, attribute): the functions timed in the driver; each is replaced on its
#: module and, when present there under the same name, on ``sim.pipeline``
TIMED = [
    ("Hydra", "config checks (known keys, memory, writable root)", "experiments.run", "check_before_work"),
    ("build", "build model (config, cohort)", "sim.config", "build_model"),
    ("simulate", "simulate", "sim.pipeline", "simulate_run"),
    ("analyse", "summary", "sim.outcomes", "summarise"),
    ("analyse", "paired differences (bootstrap)", "sim.outcomes", "paired_differences"),
    ("analyse", "costs and QALYs", "sim.pipeline", "economics_tables"),
    ("analyse", "treatment flow", "sim.flow", "treatment_flow"),
    ("analyse", "treatment flow notes", "sim.flow", "never_given_notes"),
    ("analyse", "subgroups", "sim.flow", "subgroup_table"),
    ("analyse", "comparisons", "sim.comparisons", "comparison_table"),
    ("analyse", "phases", "sim.comparisons", "phase_table"),
    ("write", "parquet files", "pandas", "DataFrame.to_parquet"),
    ("write", "parquet files", "pyarrow.parquet", "write_table"),
    ("write", "csv files", "pandas", "DataFrame.to_csv"),
    ("write", "figure: KM curves", "sim.report.figures", "km_figures"),
    ("write", "figure: KM curves, waiting for the child process drawing them", "sim.background", "Task.result"),
    ("write", "figure: treatment flow", "sim.flow", "flow_figure"),
    ("write", "figure: CE plane", "sim.report.figures", "ce_plane_paired"),
    ("write", "figure: savefig (PNG encoding, inside the figures)", "matplotlib.figure", "Figure.savefig"),
    ("write", "report (html, md)", "sim.report.html", "write_report"),
    ("write", "report: cohort characteristics", "sim.report.html", "cohort_characteristics"),
    ("write", "manifest", "sim.runio", "write_manifest"),
]

DRIVER = r"""
import importlib, json, sys, time
W, C = time.perf_counter, time.process_time
w_start, c_start = W(), C()
out_json, root, timed = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
acc = {}          # label -> [wall, cpu], exclusive of the timed calls inside
stack = []

def clock(label, w, c):
    a = acc.setdefault(label, [0.0, 0.0])
    a[0] += w
    a[1] += c

def wrap(label, f):
    def timed_call(*a, **k):
        w0, c0 = W(), C()
        stack.append([0.0, 0.0])
        try:
            return f(*a, **k)
        finally:
            iw, ic = stack.pop()
            dw, dc = W() - w0, C() - c0
            clock(label, dw - iw, dc - ic)
            if stack:
                stack[-1][0] += dw
                stack[-1][1] += dc
    timed_call.__wrapped__ = f
    return timed_call

w0, c0 = W(), C()
import experiments.run as er
w1, c1 = W(), C()
import sim.pipeline as pipeline
w2, c2 = W(), C()
for _phase, label, mod, attr in timed:
    try:
        m = importlib.import_module(mod)
    except ImportError:
        continue
    owner, name = m, attr
    if "." in attr:
        cls, name = attr.split(".")
        owner = getattr(m, cls)
    f = getattr(owner, name, None)
    if f is None:
        continue
    w = wrap(label, f)
    setattr(owner, name, w)
    if owner is m and getattr(pipeline, name, None) is f:
        setattr(pipeline, name, w)
w3, c3 = W(), C()
sys.argv = ["pnetsim", f"output.root={root}"]       # as the command line does (main() reads sys.argv)
er.main()
w4, c4 = W(), C()
mw, mc = sum(v[0] for v in acc.values()), sum(v[1] for v in acc.values())
acc["imports: experiments.run (hydra, sim.config, ...)"] = [w1 - w0, c1 - c0]
acc["imports: the experiment (sim.pipeline and what it imports)"] = [w2 - w1, c2 - c1]
acc["Hydra: compose the config (twice), and the rest of the run not timed here"] = [(w4 - w3) - mw, (c4 - c3) - mc]
acc["driver: other (patching the timers)"] = [(w3 - w2) + (w0 - w_start), (c3 - c2) + (c0 - c_start)]
with open(out_json, "w") as f:
    json.dump(acc, f)
"""


def wall(cmd: list[str], env: dict, cpu: list | None = None) -> float:
    """Wall time of ``cmd``; appends its CPU time (user + system, with its children) to ``cpu``."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
    return dt


def machine(load_before: float) -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{datetime.date.today()}, {platform.node()}, nproc {os.cpu_count()}, {cpu}, "
            f"Python {platform.python_version()}, 1-min load average {load_before:.2f} before, "
            f"{os.getloadavg()[0]:.2f} after")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="one repeat")
    args = ap.parse_args()
    repeats = 1 if args.quick else args.repeats
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    py = sys.executable
    load_before = os.getloadavg()[0]
    help_t, run_t, phase_wall, phases, help_cpu, run_cpu = [], [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            help_t.append(wall([py, "-m", "experiments.run", "--help"], env, help_cpu))
            run_t.append(wall([py, "-m", "experiments.run", f"output.root={tmp}/run{i}"], env, run_cpu))
            out = Path(tmp) / f"phases{i}.json"
            phase_wall.append(wall([py, "-c", DRIVER, str(out), f"{tmp}/phased{i}",
                                    json.dumps([list(t) for t in TIMED])], env))
            phases.append(json.loads(out.read_text()))
    print(f"Default `pnetsim` ({machine(load_before)}); medians of {repeats} repeat(s), seconds\n")
    print("| cold start (fresh process) | wall, median | min | max | CPU (user + system), median |")
    print("|---|---:|---:|---:|---:|")
    for name, xs, cs in (("`pnetsim --help`", help_t, help_cpu), ("`pnetsim` (default run, full)", run_t, run_cpu)):
        print(f"| {name} | {statistics.median(xs):.2f} | {min(xs):.2f} | {max(xs):.2f} | {statistics.median(cs):.2f} |")
    labels = list(dict.fromkeys([lab for _, lab, _, _ in TIMED]))
    phase_of = {lab: ph for ph, lab, _, _ in TIMED}
    extra = [k for k in phases[0] if k not in labels]
    inside = [sum(v[0] for v in p.values()) for p in phases]
    rows = [("start", "interpreter start and exit (wall of the process minus all below)",
             [w - s for w, s in zip(phase_wall, inside)], None)]
    for k in extra:
        ph = "imports" if k.startswith("imports") else ("Hydra" if k.startswith("Hydra") else "other")
        rows.append((ph, k, [p.get(k, [0.0, 0.0])[0] for p in phases], [p.get(k, [0.0, 0.0])[1] for p in phases]))
    for lab in labels:
        rows.append((phase_of[lab], lab, [p.get(lab, [0.0, 0.0])[0] for p in phases],
                     [p.get(lab, [0.0, 0.0])[1] for p in phases]))
    order = ["start", "imports", "Hydra", "build", "simulate", "analyse", "write", "other"]
    rows.sort(key=lambda r: order.index(r[0]))
    med = statistics.median
    print("\n| phase | step | wall s | CPU s (this process) |")
    print("|---|---|---:|---:|")
    for ph, lab, ws, cs in rows:
        print(f"| {ph} | {lab} | {med(ws):.3f} | {'' if cs is None else f'{med(cs):.3f}'} |")
    totals: dict[str, list[float]] = {}
    for ph, _lab, ws, _cs in rows:
        totals.setdefault(ph, [0.0] * len(ws))
        totals[ph] = [a + b for a, b in zip(totals[ph], ws)]
    print("\n| phase | wall s |")
    print("|---|---:|")
    for ph in order:
        if ph in totals:
            print(f"| {ph} | {med(totals[ph]):.2f} |")
    print(f"| **total (wall of the timed process)** | **{med(phase_wall):.2f}** |")


if __name__ == "__main__":
    main()
