"""Calibrate the OS parameters that no source reports (sim/calibration.py) and ship the result.

Run once (a few minutes), from the repository root::

    pnetsim-calibrate                  # grid posterior, written to data/calibration/os_calibration.yaml
    pnetsim-calibrate --apply          # ... and set the estimates in the configs (reruns pnetsim-fit)
    pnetsim-calibrate --n 3000 seed=7  # larger run; trailing Hydra overrides

The configuration is the composed ``experiment=validation`` config (trial designs, post-trial
lines and the therapies their arms need) plus any Hydra overrides given after the options; it
runs on the vectorised executor unless ``engine=`` is given. The PFS fits depend on the
disease-death rate (deaths compete on the detected scale), so ``--apply`` also reruns
``pnetsim-fit`` with the shipped estimate.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

from experiments.fit import main as fit_main
from sim.calibration import CALIBRATION_FILE, apply_result, calibrate, write_result
from sim.config import to_container
from sim.errors import UserError
from sim.runio import progress_bar

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1500, help="simulated patients per trial arm (default 1500)")
    ap.add_argument("--apply", action="store_true", help="set the estimates in the configs and assumptions.csv")
    ap.add_argument("--out", type=Path, default=CALIBRATION_FILE)
    ap.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. seed=7")
    a = ap.parse_args(argv)
    try:
        with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
            cfg = compose("config", overrides=["experiment=validation", "engine=vectorised", *a.overrides])
        plain = to_container(cfg)
        with progress_bar("auto", None, "grid points") as bar:
            result = calibrate(plain, n=a.n, progress=lambda i, total, x, lp: bar.update(1))
    except UserError as exc:
        print(f"pnetsim-calibrate: error: {exc}", file=sys.stderr)
        return 2
    path = write_result(result, a.out)
    for t in result["targets"]:
        print(f"{t['trial']:>9} {t['arm']:>13}: published {t['published']:6.1f}  simulated {t['simulated']:6.1f} "
              f"({100 * t['relative_error']:+.1f} %), posterior predictive {t['posterior_predictive']:6.1f}")
    for k, v in result["parameters"].items():
        print(f"{k}: {v['estimate']} (posterior SD {v['posterior_sd']:.3f} on the {v['coordinate']} scale)")
    print(f"effective grid points {result['effective_grid_points']:.1f}; written {path}")
    if a.apply:
        apply_result(result)
        print("estimates set in configs/experiment/validation.yaml, configs/model/default.yaml, "
              "configs/psa/default.yaml, data/evidence/assumptions.csv")
        if fit_main([]) != 0:   # the PFS fits at the shipped rate (the calibration used the same fits)
            print("pnetsim-calibrate: error: pnetsim-fit failed after applying the estimates", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
