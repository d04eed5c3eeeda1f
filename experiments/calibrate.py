"""Calibrate the OS parameters (sim/calibration.py) and ship the result.

Run once (a few minutes), from the repository root::

    python experiments/calibrate.py                 # calibrate, write data/calibration/os_calibration.yaml
    python experiments/calibrate.py --apply         # ... and set the estimates in the configs
    python experiments/calibrate.py --n 3000 --maxfev 200 seed=7    # larger run; trailing Hydra overrides

The configuration is the composed ``experiment=validation`` config (trial designs and the
therapies their arms need) plus any Hydra overrides given after the options; it runs on the
vectorised executor (identical per-patient results, ~10 times faster) unless ``engine=`` is given.
The PFS fits depend on the pre-progression death share (they are fitted on the detected scale),
so ``--apply`` also reruns ``pnetsim-fit`` with the shipped estimate (experiments/fit.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    from hydra import compose, initialize_config_dir

    from sim.calibration import CALIBRATION_FILE, apply_result, calibrate, write_result
    from sim.config import to_container
    from sim.errors import UserError

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1500, help="simulated patients per trial arm (default 1500)")
    ap.add_argument("--maxfev", type=int, default=150, help="maximum objective evaluations (default 150)")
    ap.add_argument("--restarts", type=int, default=2, help="Nelder-Mead restarts from the optimum (default 2)")
    ap.add_argument("--start", type=float, nargs=3, metavar=("DEATH_SHARE", "BSC_MEDIAN", "RHO"),
                    help="starting values (default: the configured ones)")
    ap.add_argument("--apply", action="store_true", help="set the estimates in the configs and assumptions.csv")
    ap.add_argument("--out", type=Path, default=CALIBRATION_FILE)
    ap.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. seed=7")
    a = ap.parse_args(argv)
    try:
        with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
            cfg = compose("config", overrides=["experiment=validation", "engine=vectorised", *a.overrides])
        plain = to_container(cfg)

        def progress(i, x, f):
            print(f"eval {i:4d}  f = {f:.6f}  x = {[round(float(v), 4) for v in x]}", file=sys.stderr, flush=True)

        result = calibrate(plain, n=a.n, maxfev=a.maxfev, start=a.start, restarts=a.restarts, progress=progress)
    except UserError as exc:
        print(f"calibrate: error: {exc}", file=sys.stderr)
        return 2
    path = write_result(result, a.out)
    for t in result["targets"]:
        print(f"{t['trial']:>9} {t['arm']:>13}: published {t['published']:6.1f}  simulated {t['simulated']:6.1f} "
              f"({100 * t['relative_error']:+.1f} %)")
    print({k: v["estimate"] for k, v in result["parameters"].items()}, f"objective {result['objective']}")
    print(f"written {path}")
    if a.apply:
        from experiments.fit import main as fit_main

        apply_result(result)
        print("estimates set in configs/model/default.yaml, configs/therapy/bsc.yaml, data/evidence/assumptions.csv")
        if fit_main([]) != 0:   # the PFS fits at the shipped death share (the calibration used the same fits)
            print("calibrate: error: pnetsim-fit failed after applying the estimates", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
