"""Full incremental analysis: dominance, extended dominance, ICERs, net benefit.

Algorithm (Drummond et al., *Methods for the Economic Evaluation of Health Care Programmes*,
4th ed., ch. 4; the same rules as dampack's ``calculate_icers``):

1. order strategies by mean cost (ties: higher effect first);
2. **dominated**: another strategy costs no more and is at least as effective (one strictly):
   ``C_j <= C_i`` and ``E_j >= E_i``. Exact duplicates: the later one in that order is marked
   dominated;
3. **extendedly dominated**: among the rest (effects now increase with cost), strategy ``i`` whose
   ICER vs the previous is *strictly* greater than the next strategy's ICER vs ``i``
   (``ICER_i > ICER_{i+1}``) is removed; repeat until ICERs increase along the list;
4. **frontier**: the remaining strategies; ``ICER_i = (C_i - C_{i-1}) / (E_i - E_{i-1})`` vs the
   previous frontier strategy (the cheapest has none).

Net monetary benefit ``NMB(l) = l * E - C`` and net health benefit ``NHB(l) = E - C / l`` at each
willingness to pay ``l``; the strategy with the highest NMB at ``l`` is the frontier strategy
whose ICER interval contains ``l``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from sim.errors import UserError, check

FRONTIER, DOMINATED, EXTENDED = "frontier", "dominated", "extendedly dominated"


def frontier_status(costs: Sequence[float], effects: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Status of each strategy and, for frontier strategies, the index of its comparator.

    Returns
    -------
    status : array of str
        ``'frontier'``, ``'dominated'`` or ``'extendedly dominated'`` per input position.
    comparator : array of int
        Input index of the previous frontier strategy (-1 for the cheapest frontier strategy and
        for strategies off the frontier).
    """
    c = np.asarray(costs, dtype=float)
    e = np.asarray(effects, dtype=float)
    check(c.shape == e.shape and c.ndim == 1 and c.size > 0, "incremental analysis", (c.size, e.size),
          "needs one cost and one effect per strategy (at least one)")
    check(bool(np.all(np.isfinite(c)) and np.all(np.isfinite(e))), "incremental analysis", (list(c), list(e)),
          "costs and effects must be finite")
    order = np.lexsort((-e, c))                       # cost ascending, effect descending
    status = np.full(c.size, FRONTIER, dtype=object)
    best_before = np.maximum.accumulate(np.r_[-np.inf, e[order][:-1]])
    dominated = e[order] <= best_before
    status[order[dominated]] = DOMINATED
    cand = [int(i) for i in order[~dominated]]
    changed = True
    while changed and len(cand) > 2:
        changed = False
        icer = [np.nan] + [(c[cand[k]] - c[cand[k - 1]]) / (e[cand[k]] - e[cand[k - 1]]) for k in range(1, len(cand))]
        for k in range(1, len(cand) - 1):
            if icer[k] > icer[k + 1]:
                status[cand[k]] = EXTENDED
                del cand[k]
                changed = True
                break
    comparator = np.full(c.size, -1, dtype=int)
    for prev, cur in zip(cand, cand[1:]):
        comparator[cur] = prev
    return status.astype(str), comparator


def net_benefit(costs, effects, wtp) -> tuple[np.ndarray, np.ndarray]:
    """``NMB = wtp * E - C`` and ``NHB = E - C / wtp``, broadcast (e.g. strategies x thresholds)."""
    w = np.asarray(wtp, dtype=float)
    c, e = np.asarray(costs, dtype=float), np.asarray(effects, dtype=float)
    with np.errstate(divide="ignore"):
        return w * e - c, e - c / w


def incremental(table: pd.DataFrame, wtp: Sequence[float] = (20000.0, 30000.0), cost: str = "cost_total_disc",
                effect: str = "qaly_disc", strategy: str = "strategy") -> pd.DataFrame:
    """Full incremental analysis of the strategies in ``table`` (e.g. :func:`summarise` output).

    Parameters
    ----------
    table : DataFrame with one row per strategy and columns ``strategy``, ``cost``, ``effect``.
    wtp : thresholds (currency per unit effect) for net benefit; must not be empty.
    cost, effect, strategy : column names.

    Returns
    -------
    DataFrame, ordered by cost, with columns ``strategy, cost, effect, status, comparator,
    inc_cost, inc_effect, icer`` (incremental values and ICER vs ``comparator``, the previous
    frontier strategy; NaN off the frontier and for the cheapest frontier strategy), and per
    threshold ``l``: ``nmb_<l>``, ``nhb_<l>``, ``best_<l>`` (highest NMB).
    """
    for col in (strategy, cost, effect):
        if col not in table.columns:
            raise UserError(f"incremental analysis: table has no column {col!r}")
    w = [float(x) for x in np.atleast_1d(np.asarray(wtp, dtype=float))]
    check(len(w) > 0, "wtp", list(wtp), "must list at least one threshold")
    for x in w:
        check(np.isfinite(x) and x > 0, "wtp", x, "must be > 0")
    names = table[strategy].astype(str).to_numpy()
    check(len(set(names)) == len(names), "incremental analysis", list(names), "needs one row per strategy")
    c, e = table[cost].to_numpy(float), table[effect].to_numpy(float)
    status, comp = frontier_status(c, e)
    out = pd.DataFrame({"strategy": names, "cost": c, "effect": e, "status": status})
    on = comp >= 0
    out["comparator"] = np.where(on, names[np.maximum(comp, 0)], None)
    out["inc_cost"] = np.where(on, c - c[np.maximum(comp, 0)], np.nan)
    out["inc_effect"] = np.where(on, e - e[np.maximum(comp, 0)], np.nan)
    out["icer"] = out["inc_cost"] / out["inc_effect"]
    for x in w:
        tag = f"{x:g}"
        nmb, nhb = net_benefit(c, e, x)
        out[f"nmb_{tag}"], out[f"nhb_{tag}"] = nmb, nhb
        out[f"best_{tag}"] = nmb == nmb.max()
    return out.iloc[np.lexsort((-e, c))].reset_index(drop=True)
