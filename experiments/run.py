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

import gc
import importlib
import os
import re
import sys
from importlib import metadata
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, OverrideParseException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from sim.config import to_container
from sim.errors import UserError
from sim.runio import check_memory, check_writable, warn_small_cohort
from sim.schema import check_keys
from sim.sweep import activate, current_job, skip_if_complete

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")

USAGE = """usage: pnetsim [key=value ...] [experiment=KIND] [-m key=a,b ...] [--version] [--help]

Simulate treatment pathways in metastatic pancreatic NET and compare strategies (costs, QALYs, ICERs).

experiment kinds (experiment=...):
  default     compare strategies: switch, sunitinib rechallenge, PRRT sequence (no option needed)
  psa         probabilistic sensitivity analysis and value of information
  dsa         one-way (tornado) and scenario analyses
  validation  every trial arm under its own design against the published figures
  emulation   the single-arm rechallenge trial: 6-month PFS and power

common overrides:
  seed=7                      master seed (every random stream derives from it)
  cohort.n=2000               patients of the generated cohort
  cohort.source=cohort.csv    a cohort file instead (docs/cohort.md; then do not set cohort.n)
  "experiment.strategies=[switch,rechallenge]"  strategies to compare (docs/strategies.md)
  output.root=results         where run folders are written
  output.figures=false        no figures; output.progress=false: no progress display
  -m seed=1,2,3               a sweep (docs/sweeps.md)

docs: README.md, docs/configuration.md (every key, type, range and default), docs/cohort.md,
docs/strategies.md, docs/outputs.md. Shell completion: eval "$(pnetsim -sc install=bash)".

Hydra's own help follows (config groups, then the composed configuration).
"""


def _job_number():
    try:
        hc = HydraConfig.get()
        return hc.job.num if hc.mode.name == "MULTIRUN" else None
    except Exception:
        return None


# experiment.kind -> "module:function"; each function takes (cfg, job) and returns
# (run folder, text to print). Imported lazily so that a run only loads what it uses.
KINDS = {
    "compare": "sim.pipeline:run",
    "psa": "sim.uncertainty.psa:run",
    "dsa": "sim.uncertainty.dsa:run",
    "validation": "sim.validation:run",
    "emulation": "sim.emulation:run",
    "evsi": "sim.uncertainty.evsi:run",
    "optimise": "sim.optimise:run",
}


#: kinds that simulate the composed model as it is, shared resources included (the others build
#: their own trial or sequence models)
RESOURCE_KINDS = ("compare", "psa", "dsa")


def experiment_runner(kind):
    """The entry function of an experiment kind; a :class:`UserError` names an unknown kind."""
    if kind not in KINDS:
        raise UserError(f"experiment.kind must be one of {sorted(KINDS)}, got {kind!r}")
    module, func = KINDS[kind].split(":")
    return getattr(importlib.import_module(module), func)


def _task_overrides() -> list[str]:
    """This job's command-line overrides (empty outside a Hydra app)."""
    try:
        return list(HydraConfig.get().overrides.task)
    except Exception:
        return []


def check_cohort_source(plain: dict, overrides: list[str]) -> None:
    """Refuse ``cohort.n`` set together with a ``cohort.source`` file: the file's rows are the cohort,
    so the size asked for would be silently ignored (and misreported)."""
    source = (plain.get("cohort") or {}).get("source")
    given = [o for o in overrides if re.match(r"^\+{0,2}cohort\.n=", o)]
    if source and given:
        raise UserError(f"cohort.n cannot be set together with cohort.source (the file's rows are the cohort; "
                        f"drop cohort.n), got {given[-1].lstrip('+')!r} with cohort.source={source!r}")


def check_before_work(cfg: DictConfig) -> dict:
    """Every check that needs no simulation, before any work starts: known keys, the output group
    (strict booleans), ``cohort.n`` with ``cohort.source``, a generated cohort that fits in memory (every
    experiment kind), and a writable ``output.root``."""
    plain = to_container(cfg)
    check_keys(plain)
    check_cohort_source(plain, _task_overrides())
    cohort, exp = plain.get("cohort") or {}, plain.get("experiment") or {}
    n = cohort.get("n")
    if not cohort.get("source") and isinstance(n, int) and not isinstance(n, bool):
        names = exp.get("strategies")
        check_memory(n, len(names) if isinstance(names, list) and names else 1)
    kind = exp.get("kind", "compare")
    if plain.get("resources") is not None and kind not in RESOURCE_KINDS:
        raise UserError(f"resources: experiment kind {kind!r} does not model shared capacity (only "
                        f"{', '.join(RESOURCE_KINDS)} do; drop resources=...), got {sorted(plain['resources'])!r}")
    check_writable(plain["output"]["root"], str((plain.get("experiment") or {}).get("name") or "") or None)
    return plain


def warn_after_run(plain: dict) -> None:
    """The small-cohort warning of a PSA or DSA (after the run, so that a bad value still gives one
    line; a comparison warns as soon as its cohort is built, with the size it simulates)."""
    cohort, exp = plain.get("cohort") or {}, plain.get("experiment") or {}
    n = cohort.get("n")
    if not cohort.get("source") and isinstance(n, int) and exp.get("kind") in ("psa", "dsa"):
        warn_small_cohort(n)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def app(cfg: DictConfig) -> None:
    """The Hydra app: check, then run the experiment kind and print its text and run folder."""
    try:
        plain = check_before_work(cfg)
        sweep_job = current_job(cfg)        # None unless a multirun or sweep.name (sim/sweep.py)
        if skip_if_complete(sweep_job):     # before importing the experiment: a skip is fast
            return
        run = experiment_runner(cfg.experiment.get("kind", "compare"))
        # one run in this process: freeze the experiment's modules too (see main); not in a multirun
        # job, whose process may run more jobs (their garbage must stay collectable)
        if _job_number() is None:
            gc.freeze()
        with activate(sweep_job):
            folder, text = run(cfg, _job_number())
    except UserError as exc:
        print(f"pnetsim: error: {exc}", file=sys.stderr)
        sys.exit(2)
    warn_after_run(plain)
    print(text)
    print(f"\nresults written to {folder}")


def hydra_message(exc: BaseException, args: list[str] | None = None) -> str:
    """One line for an error Hydra or OmegaConf raised while composing (unknown config option, misspelt
    key, an override it cannot parse), naming the key and the value (taken from ``args``, the
    command-line overrides, where Hydra's message does not give it)."""
    text = str(exc).strip()
    m = re.search(r"Could not find '([\w/@.-]+)/([^']+)'", text)
    if m:
        opts = re.findall(r"^\t(\S+)$", text, flags=re.M)
        return (f"{m.group(1).replace('/', '.')} must be one of the shipped options [{', '.join(opts)}], "
                f"got {m.group(2)!r}")
    m = re.search(r"Could not override '([^']+)'", text)
    if m:
        key = m.group(1)
        given = [a.split("=", 1)[1] for a in (args or []) if a.split("=", 1)[0].lstrip("+~") == key and "=" in a]
        return (f"{key} is not a configuration key (docs/configuration.md lists every key; a new entry is added "
                f"with +), got {key}={given[-1] if given else ''}")
    m = re.search(r"Could not append to config\. An item is already at '([^']+)'", text)
    if m:
        return f"{m.group(1)} already exists: set it without '+', got +{m.group(1)}"
    m = re.search(r"Error parsing override '([^']*)'", text) or re.search(r"Exception: (\S+)", text)
    if m and isinstance(exc, OverrideParseException):
        return (f"override could not be parsed (quote a value with spaces or non-ASCII characters: "
                f"key='\"value\"'), got {m.group(1)!r}")
    first = " ".join(line.strip() for line in text.splitlines() if line.strip())
    return first or type(exc).__name__


def _root_of(args: list[str]) -> str:
    """``output.root`` as given on the command line (the last one wins), else the shipped default."""
    roots = [a.split("=", 1)[1] for a in args if re.match(r"^\+{0,2}output\.root=", a)]
    return roots[-1] if roots else "results"


def prune_empty(folder: Path) -> None:
    """Remove ``folder`` and the folders below it that hold no file (a multirun's Hydra sweep folder
    when the launcher wrote nothing there); folders with files (cluster logs) stay."""
    if not folder.is_dir():
        return
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        try:
            sub.rmdir()
        except OSError:
            pass
    try:
        folder.rmdir()
    except OSError:
        pass


def main(argv: list[str] | None = None) -> None:
    """``pnetsim``: ``--version``, a short usage before Hydra's ``--help``, and Hydra's own errors
    (unknown option, misspelt key, unparsable override) as one line ``pnetsim: error: ...`` with
    exit status 2. The app itself reports bad values the same way (:func:`app`)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if "--version" in args or "-V" in args:
        try:
            version = metadata.version("pnetsim")
        except metadata.PackageNotFoundError:
            version = "unknown (not installed)"
        print(f"pnetsim {version}")
        return
    if "--help" in args or "-h" in args:
        print(USAGE)
    # what is imported by now lives as long as the process: keep it out of the collector's scans (each
    # full collection of a run would traverse it; the forked figure processes copy fewer pages)
    gc.freeze()
    full = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"      # Hydra raises instead of printing multi-line text and exiting 1
    saved, sys.argv = sys.argv, [sys.argv[0], *args]
    hydra_dir = Path(_root_of(args)) / ".hydra"
    existed = hydra_dir.exists()
    try:
        app()
    except (HydraException, OmegaConfBaseException) as exc:
        if full:
            raise
        print(f"pnetsim: error: {hydra_message(exc, args)}", file=sys.stderr)
        sys.exit(2)
    finally:
        sys.argv = saved
        if not existed:
            prune_empty(hydra_dir)
        if not full:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        if argv is not None:
            gc.unfreeze()   # called from Python (tests, notebooks): the collector as it was
        # not frozen at exit: objects of the run (e.g. pyarrow readers) must be finalised before the
        # interpreter's teardown (a frozen reader left its C++ thread pool running: std::terminate)


if __name__ == "__main__":
    main()
