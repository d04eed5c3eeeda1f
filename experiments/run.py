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


# experiment.kind -> "module:function"; each function takes (cfg, job) and returns
# (run folder, text to print). Imported lazily so that a run only loads what it uses.
KINDS = {
    "compare": "sim.pipeline:run",
    "psa": "sim.economics.psa:run",
    "dsa": "sim.economics.dsa:run",
    "validation": "sim.validation:run",
    "emulation": "sim.emulation:run",
}


def experiment_runner(kind):
    """The entry function of an experiment kind; a :class:`UserError` names an unknown kind."""
    import importlib

    if kind not in KINDS:
        raise UserError(f"experiment.kind must be one of {sorted(KINDS)}, got {kind!r}")
    module, func = KINDS[kind].split(":")
    return getattr(importlib.import_module(module), func)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        run = experiment_runner(cfg.experiment.get("kind", "compare"))
        folder, text = run(cfg, _job_number())
    except UserError as exc:
        print(f"pnetsim: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(text)
    print(f"\nresults written to {folder}")


if __name__ == "__main__":
    main()
