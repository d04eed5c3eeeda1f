"""Kaplan-Meier figures (lifelines) of simulated OS and PFS, with 95 % confidence bands and numbers at
risk, and the cost-effectiveness plane of the paired differences of a comparison run."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from lifelines import KaplanMeierFitter  # noqa: E402
from lifelines.plotting import add_at_risk_counts  # noqa: E402
from matplotlib import font_manager  # noqa: E402

from sim.report.labels import short_label  # noqa: E402

#: fonts tried after the default one, so labels in Chinese, Japanese or Korean keep their glyphs
#: where such a font is installed (matplotlib falls back glyph by glyph)
FALLBACK_FONTS = ("Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK KR", "Source Han Sans", "WenQuanYi Zen Hei",
                  "IPAGothic", "Droid Sans Fallback")
_INSTALLED = {f.name for f in font_manager.fontManager.ttflist}
matplotlib.rcParams["font.family"] = ["DejaVu Sans"] + [f for f in FALLBACK_FONTS if f in _INSTALLED]

#: months between at-risk counts
AT_RISK_EVERY = 24


def _km(ax, t, e, label, **kw) -> KaplanMeierFitter:
    km = KaplanMeierFitter().fit(t, e, label=label)
    km.plot_survival_function(ax=ax, ci_show=True, ci_alpha=0.15, **kw)
    return km


def _at_risk(ax, fitters, t_max: float) -> None:
    ticks = np.arange(0, max(t_max, AT_RISK_EVERY) + 1e-9, AT_RISK_EVERY)
    ax.set_xticks(ticks)
    ax.set_xlim(0, ticks[-1])
    add_at_risk_counts(*fitters, ax=ax, rows_to_show=["At risk"], fontsize=8)


def _therapy_mix(g: pd.DataFrame) -> str:
    """``sunitinib`` or ``everolimus 60 %, sunitinib 40 %``: the therapies given on a line."""
    share = g["therapy"].value_counts(normalize=True)
    if len(share) == 1:
        return str(share.index[0])
    return ", ".join(f"{k} {100 * v:.0f} %" for k, v in share.items())


def km_figures(patients: pd.DataFrame, lines: pd.DataFrame, out_dir: Path, labels: dict | None = None) -> list[Path]:
    """Write ``km_overview.png`` (OS, PFS1, PFS2 by strategy) and one ``km_<strategy>.png`` per
    strategy (OS, and PFS of each line from its start), each curve with its 95 % confidence band and
    the numbers at risk below the axes. Returns the paths written (:func:`km_overview`, then
    :func:`km_strategy_figures`)."""
    return [km_overview(patients, out_dir, labels)] + km_strategy_figures(patients, lines, out_dir, labels)


def km_overview(patients: pd.DataFrame, out_dir: Path, labels: dict | None = None) -> Path:
    """Write ``km_overview.png``: OS, PFS1 and PFS2 of every strategy (see :func:`km_figures`)."""
    labels = labels or {}
    panels = [("os_months", "death", "Overall survival"),
              ("pfs1_months", "pfs1_event", "PFS1 (first progression or death)"),
              ("pfs2_months", "pfs2_event", "PFS2 (second progression or death)")]
    groups = list(patients.groupby("strategy", sort=False, observed=True))
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.6 + 0.25 * len(groups)), sharey=True)
    for ax, (col, ev, title) in zip(axes, panels):
        fitters = [_km(ax, p[col], p[ev], short_label(s, labels)) for s, p in groups]
        ax.set_title(title)
        ax.set_xlabel("months from start of first line")
        ax.set_ylim(0, 1.02)
        _at_risk(ax, fitters, float(patients[col].quantile(0.95)))
    axes[0].set_ylabel("probability (95 % confidence band)")
    fig.tight_layout()
    path = Path(out_dir) / "km_overview.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def km_strategy_figures(patients: pd.DataFrame, lines: pd.DataFrame, out_dir: Path,
                        labels: dict | None = None) -> list[Path]:
    """Write one ``km_<strategy>.png`` per strategy: OS, and PFS of each line from its start (see
    :func:`km_figures`). Returns the paths, in the strategies' order."""
    out_dir = Path(out_dir)
    labels = labels or {}
    paths = []
    for s, p in patients.groupby("strategy", sort=False, observed=True):
        ln = lines[(lines["strategy"] == s) & lines["pfs_true"].notna()]
        per_line = list(ln.groupby("line"))
        fig, axes = plt.subplots(1, 2, figsize=(13, 5.6 + 0.25 * len(per_line)))
        os_fit = _km(axes[0], p["os_months"], p["death"], "OS", color="black")
        axes[0].set_title(f"{labels.get(s, s)}\noverall survival")
        _at_risk(axes[0], [os_fit], float(p["os_months"].quantile(0.95)))
        fitters = [_km(axes[1], g["end"] - g["start"], g["reason"].isin(["progression", "death"]),
                       f"line {line}: {_therapy_mix(g)} (n={len(g):,})") for line, g in per_line]
        axes[1].set_title("PFS on each line (from line start; censored at toxicity stop)")
        if fitters:
            dur = pd.concat([g["end"] - g["start"] for _, g in per_line])
            _at_risk(axes[1], fitters, float(dur.quantile(0.95)))
        for ax in axes:
            ax.set_xlabel("months")
            ax.set_ylim(0, 1.02)
        axes[0].set_ylabel("probability (95 % confidence band)")
        fig.tight_layout()
        paths.append(out_dir / f"km_{s}.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


def paired_bootstrap(per_patient: pd.DataFrame, reference: str, n_boot: int = 1000,
                     seed: int = 0) -> pd.DataFrame:
    """Bootstrap of the mean paired differences (strategy minus ``reference``) in discounted cost and
    QALYs: patients are resampled with replacement, the same patients for every strategy.

    Parameters
    ----------
    per_patient : DataFrame
        ``economics_patients`` (columns ``strategy``, ``patient_id``, ``cost_total_disc``, ``qaly_disc``).
    reference : str
        The reference strategy.
    n_boot : int
        Resamples.
    seed : int
        Seed of the resampling (the run's master seed: the figure is reproducible).

    Returns
    -------
    DataFrame
        Columns ``strategy``, ``replicate``, ``delta_cost``, ``delta_qaly``.
    """
    wide_c = per_patient.pivot(index="patient_id", columns="strategy", values="cost_total_disc")
    wide_q = per_patient.pivot(index="patient_id", columns="strategy", values="qaly_disc")
    n = len(wide_c)
    idx = np.random.default_rng([int(seed) % 2 ** 63, 7]).integers(0, n, size=(n_boot, n))
    out = []
    for s in wide_c.columns:
        if s == reference:
            continue
        dc = (wide_c[s] - wide_c[reference]).to_numpy()
        dq = (wide_q[s] - wide_q[reference]).to_numpy()
        out.append(pd.DataFrame({"strategy": s, "replicate": np.arange(n_boot),
                                 "delta_cost": dc[idx].mean(axis=1), "delta_qaly": dq[idx].mean(axis=1)}))
    return pd.concat(out, ignore_index=True)


def ce_plane_paired(per_patient: pd.DataFrame, reference: str, path: Path, labels: Mapping | None = None,
                    wtp=(20000, 30000), currency: str = "", seed: int = 0) -> Path:
    """Cost-effectiveness plane of a comparison run: each strategy's mean paired difference against
    ``reference`` (discounted QALYs, cost) with a cloud of 1,000 bootstrap means (their uncertainty
    from the cohort's Monte Carlo error) and the willingness-to-pay lines. Writes ``path``."""
    boot = paired_bootstrap(per_patient, reference, seed=seed)
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (s, g) in enumerate(boot.groupby("strategy", sort=False)):
        c = colours[i % len(colours)]
        ax.scatter(g["delta_qaly"], g["delta_cost"], s=4, alpha=0.25, color=c)
        ax.scatter(g["delta_qaly"].mean(), g["delta_cost"].mean(), s=60, color=c, edgecolor="black",
                   label=f"{short_label(s, labels)} vs {short_label(reference, labels)}")
    lim = max(float(boot["delta_qaly"].abs().max()) * 1.15, 1e-3)
    xs = np.array([-lim, lim])
    for w in wtp:
        ax.plot(xs, w * xs, ls="--", lw=0.8, color="grey")
        ax.annotate(f"{w:,.0f} {currency} per QALY".strip(), (xs[1], w * xs[1]), fontsize=8, color="grey",
                    ha="right", va="bottom")
    ax.axhline(0, color="black", lw=0.6)
    ax.axvline(0, color="black", lw=0.6)
    ax.set_xlim(-lim, lim)
    ax.set_xlabel("incremental QALYs (discounted, per patient)")
    ax.set_ylabel(f"incremental cost ({currency}, discounted, per patient)" if currency else "incremental cost")
    ax.set_title("Cost-effectiveness plane: paired differences (1,000 bootstrap means)")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
