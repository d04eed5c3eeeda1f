"""Kaplan-Meier figures (lifelines) of simulated OS and PFS."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from lifelines import KaplanMeierFitter  # noqa: E402


def _km(ax, t, e, label, **kw):
    KaplanMeierFitter().fit(t, e, label=label).plot_survival_function(ax=ax, ci_show=False, **kw)


def km_figures(patients: pd.DataFrame, lines: pd.DataFrame, out_dir: Path, labels: dict | None = None) -> list[Path]:
    """Write ``km_overview.png`` (OS, PFS1, PFS2 by strategy) and one ``km_<strategy>.png``
    per strategy (OS and PFS of each line from its start). Returns the paths written."""
    out_dir = Path(out_dir)
    labels = labels or {}
    paths = []
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), sharey=True)
    for s, p in patients.groupby("strategy", sort=False, observed=True):
        for ax, (col, ev, title) in zip(axes, [("os_months", "death", "Overall survival"),
                                                ("pfs1_months", "pfs1_event", "PFS1 (first progression or death)"),
                                                ("pfs2_months", "pfs2_event", "PFS2 (second progression or death)")]):
            _km(ax, p[col], p[ev], s)
            ax.set_title(title)
            ax.set_xlabel("months from start of first line")
    axes[0].set_ylabel("probability")
    fig.tight_layout()
    paths.append(out_dir / "km_overview.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    for s, p in patients.groupby("strategy", sort=False, observed=True):
        ln = lines[(lines["strategy"] == s) & lines["pfs_true"].notna()]
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        _km(axes[0], p["os_months"], p["death"], "OS", color="black")
        axes[0].set_title(f"{labels.get(s, s)}\noverall survival")
        for line, g in ln.groupby("line"):
            top = g["therapy"].value_counts()
            name = top.index[0] if len(top) == 1 else f"{top.index[0]} +{len(top) - 1} other"
            _km(axes[1], g["end"] - g["start"], g["reason"].isin(["progression", "death"]), f"line {line}: {name} (n={len(g)})")
        axes[1].set_title("PFS on each line (from line start; censored at toxicity stop)")
        for ax in axes:
            ax.set_xlabel("months")
            ax.set_ylim(0, 1.02)
        fig.tight_layout()
        paths.append(out_dir / f"km_{s}.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths
