"""What patients actually receive: the treatment flow of each strategy, and results by subgroup.

:func:`treatment_flow` counts, per strategy and line number (the 1st, 2nd, ... line a patient is
given), the patients given each therapy and the reasons lines were skipped on the way to it
(``line_skipped`` events, ``<therapy>:<reason>`` or ``<choice line>:no_option``);
:func:`never_given_notes` names the strategy lines given to no patient; :func:`flow_labels`
describes each strategy by what its patients received; :func:`flow_figure` draws the flow.
:func:`subgroup_table` gives clinical and economic results by grade, hepatic burden, SSTR status
and functional status, and the best strategy in each subgroup.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sim.strategies import Choice, Strategy  # noqa: E402

FLOW_COLUMNS = ["strategy", "line", "therapy", "n_patients", "share", "skipped_before"]
#: subgroup variables (cohort columns) of :func:`subgroup_table`
SUBGROUPS = ("grade", "hepatic_burden", "sstr_positive", "functional_status")


def _skip_text(counts: pd.Series) -> str:
    return "; ".join(f"{k} {int(v)}" for k, v in counts.items())


def treatment_flow(lines: pd.DataFrame, events: pd.DataFrame, n_patients: Mapping[str, int],
                   order: list[str]) -> pd.DataFrame:
    """Which therapy patients receive at each line, per strategy.

    Parameters
    ----------
    lines, events : DataFrame
        The run's ``lines`` and ``events`` tables.
    n_patients : mapping
        Patients simulated under each strategy (the denominator of ``share``).
    order : list of str
        Strategies in output order.

    Returns
    -------
    DataFrame
        :data:`FLOW_COLUMNS`: one row per (strategy, line number, therapy given) with the number of
        patients and their share of the strategy's cohort; ``skipped_before`` lists the reasons (and
        counts) of lines skipped after line ``line - 1`` and before line ``line`` was given.
    """
    given = (lines.groupby(["strategy", "line", "therapy"], observed=True, sort=False).size()
             .rename("n_patients").reset_index())
    sk = events[events["event"] == "line_skipped"]
    skips = {(s, int(ln) + 1): _skip_text(g["detail"].value_counts())
             for (s, ln), g in sk.groupby(["strategy", "line"], observed=True)}
    rank = {s: i for i, s in enumerate(order)}
    rows = []
    for r in given.itertuples(index=False):
        rows.append({"strategy": r.strategy, "line": int(r.line), "therapy": r.therapy, "n_patients": int(r.n_patients),
                     "share": r.n_patients / max(n_patients.get(r.strategy, 0), 1),
                     "skipped_before": skips.get((r.strategy, int(r.line)), "")})
    for (s, ln), text in skips.items():     # skips after which no line was given (e.g. straight to the end)
        if not any(x["strategy"] == s and x["line"] == ln for x in rows):
            rows.append({"strategy": s, "line": ln, "therapy": "", "n_patients": 0, "share": 0.0,
                         "skipped_before": text})
    out = pd.DataFrame(rows, columns=FLOW_COLUMNS)
    if len(out):
        out = out.assign(_r=out["strategy"].map(rank)).sort_values(["_r", "line", "n_patients"],
                                                                   ascending=[True, True, False])
        out = out.drop(columns="_r").reset_index(drop=True)
    return out


def never_given_notes(flow: pd.DataFrame, events: pd.DataFrame, strategies: Mapping[str, Strategy]) -> list[str]:
    """One sentence per strategy line given to no patient: a fixed line whose therapy no patient of
    the strategy received, or a choice line none of whose options anyone received; with the
    reasons its patients skipped it."""
    notes = []
    for name, st in strategies.items():
        got = set(flow.loc[(flow["strategy"] == name) & (flow["n_patients"] > 0), "therapy"])
        sk = events[(events["strategy"] == name) & (events["event"] == "line_skipped")]["detail"]
        for i, ln in enumerate(st.lines[:-1]):
            options = ln.options if isinstance(ln, Choice) else (ln,)
            if got.intersection(options):
                continue
            prefixes = tuple(f"{t}:" for t in options) + ((f"{ln.name}:",) if isinstance(ln, Choice) else ())
            why = sk[sk.str.startswith(prefixes)].value_counts()
            what = f"choice line {ln.name} ({', '.join(options)})" if isinstance(ln, Choice) else ln
            notes.append(f"strategy {name}: line {i + 1} ({what}) was given to no patient"
                         + (f" (skipped: {_skip_text(why)})" if len(why) else ""))
    return notes


def flow_labels(flow: pd.DataFrame, top: int = 2) -> dict[str, str]:
    """``{strategy: "1: ssa 78 %, sunitinib 22 % | 2: ..."}``: the ``top`` therapies given at each line
    with their share of the cohort (what patients received, not what the strategy lists)."""
    out = {}
    for s, g in flow[flow["n_patients"] > 0].groupby("strategy", sort=False):
        parts = []
        for ln, h in g.groupby("line"):
            h = h.sort_values("n_patients", ascending=False)
            more = f", +{len(h) - top}" if len(h) > top else ""
            parts.append(f"{ln}: " + ", ".join(f"{t} {100 * x:.0f} %" for t, x in zip(h["therapy"][:top],
                                                                                    h["share"][:top])) + more)
        out[s] = " | ".join(parts)
    return out


def flow_figure(flow: pd.DataFrame, path: Path, labels: Mapping[str, str] | None = None) -> Path:
    """``treatment_flow.png``: per strategy, bars of the share of its patients given each therapy at
    each line (stacked; the rest died, reached the end of the pathway or the horizon before it).
    Colours, legend and titles are built from ``flow``."""
    labels = labels or {}
    g = flow[flow["n_patients"] > 0]
    strategies = list(dict.fromkeys(g["strategy"]))
    therapies = list(dict.fromkeys(g.sort_values("line")["therapy"]))
    colours = dict(zip(therapies, plt.get_cmap("tab20")(np.linspace(0, 1, max(len(therapies), 2)))))
    fig, axes = plt.subplots(len(strategies), 1, figsize=(10, 1.2 + 1.6 * len(strategies)), squeeze=False)
    for ax, s in zip(axes[:, 0], strategies):
        h = g[g["strategy"] == s]
        left = {}
        for t in therapies:
            ht = h[h["therapy"] == t]
            if len(ht):
                base = [left.get(ln, 0.0) for ln in ht["line"]]
                ax.bar(ht["line"], ht["share"], bottom=base, color=colours[t], label=t, width=0.7)
                for ln, x in zip(ht["line"], ht["share"]):
                    left[ln] = left.get(ln, 0.0) + x
        ax.set_title(labels.get(s, s), fontsize=9, loc="left")
        ax.set_ylim(0, 1.0)
        ax.set_ylabel("share")
        ax.set_xticks(sorted(h["line"].unique()))
    axes[-1, 0].set_xlabel("line of therapy given (1st, 2nd, ...)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[t]) for t in therapies]
    fig.legend(handles, therapies, loc="upper right", fontsize=8, ncol=min(len(therapies), 4))
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    n = len(x)
    return float(np.mean(x)), float(np.std(x, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")


def subgroup_table(patients: pd.DataFrame, econ: pd.DataFrame | None, wtp: float | None,
                   order: list[str]) -> pd.DataFrame:
    """Clinical and economic results by subgroup, with the best strategy in each.

    Parameters
    ----------
    patients : DataFrame
        The run's ``patients`` table with the baseline columns of :data:`SUBGROUPS`.
    econ : DataFrame or None
        Per-patient economics (``strategy, patient_id, cost_total_disc, qaly_disc``), or None.
    wtp : float or None
        Willingness to pay per QALY of the net monetary benefit (ignored without ``econ``).
    order : list of str
        Strategies in output order.

    Returns
    -------
    DataFrame
        One row per (subgroup variable, value, strategy): ``n_patients``, mean OS (months) and its
        Monte Carlo SE, median OS, and with economics discounted costs, QALYs and NMB at ``wtp``
        (each with its SE); ``best`` marks the strategy with the highest mean NMB (mean OS without
        economics) in the subgroup, ``best_strategy`` names it, and ``margin`` / ``margin_se`` give
        its paired advantage over the runner-up (same patients under both strategies).
    """
    df = patients[["strategy", "patient_id", "os_months"] + list(SUBGROUPS)].copy()
    if econ is not None:
        df = df.merge(econ[["strategy", "patient_id", "cost_total_disc", "qaly_disc"]], on=["strategy", "patient_id"])
        df["nmb"] = wtp * df["qaly_disc"] - df["cost_total_disc"]
    key = "nmb" if econ is not None else "os_months"
    df["sstr_positive"] = np.where(df["sstr_positive"].astype(bool), "positive", "negative")
    rows = []
    for var in SUBGROUPS:
        for val, g in df.groupby(var, observed=True, sort=True):
            block = []
            for s in order:
                x = g[g["strategy"] == s].sort_values("patient_id")
                if not len(x):
                    continue
                r = {"subgroup": var, "value": str(val), "strategy": s, "n_patients": len(x)}
                r["mean_os_months"], r["mean_os_months_se"] = _mean_se(x["os_months"].to_numpy())
                r["median_os_months"] = float(np.median(x["os_months"]))
                if econ is not None:
                    for c in ("cost_total_disc", "qaly_disc", "nmb"):
                        r[c], r[f"{c}_se"] = _mean_se(x[c].to_numpy())
                    r["wtp"] = wtp
                block.append((r, x[key].to_numpy()))
            if not block:
                continue
            ranked = sorted(block, key=lambda b: -b[0]["mean_os_months" if key == "os_months" else "nmb"])
            best = ranked[0][0]["strategy"]
            if len(ranked) > 1:
                d = ranked[0][1] - ranked[1][1]
                margin, margin_se = _mean_se(d)
            else:
                margin = margin_se = float("nan")
            for r, _ in block:
                rows.append(r | {"best": r["strategy"] == best, "best_strategy": best, "best_by": key,
                                 "margin": margin, "margin_se": margin_se})
    return pd.DataFrame(rows)
