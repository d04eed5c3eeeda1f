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
from matplotlib.ticker import FuncFormatter  # noqa: E402

from sim.errors import UserError  # noqa: E402
from sim.report.labels import param_label, short_label  # noqa: E402

DPI = 110
LINESTYLES = ("-", "--", "-.", ":")


def _need(table: pd.DataFrame, name: str, cols: Iterable[str]) -> None:
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise UserError(f"{name} table lacks columns {missing}; has {list(table.columns)}")


def _save(fig, path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _thousands(ax, axis: str = "y") -> None:
    """Thousands separators on an axis of money values."""
    f = FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 1 or v == 0 else f"{v:.2g}")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(f)


def _cur(currency: str) -> str:
    return f" ({currency})" if currency else ""


def ce_plane(table: pd.DataFrame, path, wtp: Iterable[float] = (20000, 30000), labels: Mapping | None = None,
             comparator: str | None = None, currency: str = "") -> Path:
    """Scatter of ``(delta_qaly, delta_cost)`` per PSA sample for each strategy vs the
    comparator, the mean of each cloud (cross), and the threshold lines
    ``dCost = lambda * dQALY`` for each ``lambda`` of ``wtp`` (points below a line are cost-effective
    at that threshold)."""
    _need(table, "ce_plane", ["strategy", "delta_cost", "delta_qaly"])
    fig, ax = plt.subplots(figsize=(7.5, 5.8))
    for k, (s, d) in enumerate(table.groupby("strategy", sort=False)):
        color = f"C{k + 1}"
        ax.scatter(d["delta_qaly"], d["delta_cost"], s=12, alpha=0.5, color=color,
                   label=f"{short_label(s, labels)}: PSA samples")
        ax.scatter([d["delta_qaly"].mean()], [d["delta_cost"].mean()], marker="X", s=140, color=color,
                   edgecolor="black", zorder=3, label=f"{short_label(s, labels)}: mean")
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    xlim = np.array([min(x0, -0.05 * abs(x1 - x0)), max(x1, 0.05 * abs(x1 - x0))])
    ylim = np.array([min(y0, -0.05 * abs(y1 - y0)), max(y1, 0.05 * abs(y1 - y0))])
    for k, w in enumerate(wtp):
        ax.plot(xlim, w * xlim, ls=LINESTYLES[(k + 1) % len(LINESTYLES)], lw=1.0, color="0.35",
                label=f"threshold {currency + ' ' if currency else ''}{w:,.0f} per QALY")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.axhline(0, color="k", lw=0.6)
    ax.axvline(0, color="k", lw=0.6)
    _thousands(ax, "y")
    ax.set_xlabel("incremental QALYs (discounted)")
    ax.set_ylabel(f"incremental cost{_cur(currency)} (discounted)")
    ax.set_title("Cost-effectiveness plane" + (f" vs {short_label(comparator, labels)}" if comparator else "")
                 + "\n(points below a threshold line are cost-effective at that threshold)", fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    return _save(fig, path)


def ceac(table: pd.DataFrame, path, ceaf: pd.DataFrame | None = None, labels: Mapping | None = None,
         marks: Iterable[float] = (20000, 30000), currency: str = "") -> Path:
    """Cost-effectiveness acceptability curves (probability each strategy has the highest NMB,
    per WTP) and, when ``ceaf`` is given, the acceptability frontier: the probability that the
    strategy with the highest *expected* NMB is cost-effective (thick grey line). Curves that
    coincide are told apart by their line styles."""
    _need(table, "ceac", ["wtp", "strategy", "probability"])
    fig, ax = plt.subplots(figsize=(8, 5.2))
    if ceaf is not None and len(ceaf):
        _need(ceaf, "ceaf", ["wtp", "optimal_strategy", "probability_cost_effective"])
        ax.plot(ceaf["wtp"], ceaf["probability_cost_effective"], color="black", lw=6, alpha=0.18,
                label="acceptability frontier (CEAF)", zorder=1)
        switch = ceaf["optimal_strategy"].ne(ceaf["optimal_strategy"].shift()) & (np.arange(len(ceaf)) > 0)
        for w in ceaf.loc[switch, "wtp"]:
            ax.axvline(w, color="black", lw=0.6, ls=":")
    for k, (s, d) in enumerate(table.groupby("strategy", sort=False)):
        ax.plot(d["wtp"], d["probability"], color=f"C{k}", lw=1.8, ls=LINESTYLES[k % len(LINESTYLES)],
                label=short_label(s, labels), zorder=2)
    for w in marks:
        ax.axvline(w, color="0.5", lw=0.8, ls="--", zorder=0)
        ax.text(w, 1.04, f"{w:,.0f}", ha="center", va="bottom", fontsize=8, color="0.3")
    ax.set_ylim(-0.02, 1.02)
    _thousands(ax, "x")
    ax.set_xlabel(f"willingness to pay per QALY{_cur(currency)}")
    ax.set_ylabel("probability of being cost-effective")
    ax.set_title("Cost-effectiveness acceptability curves and frontier", fontsize=10, pad=16)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4, frameon=False)
    return _save(fig, path)


def _col(table: pd.DataFrame, *names: str) -> pd.Series:
    for n in names:
        if n in table.columns:
            return table[n]
    raise UserError(f"tornado table lacks any of the columns {list(names)}; has {list(table.columns)}")


def _num(v) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    v = float(v)
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def tornado(table: pd.DataFrame, path, wtp: float | None = None, top: int = 20, currency: str = "",
            title: str = "") -> Path:
    """Tornado of a one-way DSA: incremental net benefit with the parameter at its low (blue)
    and high (orange) value, as bars from the base-case INB, widest swing on top.

    Columns (``sim/uncertainty/dsa.py``): ``parameter``, ``low`` / ``high`` (or ``low_value`` /
    ``high_value``), ``inb_low``, ``inb_high``, ``inb_base`` (or ``base_inb``), optional
    ``base_value``; ``wtp`` (in the axis label) is read from a ``wtp`` column when not given."""
    t = table.copy()
    par = _col(t, "parameter")
    lo, hi = _col(t, "low", "low_value"), _col(t, "high", "high_value")
    bv = t["base_value"] if "base_value" in t.columns else pd.Series([None] * len(t))
    il, ih = _col(t, "inb_low").astype(float), _col(t, "inb_high").astype(float)
    base = float(_col(t, "inb_base", "base_inb").iloc[0]) if len(t) else 0.0
    order = np.argsort(-(ih - il).abs().to_numpy(), kind="stable")[:top][::-1]
    fig, ax = plt.subplots(figsize=(10, 0.36 * len(order) + 1.9))
    y = np.arange(len(order))
    # low and high side by side (not stacked), so both stay visible when they lie on the same side of the base
    ax.barh(y + 0.2, il.to_numpy()[order] - base, left=base, height=0.4, color="tab:blue",
            label="parameter at its low value")
    ax.barh(y - 0.2, ih.to_numpy()[order] - base, left=base, height=0.4, color="tab:orange",
            label="parameter at its high value")
    ax.axvline(base, color="k", lw=0.8)
    if min(il.min(), ih.min(), base) < 0 < max(il.max(), ih.max(), base):
        ax.axvline(0, color="0.4", lw=0.8, ls="--")
    def base_text(i):                      # a null horizon is the lifetime (model) horizon
        b = bv.iloc[i]
        missing = b is None or (isinstance(b, float) and not np.isfinite(b))
        return "lifetime" if missing and str(par.iloc[i]).endswith("horizon_years") else _num(b)

    names = [f"{param_label(par.iloc[i])}  [{_num(lo.iloc[i])} to {_num(hi.iloc[i])}; base {base_text(i)}]"
             for i in order]
    ax.set_yticks(y, names, fontsize=7.5)
    if wtp is None and "wtp" in t.columns:
        wtp = float(t["wtp"].iloc[0])
    _thousands(ax, "x")
    ax.set_xlabel(f"incremental net monetary benefit{_cur(currency)}"
                  + (f" at {wtp:,.0f} per QALY" if wtp is not None else "") + f"; base case {base:,.0f}")
    ax.set_title(title or "One-way sensitivity analysis (tornado)", fontsize=10)
    ax_height = fig.get_figheight() - 1.0                       # inches, roughly
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.65 / ax_height), ncol=2, frameon=False)
    return _save(fig, path)


def evppi_bars(table: pd.DataFrame, path, labels: Mapping | None = None, currency: str = "") -> Path:
    """EVPPI per parameter group (bars with bootstrap 95 % intervals) at each WTP of the
    ``evppi`` table, the EVPI (all parameters) first. When every value is 0 the figure says why
    (one strategy has the highest net benefit in every sample)."""
    _need(table, "evppi", ["wtp", "group", "evppi", "lo", "hi"])
    groups = list(dict.fromkeys(table["group"]))
    wtps = sorted(set(table["wtp"]))
    fig, ax = plt.subplots(figsize=(8.5, 0.22 * len(groups) * max(len(wtps), 1) + 1.9))
    h = 0.8 / max(len(wtps), 1)
    y = np.arange(len(groups))[::-1]
    vmax = 0.0
    for k, w in enumerate(wtps):
        d = table[table["wtp"] == w].set_index("group").reindex(groups)
        v = d["evppi"].to_numpy(float)
        err = np.vstack([np.clip(v - d["lo"].to_numpy(float), 0, None), np.clip(d["hi"].to_numpy(float) - v, 0, None)])
        vmax = max(vmax, float(np.nanmax(v + np.nan_to_num(err[1]))))
        yk = y - k * h + 0.4 - h / 2
        ax.barh(yk, v, height=h, xerr=np.nan_to_num(err), color=f"C{k}", capsize=2,
                label=f"{currency + ' ' if currency else ''}{w:,.0f} per QALY")
        for yy, vv, hi in zip(yk, v, d["hi"].to_numpy(float)):
            if np.isfinite(vv):
                ax.text(max(vv, np.nan_to_num(hi)), yy, f" {vv:,.0f}", va="center", fontsize=7, color="0.25")
    ax.set_yticks(y, [g.replace("_", " ") for g in groups], fontsize=8)
    ax.set_xlim(0, vmax * 1.15 if vmax > 0 else 1.0)
    _thousands(ax, "x")
    if vmax == 0:
        ax.text(0.5, 0.5, "EVPI = 0 at every threshold: the same strategy has the highest\nnet benefit in every "
                "PSA sample, so no information could change the decision", transform=ax.transAxes, ha="center",
                va="center", fontsize=9, bbox=dict(facecolor="white", edgecolor="0.6"))
    ax.set_xlabel(f"expected value of (partial) perfect information per person{_cur(currency)}")
    ax.set_title("EVPI and EVPPI by parameter group (95 % intervals)", fontsize=10)
    ax_height = fig.get_figheight() - 1.0
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.6 / ax_height), ncol=len(wtps), frameon=False,
              title="willingness to pay", title_fontsize=8)
    return _save(fig, path)


def convergence(table: pd.DataFrame, path, currency: str = "") -> Path:
    """Running mean of the incremental net benefit against the number of PSA samples, with its
    Monte Carlo 95 % band (``mean +- 1.96 sd / sqrt(n)``)."""
    _need(table, "convergence", ["n_samples", "mean_inb", "lo", "hi"])
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ax.fill_between(table["n_samples"], table["lo"], table["hi"], color="C0", alpha=0.2, label="95 % Monte Carlo band")
    ax.plot(table["n_samples"], table["mean_inb"], color="C0", lw=1.5, label="running mean INB")
    ax.axhline(0, color="k", lw=0.6)
    title = "Convergence of the mean incremental net benefit (INB)"
    if "comparison" in table.columns and "wtp" in table.columns and len(table):
        title += (f"\n{table['comparison'].iloc[0]} at {currency + ' ' if currency else ''}"
                  f"{float(table['wtp'].iloc[0]):,.0f} per QALY")
    ax.set_title(title, fontsize=10)
    _thousands(ax, "y")
    ax.set_xlabel("number of PSA samples")
    ax.set_ylabel(f"mean INB{_cur(currency)}")
    ax.legend(fontsize=8)
    return _save(fig, path)
