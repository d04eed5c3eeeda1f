"""Two-way sensitivity and threshold analyses, options of the DSA (``pnetsim experiment=dsa``).

Both work on the incremental net monetary benefit of ``experiment.intervention`` (``I``) over
``experiment.comparator`` (``C``) at the primary willingness to pay ``lambda``, estimated with
common random numbers (every arm is simulated with the master seed; arms changing only
``economics.*`` reuse the base-case simulation, :class:`sim.uncertainty.dsa.ArmRunner`)::

    INB(v) = lambda * mean_i [Q_i(I; v) - Q_i(C; v)] - mean_i [C_i(I; v) - C_i(C; v)]

Each analysed parameter must be one of the DSA's one-way parameters (``experiment.parameters`` or
``economics.ranges``; ``experiment.select`` does not restrict them), so its range and source are those
of the tornado.

**Two-way** (``experiment.two_way: {x: <path>, y: <path>, n: <points per axis>}``): INB on the
grid ``x_j = low_x + j (high_x - low_x) / (n - 1)``, same for ``y``; ``n_x * n_y`` arms. Table
``two_way`` (one row per cell: ``x_path, x, y_path, y, delta_cost, delta_qaly, inb, inb_se,
icer, quadrant, preferred``), figure ``two_way.png`` (INB as colour, the ``INB = 0`` contour
where the preferred strategy changes, the base case marked).

**Threshold** (``experiment.thresholds: [<path>, ...]``): the value ``v*`` in the parameter's range
at which ``INB(v*) = 0``, i.e. where the preferred strategy changes. ``INB`` is evaluated at
low, base and high; in the first bracket with a sign change, Brent's method
(:func:`scipy.optimize.brentq`, absolute tolerance ``experiment.threshold_xtol`` times the width
of the range) finds the root. With common random numbers ``INB(v)`` is a fixed function of
``v`` (smooth in cost and utility parameters, exactly linear in a price; piecewise smooth in
model parameters), so the root is that of one function, not of noise. Its Monte Carlo SE is
approximated by the delta method, ``SE(v*) = SE(INB(v*)) / |dINB/dv|`` (slope from the last
bracket). No sign change in the range: ``threshold`` is NaN and ``note`` says which strategy is
preferred throughout. Table ``thresholds`` (``parameter, low, base, high, inb_low, inb_base,
inb_high, threshold, threshold_se, preferred_below, preferred_above, n_evaluations, note``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.optimize import brentq

from sim.uncertainty.dsa import KEY, ArmRunner, DsaSettings, OneWay, contrast, dsa_settings
from sim.economics.spec import EconomicsSpec
from sim.errors import check, is_number, mapping, sequence_of_str, whole


@dataclass(frozen=True)
class TwoWaySettings:
    """Validated ``experiment.two_way`` / ``thresholds`` / ``threshold_xtol``."""

    x: OneWay | None
    y: OneWay | None
    n: int
    thresholds: tuple[OneWay, ...]
    xtol: float


def _param(known: Mapping[str, OneWay], key: str, path) -> OneWay:
    check(isinstance(path, str) and path in known, key, path,
          "must be one of the DSA parameters (experiment.parameters or economics.ranges)")
    p = known[path]
    check(p.high > p.low, key, path, f"has an empty range [{p.low:g}, {p.high:g}]")
    return p


def twoway_settings(plain: Mapping, st: DsaSettings) -> TwoWaySettings:
    """Validate the two-way and threshold options (before any simulation)."""
    exp = plain.get("experiment") or {}
    tw = mapping(f"{KEY}.two_way", exp.get("two_way"), allow_none=True)
    paths = sequence_of_str(f"{KEY}.thresholds", exp.get("thresholds"), allow_none=True)
    known = {p.path: p for p in st.parameters}
    if (tw or paths) and exp.get("select") is not None:       # every DSA parameter, not only the tornado's subset
        full = {**plain, KEY: {**exp, "select": None}}
        known = {p.path: p for p in dsa_settings(full, EconomicsSpec.from_config(plain["economics"])).parameters}
    x = y = None
    n = 0
    if tw:
        x = _param(known, f"{KEY}.two_way.x", tw.get("x"))
        y = _param(known, f"{KEY}.two_way.y", tw.get("y"))
        check(x.path != y.path, f"{KEY}.two_way.y", y.path, "must differ from experiment.two_way.x")
        n = whole(f"{KEY}.two_way.n", tw.get("n", 5), 2)
    th = tuple(_param(known, f"{KEY}.thresholds[{i}]", p) for i, p in enumerate(paths))
    xtol = exp.get("threshold_xtol", 1e-3)
    check(is_number(xtol) and 0 < xtol < 1, f"{KEY}.threshold_xtol",
          xtol, "must be a number in (0, 1) (a fraction of the parameter's range)")
    return TwoWaySettings(x, y, n, th, float(xtol))


def preferred(inb: float, st: DsaSettings) -> str:
    """The strategy with the higher net benefit (the comparator on a tie)."""
    return st.intervention if inb > 0 else st.comparator


def two_way_table(runner: ArmRunner, st: DsaSettings, tw: TwoWaySettings, base: Mapping | None = None,
                  progress=None) -> pd.DataFrame:
    """INB on the two-way grid (module docstring), one row per cell (``x`` outer, ``y`` inner)."""
    rows = []
    for vx in np.linspace(tw.x.low, tw.x.high, tw.n):
        for vy in np.linspace(tw.y.low, tw.y.high, tw.n):
            per, _ = runner.per_patient({**(base or {}), tw.x.path: float(vx), tw.y.path: float(vy)})
            c = contrast(per, st.intervention, st.comparator, st.primary_wtp)
            rows.append({"x_path": tw.x.path, "x": float(vx), "y_path": tw.y.path, "y": float(vy)}
                        | {k: c[k] for k in ("delta_cost", "delta_qaly", "inb", "inb_se", "icer", "quadrant")}
                        | {"preferred": preferred(c["inb"], st)})
            if progress:
                progress(1)
    return pd.DataFrame(rows)


def threshold(runner: ArmRunner, st: DsaSettings, p: OneWay, xtol: float) -> dict:
    """Threshold value of ``p`` at which INB changes sign (module docstring)."""
    memo: dict[float, dict] = {}

    def f(v: float) -> float:
        v = float(v)
        if v not in memo:
            memo[v] = contrast(runner.per_patient({p.path: v})[0], st.intervention, st.comparator, st.primary_wtp)
        return memo[v]["inb"]

    base = float(p.base) if isinstance(p.base, (int, float)) and p.low <= float(p.base) <= p.high else None
    pts = [p.low] + ([base] if base is not None and p.low < base < p.high else []) + [p.high]
    vals = [f(v) for v in pts]
    row = {"parameter": p.path, "low": p.low, "base": p.base, "high": p.high, "inb_low": vals[0],
           "inb_base": f(base) if base is not None else math.nan, "inb_high": vals[-1],
           "threshold": math.nan, "threshold_se": math.nan, "preferred_below": "", "preferred_above": "",
           "source": p.source, "wtp": st.primary_wtp}
    bracket = next(((a, b) for a, b, fa, fb in zip(pts, pts[1:], vals, vals[1:]) if fa == 0 or fa * fb < 0), None)
    if bracket is None:
        who = preferred(vals[0], st)
        row |= {"n_evaluations": len(memo),
                "note": f"no change in [{p.low:g}, {p.high:g}]: {who} preferred throughout"}
        return row
    a, b = bracket
    root = a if f(a) == 0 else brentq(f, a, b, xtol=xtol * (p.high - p.low), maxiter=60)
    near = sorted(memo, key=lambda v: abs(v - root))
    lo_v = max([v for v in memo if v <= root], default=a)
    hi_v = min([v for v in memo if v > root], default=b)
    slope = (memo[hi_v]["inb"] - memo[lo_v]["inb"]) / (hi_v - lo_v) if hi_v > lo_v else math.nan
    se = memo[near[0]]["inb_se"] / abs(slope) if slope and math.isfinite(slope) else math.nan
    below, above = (preferred(f(a), st), preferred(f(b), st))
    row |= {"threshold": float(root), "threshold_se": float(se), "preferred_below": below, "preferred_above": above,
            "n_evaluations": len(memo),
            "note": f"{below} preferred below, {above} above (INB = 0 at {root:.6g})"}
    return row


def two_way_figure(table: pd.DataFrame, path: Path, st: DsaSettings, base_x=None, base_y=None, currency: str = ""
                   ) -> Path:
    """Heat map of INB over the two-way grid with the ``INB = 0`` contour and the base case."""
    matplotlib.use("Agg")

    xs, ys = np.unique(table["x"]), np.unique(table["y"])
    z = table.pivot(index="y", columns="x", values="inb").reindex(index=ys, columns=xs).to_numpy()
    fig, ax = plt.subplots(figsize=(7, 5.2))
    lim = float(np.nanmax(np.abs(z))) or 1.0
    mesh = ax.pcolormesh(xs, ys, z, shading="nearest", cmap="RdBu", vmin=-lim, vmax=lim)
    fig.colorbar(mesh, ax=ax, label=f"INB at {st.primary_wtp:,.0f} {currency} per QALY")
    if np.nanmin(z) < 0 < np.nanmax(z):
        cs = ax.contour(xs, ys, z, levels=[0.0], colors="k", linewidths=1.5)
        ax.clabel(cs, fmt={0.0: "INB = 0"}, fontsize=8)
    if base_x is not None and base_y is not None:
        ax.plot([base_x], [base_y], marker="*", color="gold", markeredgecolor="k", markersize=14, label="base case")
        ax.legend(fontsize=8, loc="upper right")
    ax.set_xlabel(table["x_path"].iloc[0], fontsize=8)
    ax.set_ylabel(table["y_path"].iloc[0], fontsize=8)
    ax.set_title(f"Two-way sensitivity: {st.intervention} vs {st.comparator} (blue: {st.intervention} preferred)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def run_extra(runner: ArmRunner, st: DsaSettings, tw: TwoWaySettings) -> dict[str, pd.DataFrame]:
    """``{"two_way": ..., "thresholds": ...}`` for the configured options (empty when none)."""
    out = {}
    if tw.x is not None:
        out["two_way"] = two_way_table(runner, st, tw)
    if tw.thresholds:
        out["thresholds"] = pd.DataFrame([threshold(runner, st, p, tw.xtol) for p in tw.thresholds])
    return out


def format_extra(tables: Mapping[str, pd.DataFrame]) -> str:
    """Console text of the thresholds and the two-way grid (INB)."""
    out = []
    t = tables.get("thresholds")
    if t is not None and len(t):
        s = pd.DataFrame({"parameter": t["parameter"], "range": [f"{a:.4g} .. {b:.4g}" for a, b in zip(t["low"], t["high"])],
                          "threshold": ["-" if pd.isna(v) else f"{v:.4g} ± {e:.2g}"
                                        for v, e in zip(t["threshold"], t["threshold_se"])],
                          "note": t["note"]})
        out.append("\n\nThreshold analysis (value at which INB = 0, common random numbers; ± Monte Carlo SE):\n"
                   + s.to_string(index=False))
    g = tables.get("two_way")
    if g is not None and len(g):
        z = g.pivot(index="y", columns="x", values="inb")
        z.index = [f"{v:.4g}" for v in z.index]
        z.columns = [f"{v:.4g}" for v in z.columns]
        out.append(f"\nTwo-way sensitivity, INB (rows: {g['y_path'].iloc[0]}; columns: {g['x_path'].iloc[0]}):\n"
                   + z.map(lambda v: f"{v:,.0f}").to_string())
    return "\n".join(out)

