"""Choice of executor: the SimPy engine or the vectorised executor, same model, same output.

* ``"simpy"`` (:func:`sim.run.engine.simulate`): one process per patient on a SimPy clock. The
  reference; needed as soon as patients interact (shared resources such as PRRT slots,
  capacity queues), where a patient's dates depend on the others.
* ``"vectorised"`` (:func:`sim.run.vectorised.simulate_vectorised`): all patients of a chunk at
  once, valid when patients are independent given their own streams.
* ``"auto"``: the SimPy engine when the model has shared resources (config group
  ``resources``, :mod:`sim.resources`), else the vectorised executor.

Both call the same clinical functions and read the same named streams at the same slots,
so for a seed they give the same frames (floats equal to round-off; same row order).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from sim.run.engine import simulate as run
from sim.errors import UserError
from sim.lifetable import LifeTable
from sim.resources import Centre
from sim.strategies import Strategy
from sim.therapies.definition import Therapy
from sim.kernel.line import ModelRules
from sim.run.vectorised import simulate_vectorised

ENGINES = ("auto", "simpy", "vectorised")
#: default chunk size of the SimPy engine (small event heaps are faster)
SIMPY_CHUNK = 500


def resolve_engine(engine: str, resources: bool = False) -> str:
    """``"simpy"`` or ``"vectorised"`` for the ``engine`` setting (see the module docstring);
    ``resources``: whether the model has shared resources (the vectorised executor cannot model them)."""
    if engine not in ENGINES:
        raise UserError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
    if resources and engine == "vectorised":
        raise UserError("engine vectorised cannot model shared resources (config group resources): "
                        "use engine=simpy or engine=auto, got 'vectorised'")
    if engine == "auto":
        return "simpy" if resources else "vectorised"
    return engine


def simulate(cohort: pd.DataFrame, strategies: Mapping[str, Strategy], therapies: Mapping[str, Therapy],
             rules: ModelRules, lifetable: LifeTable, seed: int, engine: str = "auto", chunk_size: int | None = None,
             progress=None, sample: int = 0, centre: Centre | None = None):
    """Simulate every patient of ``cohort`` under every strategy with the chosen executor.

    Parameters
    ----------
    engine : {"auto", "simpy", "vectorised"}
        Executor (``auto``: vectorised, see the module docstring). Anything else raises
        :class:`~sim.errors.UserError` naming ``engine``.
    chunk_size : int, optional
        Patients per chunk (default 500 for SimPy, :data:`sim.run.vectorised.CHUNK` for the
        vectorised executor); results do not depend on it.
    sample : int, default 0
        PSA sample whose random streams are used (streams keyed by (seed, name, sample)).
    centre : Centre, optional
        Shared resources (:mod:`sim.resources`): the SimPy engine with one environment per strategy.

    Returns
    -------
    RunRecord
        The run record (:mod:`sim.run.record`): ``.frames() -> (patients, lines, events)`` with the
        columns of ``docs/outputs.md``; ``.queues`` with shared resources.
    """
    kind = resolve_engine(engine, centre is not None)
    if chunk_size is not None and not (isinstance(chunk_size, int) and chunk_size >= 1):
        raise UserError(f"chunk_size must be a whole number >= 1, got {chunk_size!r}")
    if kind == "simpy":
        return run(cohort, strategies, therapies, rules, lifetable, seed,
                   chunk_size=chunk_size or SIMPY_CHUNK, progress=progress, sample=sample, centre=centre)
    return simulate_vectorised(cohort, strategies, therapies, rules, lifetable, seed, chunk_size=chunk_size,
                               progress=progress, sample=sample)
