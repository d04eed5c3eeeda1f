"""``pnetsim``: the default experiment (compare strategies) as a Hydra app.

Examples::

    pnetsim                                   # default experiment, default cohort
    pnetsim cohort.n=200 seed=7               # overrides
    pnetsim -m model.frailty_rho=0,0.3,0.6    # a sweep (Hydra multirun)
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from sim.errors import UserError

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")


def _job_number():
    try:
        from hydra.core.hydra_config import HydraConfig
        hc = HydraConfig.get()
        return hc.job.num if hc.mode.name == "MULTIRUN" else None
    except Exception:
        return None


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    from sim.pipeline import format_summary, run_compare

    try:
        folder, summary = run_compare(cfg, _job_number())
    except UserError as exc:
        print(f"pnetsim: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(format_summary(summary))
    print(f"\nresults written to {folder}")


if __name__ == "__main__":
    main()
