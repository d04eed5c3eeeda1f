"""``pnetsim``: the default experiment (compare strategies) as a Hydra app.

Examples::

    pnetsim                                   # default experiment, default cohort
    pnetsim cohort.n=200 seed=7               # overrides
    pnetsim -m model.frailty_rho=0,0.3,0.6    # a sweep (Hydra multirun)

A sweep job (a multirun job, or a run with ``sweep.name`` set) writes to its deterministic folder
``<output.root>/<experiment.name>/sweeps/<sweep id>/<job key>/`` and is skipped when that folder is
already complete for the same configuration (docs/sweeps.md, sim/sweep.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from sim.errors import UserError
from sim.sweep import activate, current_job, skip_if_complete

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
    "evsi": "sim.economics.evsi:run",
    "optimise": "sim.optimise:run",
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
        sweep_job = current_job(cfg)        # None unless a multirun or sweep.name (sim/sweep.py)
        if skip_if_complete(sweep_job):     # before importing the experiment: a skip is fast
            return
        run = experiment_runner(cfg.experiment.get("kind", "compare"))
        with activate(sweep_job):
            folder, text = run(cfg, _job_number())
    except UserError as exc:
        print(f"pnetsim: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(text)
    print(f"\nresults written to {folder}")


if __name__ == "__main__":
    main()
