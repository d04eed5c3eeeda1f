"""Health-economic figures: cost-effectiveness plane, CEAC with the acceptability frontier,
tornado, EVPPI bars, convergence of the mean incremental net benefit.

Every function takes a result table (schemas in ``docs/outputs_psa.md`` and ``docs/outputs.md``)
and an output path, writes one PNG and returns its path. Net monetary benefit (NMB) of a
strategy at a willingness to pay ``lambda`` per QALY is ``lambda * QALY - cost``; the incremental
net benefit of I vs C is ``INB = lambda * dQALY - dCost``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sim.errors import UserError  # noqa: E402

DPI = 110


def _need(table: pd.DataFrame, name: str, cols: Iterable[str]) -> None:
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise UserError(f"{name} table lacks columns {missing}; has {list(table.columns)}")


def _save(fig, path) -> Path:
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def ce_plane(table: pd.DataFrame, path, wtp: Iterable[float] = (20000, 30000), labels: Mapping | None = None,
             comparator: str | None = None) -> Path:
    """Scatter of ``(delta_qaly, delta_cost)`` per PSA sample for each strategy vs the
    comparator, the mean of each cloud (cross), and the threshold lines
    ``dCost = lambda * dQALY`` for each ``lambda`` of ``wtp`` (points below a line are cost-effective
    at that threshold)."""
    _need(table, "ce_plane", ["strategy", "delta_cost", "delta_qaly"])
    labels = labels or {}
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    for k, (s, d) in enumerate(table.groupby("strategy", sort=False)):
        color = f"C{k}"
        ax.scatter(d["delta_qaly"], d["delta_cost"], s=9, alpha=0.45, color=color, label=labels.get(s, s))
        ax.scatter([d["delta_qaly"].mean()], [d["delta_cost"].mean()], marker="X", s=120, color=color,
                   edgecolor="black", zorder=3)
    xlim = np.array(ax.get_xlim())
    xlim = np.array([min(xlim[0], -abs(xlim[1]) * 0.1), max(xlim[1], abs(xlim[0]) * 0.1)])
    for k, w in enumerate(wtp):
        ax.plot(xlim, w * xlim, ls="--", lw=0.9, color="0.3" if k == 0 else "0.6", label=f"{w:,.0f} per QALY")
    ax.set_xlim(*xlim)
    ax.axhline(0, color="k", lw=0.6)
    ax.axvline(0, color="k", lw=0.6)
    ax.set_xlabel("incremental QALYs (discounted)")
    ax.set_ylabel("incremental cost (discounted)")
    ax.set_title("Cost-effectiveness plane" + (f" vs {labels.get(comparator, comparator)}" if comparator else ""),
                 fontsize=10)
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def ceac(table: pd.DataFrame, path, ceaf: pd.DataFrame | None = None, labels: Mapping | None = None,
         marks: Iterable[float] = (20000, 30000)) -> Path:
    """Cost-effectiveness acceptability curves (probability each strategy has the highest NMB,
    per WTP) and, when ``ceaf`` is given, the acceptability frontier: the probability that the
    strategy with the highest *expected* NMB is cost-effective (thick black line)."""
    _need(table, "ceac", ["wtp", "strategy", "probability"])
    labels = labels or {}
    fig, ax = plt.subplots(figsize=(8, 5))
    for k, (s, d) in enumerate(table.groupby("strategy", sort=False)):
        ax.plot(d["wtp"], d["probability"], color=f"C{k}", lw=1.5, label=labels.get(s, s))
    if ceaf is not None and len(ceaf):
        _need(ceaf, "ceaf", ["wtp", "optimal_strategy", "probability_cost_effective"])
        ax.plot(ceaf["wtp"], ceaf["probability_cost_effective"], color="black", lw=3.5, alpha=0.35,
                label="acceptability frontier (CEAF)")
        switch = ceaf["optimal_strategy"].ne(ceaf["optimal_strategy"].shift()) & (np.arange(len(ceaf)) > 0)
        for w in ceaf.loc[switch, "wtp"]:
            ax.axvline(w, color="black", lw=0.6, ls=":")
    for w in marks:
        ax.axvline(w, color="0.5", lw=0.8, ls="--")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("willingness to pay per QALY")
    ax.set_ylabel("probability cost-effective")
    ax.set_title("Cost-effectiveness acceptability curves and frontier", fontsize=10)
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def _col(table: pd.DataFrame, *names: str) -> pd.Series:
    for n in names:
        if n in table.columns:
            return table[n]
    raise UserError(f"tornado table lacks any of the columns {list(names)}; has {list(table.columns)}")


def tornado(table: pd.DataFrame, path, wtp: float | None = None, top: int = 20) -> Path:
    """Tornado of a one-way DSA: incremental net benefit with the parameter at its low (blue)
    and high (orange) value, as bars from the base-case INB, widest swing on top.

    Columns (``sim/economics/dsa.py``): ``parameter``, ``low`` / ``high`` (or ``low_value`` /
    ``high_value``), ``inb_low``, ``inb_high``, ``inb_base`` (or ``base_inb``); ``wtp`` (in the
    axis label) is read from a ``wtp`` column when not given."""
    t = table.copy()
    par = _col(t, "parameter")
    lo, hi = _col(t, "low", "low_value"), _col(t, "high", "high_value")
    il, ih = _col(t, "inb_low").astype(float), _col(t, "inb_high").astype(float)
    base = float(_col(t, "inb_base", "base_inb").iloc[0]) if len(t) else 0.0
    order = np.argsort(-(ih - il).abs().to_numpy(), kind="stable")[:top][::-1]
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(order) + 1.6))
    y = np.arange(len(order))
    ax.barh(y, il.to_numpy()[order] - base, left=base, color="tab:blue", label="parameter at low value")
    ax.barh(y, ih.to_numpy()[order] - base, left=base, color="tab:orange", alpha=0.8, label="parameter at high value")
    ax.axvline(base, color="k", lw=0.8)
    ax.set_yticks(y, [f"{par.iloc[i]} [{lo.iloc[i]:.4g}, {hi.iloc[i]:.4g}]" for i in order], fontsize=7)
    if wtp is None and "wtp" in t.columns:
        wtp = float(t["wtp"].iloc[0])
    ax.set_xlabel("incremental net monetary benefit" + (f" at {wtp:,.0f} per QALY" if wtp is not None else "")
                  + f" (base case {base:,.0f})")
    ax.set_title("One-way sensitivity analysis (tornado)", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def evppi_bars(table: pd.DataFrame, path, labels: Mapping | None = None) -> Path:
    """EVPPI per parameter group (bars with bootstrap 95 % intervals) at each WTP of the
    ``evppi`` table, the EVPI (all parameters) first."""
    _need(table, "evppi", ["wtp", "group", "evppi", "lo", "hi"])
    groups = list(dict.fromkeys(table["group"]))
    wtps = sorted(set(table["wtp"]))
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(groups) * max(len(wtps), 1) + 1.8))
    h = 0.8 / max(len(wtps), 1)
    y = np.arange(len(groups))[::-1]
    for k, w in enumerate(wtps):
        d = table[table["wtp"] == w].set_index("group").reindex(groups)
        v = d["evppi"].to_numpy(float)
        err = np.vstack([np.clip(v - d["lo"].to_numpy(float), 0, None), np.clip(d["hi"].to_numpy(float) - v, 0, None)])
        ax.barh(y - k * h + 0.4 - h / 2, v, height=h, xerr=np.nan_to_num(err), color=f"C{k}", capsize=2,
                label=f"{w:,.0f} per QALY")
    ax.set_yticks(y, groups, fontsize=8)
    ax.set_xlabel("expected value of (partial) perfect information per person")
    ax.set_title("EVPI and EVPPI by parameter group", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def convergence(table: pd.DataFrame, path) -> Path:
    """Running mean of the incremental net benefit against the number of PSA samples, with its
    Monte Carlo 95 % band (``mean +- 1.96 sd / sqrt(n)``)."""
    _need(table, "convergence", ["n_samples", "mean_inb", "lo", "hi"])
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.fill_between(table["n_samples"], table["lo"], table["hi"], color="C0", alpha=0.2, label="95 % MC band")
    ax.plot(table["n_samples"], table["mean_inb"], color="C0", lw=1.5, label="running mean INB")
    ax.axhline(0, color="k", lw=0.6)
    title = "Convergence of the mean incremental net benefit"
    if "comparison" in table.columns and "wtp" in table.columns and len(table):
        title += f"\n{table['comparison'].iloc[0]} at {float(table['wtp'].iloc[0]):,.0f} per QALY"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("number of PSA samples")
    ax.set_ylabel("mean incremental net monetary benefit")
    ax.legend(fontsize=7)
    return _save(fig, path)
