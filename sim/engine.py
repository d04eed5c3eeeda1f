"""SimPy engine: one generator process per patient, replaying the dates that the therapy
and strategy rules resolve. No clinical numbers live here.

Patients do not share resources in the default model, so each chunk of patients runs in
its own :class:`simpy.Environment` (small event heaps are faster); results do not depend
on the chunk size because every draw comes from the patient's own named streams.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import simpy
from scipy.special import ndtri

from sim.fastdraw import scalar_sampler
from sim.lifetable import LifeTable
from sim.rng import WIDTH, Draws, uniforms
from sim.strategies import Strategy
from sim.therapies.definition import Therapy
from sim.therapies.line import LineHistory, ModelRules, covariates, eligible, frailty_uniforms, plan_line

STREAMS_PER_PATIENT = ("frailty", "background_death")


@dataclass
class Records:
    """Row buffers of the three output tables."""

    patients: list = field(default_factory=list)
    lines: list = field(default_factory=list)
    events: list = field(default_factory=list)

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """Frames in a fixed order (strategy as first simulated, patient, line; events in time order
        within a patient), independent of the order in which the event heap finished the processes."""
        from sim.events import COLUMNS
        frames = (pd.DataFrame(self.patients), pd.DataFrame(self.lines),
                  pd.DataFrame(self.events, columns=list(COLUMNS)))
        out = []
        for df in frames:
            if len(df):
                rank = {s: i for i, s in enumerate(pd.unique(df["strategy"]))}
                key = ["_rank", "patient_id"] + (["line"] if "line" in df and df is frames[1] else [])
                df = (df.assign(_rank=df["strategy"].map(rank)).sort_values(key, kind="stable")
                      .drop(columns="_rank").reset_index(drop=True))
            out.append(df)
        return tuple(out)


class PatientDraws:
    """Uniform accessor ``U(stream, slot)`` for one row of a chunk's :class:`Draws`."""

    __slots__ = ("draws", "row")

    def __init__(self, draws, row: int):
        self.draws, self.row = draws, row

    def __call__(self, stream: str, slot: int) -> float:
        return self.draws[stream].item(self.row, slot)


class IdDraws(Draws):
    """Like :class:`~sim.rng.Draws` but for arbitrary (non-contiguous) patient ids."""

    def __init__(self, seed: int, ids: np.ndarray):
        super().__init__(seed, -1, len(ids))
        self.ids = np.asarray(ids)

    def _generate(self, name):
        return np.vstack([uniforms(self.master_seed, name, int(i), 1, self.sample) for i in self.ids]).reshape(-1, WIDTH)


def chunk_draws(seed: int, ids: np.ndarray):
    """Named streams for the patients ``ids`` of one chunk (block form when contiguous)."""
    ids = np.asarray(ids)
    if ids.size and np.array_equal(ids, np.arange(ids[0], ids[0] + ids.size)):
        return Draws(seed, int(ids[0]), int(ids.size))
    return IdDraws(seed, ids)


def _prior_history(patient) -> list[LineHistory]:
    names = [t for t in str(patient["prior_therapies"]).split(";") if t]
    return [LineHistory(t, -math.inf, 0.0, "prior", math.nan) for t in names]


def patient_process(env: simpy.Environment, patient: Mapping, strategy: Strategy, therapies: Mapping[str, Therapy],
                    rules: ModelRules, U, death_bg: float, rec: Records):
    """The pathway of one patient under one strategy (a SimPy generator)."""
    pid, sname = int(patient["patient_id"]), strategy.name
    history = _prior_history(patient)
    events, lines = rec.events, rec.lines
    i, active, line = 0, 0, 0
    death_time, death_cause, end_reason = math.inf, "", ""
    progressions = []
    while True:
        th = therapies[strategy.lines[i]]
        if th.kind != "terminal":
            if strategy.max_active_lines is not None and active >= strategy.max_active_lines:
                i = strategy.terminal_index
                continue
            why = eligible(th, patient, history)
            if why is not None:
                events.append((pid, sname, env.now, line, "line_skipped", f"{th.name}:{why}", math.nan))
                i = i + 1 if strategy.skip_ineligible else strategy.terminal_index
                continue
            if th.name in strategy.uptake and U("uptake", line) >= strategy.uptake[th.name]:
                events.append((pid, sname, env.now, line, "line_skipped", f"{th.name}:not_taken", math.nan))
                i += 1
                continue
            hol = strategy.holiday_months.get(th.name, 0.0)
            if hol > 0:
                terminal = therapies[strategy.lines[-1]]
                d_hol = env.now + scalar_sampler(terminal.pfs)(U("holiday", line))
                end_h = env.now + hol
                stop = min(end_h, d_hol, death_bg, rules.horizon_months)
                events.append((pid, sname, env.now, line, "holiday_start", th.name, hol))
                yield env.timeout(stop - env.now)
                if stop < end_h:  # death or the horizon came first
                    if stop >= rules.horizon_months:
                        end_reason = "horizon"
                    else:
                        death_time, death_cause = stop, ("disease" if stop == d_hol else "other")
                        events.append((pid, sname, stop, line, "death", death_cause, math.nan))
                    break
                events.append((pid, sname, env.now, line, "holiday_end", th.name, hol))
        line += 1
        res = plan_line(th, therapies, patient, line, env.now, death_bg, history, U, U("pfs|frailty", line - 1), rules)
        for t, event, detail, value in res.events:
            if t > env.now:
                yield env.timeout(t - env.now)
            events.append((pid, sname, t, line, event, detail, value))
        r = res.record
        r["patient_id"], r["strategy"] = pid, sname
        lines.append(r)
        if res.reason in ("progression", "death") and th.kind != "terminal":
            progressions.append(res.end)
        if res.reason in ("death", "horizon") or th.kind == "terminal":
            death_time, death_cause, end_reason = res.death_time, res.death_cause, res.reason
            break
        history.append(LineHistory(th.name, r["start"], res.end, res.reason, r["pfs_months"]))
        active += th.kind == "active"
        i = strategy.terminal_index if (res.reason == "toxicity" and strategy.after_toxicity == "terminal") else i + 1
    horizon = rules.horizon_months
    os_t = min(death_time, horizon)
    dead = death_time <= horizon

    def nth(n):  # time to n-th detected progression or death
        if len(progressions) >= n:
            return progressions[n - 1], True
        return os_t, dead

    (pfs1, e1), (pfs2, e2) = nth(1), nth(2)
    rec.patients.append(dict(
        patient_id=pid, strategy=sname, os_months=os_t, death=dead, death_cause=death_cause if dead else "",
        pfs1_months=pfs1, pfs1_event=e1, pfs2_months=pfs2, pfs2_event=e2,
        n_lines=line, end_reason=end_reason or ("death" if dead else "horizon"),
    ))


def simulate(cohort: pd.DataFrame, strategies: Mapping[str, Strategy], therapies: Mapping[str, Therapy],
             rules: ModelRules, lifetable: LifeTable, seed: int, chunk_size: int = 500, progress=None) -> Records:
    """Simulate every patient of ``cohort`` under every strategy (common random numbers).

    ``progress`` is an optional callable receiving the number of patients just finished.
    """
    rec = Records()
    n = len(cohort)
    for a in range(0, n, chunk_size):
        chunk = cohort.iloc[a:a + chunk_size]
        ids = chunk["patient_id"].to_numpy()
        draws = chunk_draws(seed, ids)
        rows = chunk.to_dict("records")
        covs = [covariates(p) for p in rows]
        cov = {c: np.array([x[c] for x in covs], dtype=float) for c in covs[0]} if covs else {}
        hr = {name: np.exp(th.log_hazard_multiplier(cov, rules.covariate_reference) + np.zeros(len(rows))).tolist()
              for name, th in therapies.items()}
        for j, p in enumerate(rows):
            p["_cov"] = covs[j]
            p["_hr"] = {name: v[j] for name, v in hr.items()}
        draws.derive("pfs|frailty", frailty_uniforms(draws["pfs"], ndtri(draws["frailty"][:, 0]), rules.frailty_rho))
        death_bg = lifetable.death_time_months(chunk["age"].to_numpy(float), chunk["sex"].astype(str).to_numpy(),
                                               draws["background_death"][:, 0])
        for strategy in strategies.values():
            env = simpy.Environment()
            for j, p in enumerate(rows):
                env.process(patient_process(env, p, strategy, therapies, rules, PatientDraws(draws, j),
                                            float(death_bg[j]), rec))
            env.run()
        if progress is not None:
            progress(len(rows))
    return rec
