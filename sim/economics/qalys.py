"""Life-years and QALYs per patient x strategy from the lines and events tables (vectorised).

Health-state convention (the true disease state, not the observed one):

* on each non-terminal line, ``[start, min(progression_true, end))`` is **progression-free**
  (each new line starts progression-free: the patient is stable on the new therapy);
* ``[progression_true, end)`` -- the detection lag until the scan that sees the progression --
  is **progressed** (the disease has progressed whether or not a scan has shown it yet);
* a terminal line (best supportive care; ``pfs_true`` NaN) is **progressed** throughout;
* time between lines (treatment holidays) and after the last line until death/horizon keeps the
  state at the end of the previous line; time before the first line is progression-free;
* a line ended by death or toxicity before progression is progression-free until it ends.

With utilities ``u_PF``, ``u_PD`` per year, AE decrements ``delta_a`` over the AE duration
``w_a`` (weeks, the event's value), continuous monthly rate ``r`` and horizon ``H``::

    LY   = D(0, min(OS, H)) / 12
    QALY = [u_PF * sum_PF D(a, b) + u_PD * sum_PD D(a, b)
            - sum_AE delta_a * D(t_a, min(t_a + w_a, OS, H))] / 12

with ``D(a, b) = integral_a^b exp(-r t) dt`` over segments clipped to ``[0, H]``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim.economics.discount import interval_factor
from sim.economics.spec import EconomicsSpec
from sim.units import MONTHS_PER_YEAR, weeks

KEYS = ["strategy", "patient_id"]


def state_segments(patients: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """All lived time as segments ``(strategy, patient_id, a, b, progressed)`` covering ``[0, OS]``."""
    li = lines.sort_values(KEYS + ["line"], kind="stable")
    os_map = patients.set_index(KEYS)["os_months"]
    os_l = os_map.reindex(pd.MultiIndex.from_frame(li[KEYS])).to_numpy(float)
    start, end = li["start"].to_numpy(float), li["end"].to_numpy(float)
    terminal = li["pfs_true"].isna().to_numpy()
    prog = li["progression_true"].to_numpy(float)
    progressed_in_line = ~terminal & np.isfinite(prog) & (prog <= end)
    pf_end = np.where(terminal, start, np.where(progressed_in_line, prog, end))
    g = li.groupby(KEYS, sort=False)
    nxt = g["start"].shift(-1).to_numpy(float)
    gap_end = np.where(np.isnan(nxt), os_l, nxt)
    gap_pd = terminal | progressed_in_line
    first = g.cumcount().to_numpy() == 0
    keys = li[KEYS].reset_index(drop=True)
    parts = [
        keys.assign(a=start, b=pf_end, progressed=False),                      # progression-free on line
        keys.assign(a=pf_end, b=end, progressed=True),                         # lag / terminal line
        keys.assign(a=end, b=gap_end, progressed=gap_pd),                      # holidays, tail
        keys[first].assign(a=0.0, b=start[first], progressed=False),           # before the first line
    ]
    no_lines = patients.loc[~pd.MultiIndex.from_frame(patients[KEYS]).isin(pd.MultiIndex.from_frame(li[KEYS])), KEYS]
    parts.append(no_lines.reset_index(drop=True).assign(a=0.0, b=patients.loc[no_lines.index, "os_months"].to_numpy(float),
                                                          progressed=False))
    seg = pd.concat(parts, ignore_index=True)
    return seg[seg["b"] > seg["a"]].reset_index(drop=True)


def patient_effects(patients: pd.DataFrame, lines: pd.DataFrame, events: pd.DataFrame, spec: EconomicsSpec,
                    annual: float) -> pd.DataFrame:
    """Life-years, PF / PD years, AE QALY loss and QALYs per patient x strategy (rows of ``patients``).

    Columns: ``ly, pf_ly, pd_ly, qaly_pf, qaly_pd, qaly_ae_loss, qaly`` (years, discounted at
    ``annual``; 0 = undiscounted).
    """
    H = spec.horizon_months
    idx = pd.MultiIndex.from_frame(patients[KEYS])
    os_t = patients["os_months"].to_numpy(float)
    out = pd.DataFrame(index=range(len(patients)))
    out["ly"] = interval_factor(0.0, np.minimum(os_t, H), annual) / MONTHS_PER_YEAR
    seg = state_segments(patients, lines)
    d = interval_factor(np.minimum(seg["a"].to_numpy(float), H), np.minimum(seg["b"].to_numpy(float), H), annual)
    seg = seg.assign(d=d / MONTHS_PER_YEAR)
    by = seg.groupby(KEYS + ["progressed"])["d"].sum().unstack("progressed")
    by = by.reindex(columns=[False, True], fill_value=0.0).reindex(idx).fillna(0.0)
    out["pf_ly"] = by[False].to_numpy()
    out["pd_ly"] = by[True].to_numpy()
    ae = events[events["event"] == "adverse_event"][KEYS + ["time", "detail", "value"]]
    if len(ae):
        os_ae = pd.Series(os_t, index=idx).reindex(pd.MultiIndex.from_frame(ae[KEYS])).to_numpy(float)
        t = ae["time"].to_numpy(float)
        stop = np.minimum(np.minimum(t + weeks(np.nan_to_num(ae["value"].to_numpy(float))), os_ae), H)
        dec = ae["detail"].map(lambda a: spec.ae_decrement(str(a))).to_numpy(float)
        loss = dec * interval_factor(np.minimum(t, H), stop, annual) / MONTHS_PER_YEAR
        out["qaly_ae_loss"] = pd.Series(loss, index=pd.MultiIndex.from_frame(ae[KEYS])).groupby(level=KEYS).sum() \
            .reindex(idx, fill_value=0.0).to_numpy()
    else:
        out["qaly_ae_loss"] = 0.0
    out["qaly_pf"] = spec.utility_pf * out["pf_ly"]
    out["qaly_pd"] = spec.utility_pd * out["pd_ly"]
    out["qaly"] = out["qaly_pf"] + out["qaly_pd"] - out["qaly_ae_loss"]
    return out
