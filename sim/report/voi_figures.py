"""Figures of the value-of-information tables of a PSA run: convergence of the mean INB, the
CEAC and the EVPI with the number of samples; the EVPI curve over willingness to pay (per
person and for the population); EVPPI regression diagnostics (residuals against fitted
values); EVSI and ENBS against the trial size."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the non-interactive backend is chosen)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sim.uncertainty import voi  # noqa: E402
from sim.uncertainty.psa_analysis import matrices, param_matrix  # noqa: E402


def convergence_figure(conv: pd.DataFrame, conv_voi: pd.DataFrame, path: Path, currency: str = "") -> Path:
    """Three panels against the number of PSA samples: running mean INB with its 95 % Monte
    Carlo band (``convergence``), the CEAC at the primary WTP per strategy and the EVPI with its
    band (``convergence_voi``)."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    ax = axes[0]
    ax.plot(conv["n_samples"], conv["mean_inb"], color="C0")
    ax.fill_between(conv["n_samples"], conv["lo"], conv["hi"], color="C0", alpha=0.2)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_title(f"Mean INB, {conv['comparison'].iloc[0]}" if len(conv) else "Mean INB")
    ax.set_ylabel(f"INB per person{(' ' + currency) if currency else ''}")
    ce = conv_voi[conv_voi["measure"] == "p_ce"]
    for k, (s, g) in enumerate(ce.groupby("strategy", sort=False)):
        axes[1].plot(g["n_samples"], g["value"], color=f"C{k}", label=s)
        axes[1].fill_between(g["n_samples"], g["lo"], g["hi"], color=f"C{k}", alpha=0.15)
    axes[1].set_ylim(-0.02, 1.02)
    axes[1].set_title("P(highest net benefit)")
    axes[1].legend(fontsize=7)
    ev = conv_voi[conv_voi["measure"] == "evpi"]
    axes[2].plot(ev["n_samples"], ev["value"], color="k")
    axes[2].fill_between(ev["n_samples"], ev["lo"], ev["hi"], color="grey", alpha=0.25)
    axes[2].set_title("EVPI per person")
    wtp = conv_voi["wtp"].iloc[0] if len(conv_voi) else np.nan
    for ax in axes:
        ax.set_xlabel("PSA samples")
    fig.suptitle(f"Convergence with the number of samples (WTP {wtp:,.0f} per QALY)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def evpi_curve_figure(ceaf: pd.DataFrame, path: Path, currency: str = "") -> Path:
    """EVPI per person (with its 95 % Monte Carlo band) and for the population against WTP."""
    fig, ax = plt.subplots(figsize=(7, 4))
    lo = np.maximum(ceaf["evpi"] - voi.Z95 * ceaf["evpi_se"], 0)
    ax.plot(ceaf["wtp"], ceaf["evpi"], color="k", label="per person")
    ax.fill_between(ceaf["wtp"], lo, ceaf["evpi"] + voi.Z95 * ceaf["evpi_se"], color="grey", alpha=0.25)
    ax.set_xlabel("willingness to pay per QALY")
    ax.set_ylabel(f"EVPI per person{(' ' + currency) if currency else ''}")
    if "evpi_population" in ceaf and np.isfinite(ceaf["evpi_population"]).any():
        ax2 = ax.twinx()
        ax2.plot(ceaf["wtp"], ceaf["evpi_population"], color="C3", ls="--", label="population")
        ax2.set_ylabel(f"population EVPI{(' ' + currency) if currency else ''}", color="C3")
    ax.set_title("EVPI over willingness to pay")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def evppi_diagnostics_figure(samples: pd.DataFrame, strategies: list[str], groups: Mapping[str, list[str]],
                             wtp: float, method: str, path: Path, seed: int = 0) -> Path:
    """Residuals against fitted values of the EVPPI regression of each group (first contrast
    vs the first strategy) at ``wtp``: a residual check by eye (no trend, no funnel)."""
    C, Q = matrices(samples, strategies, "cost"), matrices(samples, strategies, "qaly")
    nb = wtp * Q - C
    y = nb[:, 1] - nb[:, 0] if nb.shape[1] > 1 else nb[:, 0]
    names = list(groups)
    cols = min(4, max(len(names), 1))
    rows = int(np.ceil(max(len(names), 1) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False)
    for ax, g in zip(axes.ravel(), names):
        x = param_matrix(samples, groups[g])
        m = method if method != "auto" else ("gam" if x.shape[1] <= 2 else "gp")
        r = voi.regression(m, x, y, seed)
        ax.scatter(r.fitted, y - r.fitted, s=3, alpha=0.4)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_title(f"{g}\n{r.method}, R2 {r.r2:.2f}, p {r.resid_p:.2g}", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    fig.suptitle(f"EVPPI regressions: residuals vs fitted ({strategies[1] if len(strategies) > 1 else ''} vs "
                 f"{strategies[0]}, WTP {wtp:,.0f})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def evsi_figure(t: pd.DataFrame, path: Path, wtp: float, currency: str = "") -> Path:
    """EVSI (per person, both methods, 95 % intervals) and ENBS against the trial size at ``wtp``."""
    d = t[t["wtp"] == wtp]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for m, g in d.groupby("method"):
        axes[0].plot(g["n"], g["evsi_per_person"], marker="o", ms=3, label=m)
        axes[0].fill_between(g["n"], g["lo"], g["hi"], alpha=0.15)
        axes[1].plot(g["n"], g["enbs"], marker="o", ms=3, label=m)
    if len(d):
        axes[0].axhline(d["evppi_endpoint"].iloc[0], color="k", ls="--", lw=1, label="EVPPI of the trial endpoint")
        axes[0].axhline(d["evpi"].iloc[0], color="grey", ls=":", lw=1, label="EVPI")
    axes[0].set_xlabel("trial size n")
    axes[0].set_ylabel(f"EVSI per person{(' ' + currency) if currency else ''}")
    axes[0].set_title(f"EVSI of the rechallenge trial (WTP {wtp:,.0f}/QALY)")
    axes[0].legend(fontsize=7)
    axes[1].axhline(0, color="k", lw=0.8)
    axes[1].set_xlabel("trial size n")
    axes[1].set_ylabel(f"ENBS (population){(' ' + currency) if currency else ''}")
    axes[1].set_title("Expected net benefit of sampling")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def psa_voi_figures(tables: Mapping[str, pd.DataFrame], samples: pd.DataFrame, strategies: list[str],
                    groups: Mapping[str, list[str]], st, folder: Path, currency: str = "", seed: int = 0
                    ) -> dict[str, Path]:
    """``convergence_voi.png``, ``evpi_curve.png`` and, unless every EVPPI is 0 by dominance,
    ``evppi_diagnostics.png`` in ``folder``."""
    folder = Path(folder)
    out = {"convergence_voi": convergence_figure(tables["convergence"], tables["convergence_voi"],
                                                 folder / "convergence_voi.png", currency),
           "evpi_curve": evpi_curve_figure(tables["ceaf"], folder / "evpi_curve.png", currency)}
    ev = tables["evppi"]
    if groups and (ev["method"] != "dominance").any() and len(strategies) > 1 and not (ev["evppi"] == 0).all():
        out["evppi_diagnostics"] = evppi_diagnostics_figure(samples, strategies, groups, st.primary_wtp,
                                                            st.evppi_method, folder / "evppi_diagnostics.png", seed)
    return out
