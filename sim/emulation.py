"""Emulation of the single-arm sunitinib rechallenge trial of seed 000.

``pnetsim experiment=emulation`` (``configs/experiment/emulation.yaml``). Seed 000 registers
a single-arm trial of sunitinib given again to patients with metastatic pNET whose disease
progressed on sunitinib; primary endpoint: progression-free survival at 6 months.

1. **Prediction.** The model's pathway brings patients to the rechallenge line
   (``experiment.strategy``, default ``rechallenge``: SSA -> sunitinib -> everolimus ->
   sunitinib rechallenge -> BSC), so each emulated trial patient carries their own
   first-exposure PFS and time off sunitinib (which drive the rechallenge time ratio). From
   the start of the rechallenge line, a patient has a 6-month PFS event if progression is
   detected (at a scheduled scan every ``model.imaging_interval_weeks`` or clinically between
   scans, ``model.clinical_detection_months``) or the patient dies within 6 months (intention to
   treat: after a toxicity stop the progression drawn on the line counts at its next scheduled scan). ``p6`` = share without an event; Monte Carlo 95 % interval
   ``p6 +- 1.96 sqrt(p6 (1 - p6) / m)`` over the ``m`` emulated patients.
2. **Parameter uncertainty.** ``S`` draws of the rechallenge parameters from their PSA
   distributions (``configs/psa/default.yaml``, centred on the base case), each simulated on
   the same patients and uniforms (common random numbers); reported as the 2.5 / 50 / 97.5
   percentiles of ``p6`` over the draws. Uniforms for the draws come from the named stream
   ``emulation/uncertainty`` (:mod:`sim.rng`).
3. **Power of the single-arm design.** Exact one-sided binomial test of ``H0: p6 <= p0`` at
   level ``alpha``: reject when ``X >= c_n``, ``c_n = min{c : P(X >= c | n, p0) <= alpha}``; power
   ``P(X >= c_n | n, p) = 1 - F_Binom(c_n - 1; n, p)``, for each sample size ``n`` and true rate
   ``p`` (the configured grid plus the model-implied ``p6``), and the assurance (power averaged
   over the parameter-uncertainty draws of ``p6``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from omegaconf import OmegaConf
from scipy import stats

from sim.config import build_cohort, build_lifetable, build_rules, check_run_settings, to_container
from sim.uncertainty.params import make_param
from sim.errors import UserError, check, is_number, mapping, sequence_of_str, whole
from sim.rng import uniforms
from sim.runio import atomic_run_dir, run_folder_name, write_manifest
from sim.strategies import Strategy
from sim.therapies import build_therapies
from sim.validation import run_engine, set_path

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- exact binomial design

def critical_value(n: int, p0: float, alpha: float) -> int:
    """Smallest ``c`` with ``P(X >= c | n, p0) <= alpha`` (``n + 1`` if none: never reject)."""
    check(isinstance(n, (int, np.integer)) and n >= 1, "experiment.design.sample_sizes", n, "must be whole numbers >= 1")
    check(0 < p0 < 1, "experiment.design.null_rate", p0, "must be in (0, 1)")
    check(0 < alpha < 1, "experiment.design.alpha", alpha, "must be in (0, 1)")
    c = np.arange(0, n + 2)
    tail = stats.binom.sf(c - 1, n, p0)            # P(X >= c)
    ok = np.nonzero(tail <= alpha)[0]
    return int(c[ok[0]]) if ok.size else n + 1


def power(n: int, p: float, p0: float, alpha: float) -> float:
    """Exact power ``P(X >= c_n | n, p)`` of the one-sided binomial test of ``p <= p0``."""
    c = critical_value(n, p0, alpha)
    return float(stats.binom.sf(c - 1, n, p))


def power_table(sample_sizes, rates: Mapping[str, float], p0: float, alpha: float) -> pd.DataFrame:
    """Rows ``n, critical_value, actual_alpha, rate_label, true_rate, power``."""
    rows = []
    for n in sample_sizes:
        c = critical_value(int(n), p0, alpha)
        size = float(stats.binom.sf(c - 1, n, p0))
        for label, p in rates.items():
            rows.append(dict(n=int(n), critical_value=c, actual_alpha=size, rate_label=label, true_rate=float(p),
                             power=float(stats.binom.sf(c - 1, n, p))))
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- prediction

def landmark_events(lines: pd.DataFrame, patients: pd.DataFrame, therapy: str, landmark: float, dt: float) -> pd.DataFrame:
    """Per patient reaching ``therapy``: ``event`` (progression detected -- the line's detection
    time, or the next scheduled scan of a progression drawn before a toxicity stop -- or death
    within ``landmark`` months of the line start), from the lines table and the patient's OS."""
    ln = lines[lines["therapy"] == therapy].drop_duplicates("patient_id")
    pt = patients.set_index("patient_id").loc[ln["patient_id"]]
    t = ln["pfs_true"].to_numpy(float)
    progressed = ~np.isnan(ln["progression_true"].to_numpy(float))
    detect = np.where(progressed, np.ceil(t / dt - 1e-12) * dt, np.inf)
    detect = np.where(ln["reason"].to_numpy() == "progression", ln["progression_detected"].to_numpy(float)
                      - ln["start"].to_numpy(float), detect)
    death = np.where(pt["death"].to_numpy(bool), pt["os_months"].to_numpy(float) - ln["start"].to_numpy(float), np.inf)
    return pd.DataFrame({"patient_id": ln["patient_id"].to_numpy(), "event": np.minimum(detect, death) <= landmark})


def parameter_distributions(paths, psa_file: Path, plain: Mapping) -> list:
    """The PSA distributions (:class:`sim.uncertainty.params.Param`, centred on the base case of
    ``plain``) of ``paths`` from the PSA parameter file."""
    check(psa_file.exists(), "experiment.uncertainty.ranges_from", str(psa_file), "must be an existing file")
    try:
        loaded = OmegaConf.to_container(OmegaConf.load(psa_file), resolve=False)
    except Exception as exc:
        raise UserError(f"experiment.uncertainty.ranges_from {str(psa_file)!r} could not be read: {exc}") from None
    params = mapping(f"{psa_file.name} parameters", (loaded if isinstance(loaded, Mapping) else {}).get("parameters"),
                     allow_none=True)
    out = []
    for p in paths:
        check(p in params, "experiment.uncertainty.parameters", p, f"must be a parameter of {psa_file.name}")
        out.append(make_param(p, params[p], plain))
    return out


def draw_parameters(dists: list, samples: int, seed: int) -> pd.DataFrame:
    """``samples`` draws (rows) by inverse transform of stream ``emulation/uncertainty``."""
    u = uniforms(seed, "emulation/uncertainty", 0, samples, width=len(dists))
    return pd.DataFrame({d.path: np.asarray(d.ppf(u[:, j]), float) for j, d in enumerate(dists)})


class Emulator:
    """The emulated trial population (cohort and strategy built once) and ``p6(parameters)``."""

    def __init__(self, plain: Mapping):
        exp = mapping("experiment", plain.get("experiment"))
        self.plain = plain
        self.strategy = exp.get("strategy", "rechallenge")
        self.therapy = exp.get("therapy", "sunitinib_rechallenge")
        landmark = exp.get("landmark_months", 6)
        check(is_number(landmark) and landmark > 0,
              "experiment.landmark_months", landmark, "must be a number of months > 0")
        self.landmark = float(landmark)
        strategies = mapping("strategies", plain.get("strategies"))
        check(isinstance(self.strategy, str) and self.strategy in strategies, "experiment.strategy", self.strategy,
              f"must name a configured strategy {sorted(strategies)}")
        # validate everything a simulation reads before the first one
        check_run_settings(plain)
        st = Strategy.from_config(self.strategy, strategies[self.strategy],
                                  build_therapies(mapping("therapies", plain.get("therapies"))))
        check(isinstance(self.therapy, str) and self.therapy in st.therapy_names, "experiment.therapy",
              self.therapy, f"must be a line of strategy {self.strategy} {list(st.therapy_names)}")
        build_rules(mapping("model", plain.get("model")))
        build_lifetable(plain["model"])
        self.cohort = build_cohort(mapping("cohort", plain.get("cohort")), plain["seed"])

    def simulate(self, overrides: Mapping[str, float] | None = None) -> pd.DataFrame:
        """Per emulated patient: ``patient_id, event`` under the config with ``overrides``."""
        plain = self.plain
        for k, v in (overrides or {}).items():
            plain = set_path(plain, k, float(v))
        therapies = build_therapies(plain["therapies"])
        strategy = Strategy.from_config(self.strategy, plain["strategies"][self.strategy], therapies)
        rules = build_rules(plain["model"])
        lt = build_lifetable(plain["model"])
        rec = run_engine(plain, self.cohort, {self.strategy: strategy}, therapies, rules, lt, int(plain["seed"]))
        patients, lines, _ = rec.frames()
        return landmark_events(lines, patients, self.therapy, self.landmark, rules.imaging_interval_months)


def predict(plain: Mapping) -> tuple[dict, pd.DataFrame]:
    """Base-case ``p6`` with its MC interval, and ``p6`` over the parameter-uncertainty draws."""
    exp = mapping("experiment", plain.get("experiment"))
    unc = mapping("experiment.uncertainty", exp.get("uncertainty"), allow_none=True)
    samples = whole("experiment.uncertainty.samples", unc.get("samples", 0), 0)
    ranges = {}
    if samples > 0:                  # validated before the first simulation
        paths = sequence_of_str("experiment.uncertainty.parameters", unc.get("parameters"), allow_none=True)
        src = unc.get("ranges_from", "configs/psa/default.yaml")
        check(isinstance(src, str), "experiment.uncertainty.ranges_from", src, "must be a file path")
        ranges = parameter_distributions(paths, REPO / src, plain)
    em = Emulator(plain)
    base = em.simulate()
    m = len(base)
    check(m >= 1, "cohort.n", plain["cohort"]["n"], f"gives no patient reaching {em.therapy}; increase it")
    p6 = 1.0 - float(base["event"].mean())
    se = math.sqrt(p6 * (1 - p6) / m)
    draws = pd.DataFrame()
    if samples > 0:
        draws = draw_parameters(ranges, samples, int(plain["seed"]))
        vals, ms = [], []
        for row in draws.to_dict("records"):
            ev = em.simulate(row)
            vals.append(1.0 - float(ev["event"].mean()))
            ms.append(len(ev))
        draws = draws.assign(p6=vals, n_emulated=ms)
    summary = {"landmark_months": em.landmark, "n_emulated": m, "p6": p6, "mc_lo": p6 - 1.96 * se,
               "mc_hi": p6 + 1.96 * se}
    if len(draws):
        q = np.percentile(draws["p6"], [2.5, 50, 97.5])
        summary |= {"unc_lo": float(q[0]), "unc_median": float(q[1]), "unc_hi": float(q[2]), "samples": len(draws)}
    return summary, draws


# ---------------------------------------------------------------- figure and entry point

def power_figure(table: pd.DataFrame, summary: Mapping, draws: pd.DataFrame, p0: float, alpha: float, path: Path) -> Path:
    matplotlib.use("Agg")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    for label, g in table.groupby("rate_label", sort=False):
        style = "k-" if label == "model" else "-"
        ax.plot(g["n"], g["power"], style, marker="o", ms=3, label=f"p6 = {g['true_rate'].iloc[0]:.2f}"
                + (" (model)" if label == "model" else ""))
    ax.axhline(0.8, color="grey", ls=":", lw=1)
    ax.set_xlabel("patients (single arm)")
    ax.set_ylabel("power")
    ax.set_title(f"Exact binomial test of p6 <= {p0:.3f}, one-sided alpha {alpha:g}")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    ax = axes[1]
    if len(draws):
        ax.hist(draws["p6"], bins=min(30, max(5, len(draws) // 3)), color="C0", alpha=0.7, label="parameter uncertainty")
    ax.axvline(summary["p6"], color="k", label=f"model p6 = {summary['p6']:.3f}")
    ax.axvspan(summary["mc_lo"], summary["mc_hi"], color="k", alpha=0.15, label="Monte Carlo 95 %")
    ax.axvline(p0, color="r", ls="--", label=f"null rate {p0:.3f}")
    ax.set_xlabel(f"{summary['landmark_months']:g}-month PFS on sunitinib rechallenge")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _design(exp: Mapping) -> tuple[float, float, list[int], dict[str, float]]:
    d = mapping("experiment.design", exp.get("design"), allow_none=True)
    alpha, p0 = d.get("alpha", 0.05), d.get("null_rate")
    for key, v in (("alpha", alpha), ("null_rate", p0)):
        check(is_number(v) and 0 < v < 1, f"experiment.design.{key}", v, "must be a number in (0, 1)")
    sizes = d.get("sample_sizes")
    check(isinstance(sizes, (list, tuple)) and len(sizes) >= 1
          and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes),
          "experiment.design.sample_sizes", sizes, "must be a list of whole numbers >= 1")
    sizes = list(sizes)
    rates = d.get("true_rates") or []
    check(isinstance(rates, (list, tuple)), "experiment.design.true_rates", rates, "must be a list of probabilities")
    for r in rates:
        check(is_number(r) and 0 <= r <= 1, "experiment.design.true_rates", r, "must be probabilities in [0, 1]")
    return float(alpha), float(p0), sizes, {f"{r:g}": float(r) for r in rates}


def run(cfg, job: int | None = None) -> tuple[Path, str]:
    """Entry of ``experiment.kind=emulation``: run folder and printed summary."""
    t0 = time.perf_counter()
    plain = to_container(cfg)
    seed = whole("seed", plain.get("seed"), 0)
    exp = mapping("experiment", plain.get("experiment"))
    alpha, p0, sizes, rates = _design(exp)
    summary, draws = predict(plain)
    table = power_table(sizes, rates | {"model": summary["p6"]}, p0, alpha)
    if len(draws):
        assurance = {n: float(np.mean([power(n, p, p0, alpha) for p in draws["p6"]])) for n in sizes}
        table["assurance"] = table["n"].map(assurance)
    summary |= {"null_rate": p0, "alpha": alpha}
    t1 = time.perf_counter()
    final = run_folder_name(plain, job)
    with atomic_run_dir(final) as tmp:
        pd.DataFrame([summary]).to_csv(tmp / "emulation.csv", index=False, float_format="%.6g")
        table.to_csv(tmp / "power.csv", index=False, float_format="%.6g")
        if len(draws):
            draws.to_csv(tmp / "uncertainty.csv", index=False, float_format="%.6g")
        if plain.get("output", {}).get("figures", True):
            power_figure(table, summary, draws, p0, alpha, tmp / "power.png")
        t2 = time.perf_counter()
        write_manifest(tmp, plain, seed, {"simulate": t1 - t0, "write": t2 - t1, "total": t2 - t0},
                       {"n_emulated": summary["n_emulated"]})
    wide = table.pivot(index="n", columns="rate_label", values="power")
    wide = wide[[c for c in table["rate_label"].unique()]]
    text = (f"{summary['landmark_months']:g}-month PFS on sunitinib rechallenge (model): {summary['p6']:.3f} "
            f"(MC 95 % {summary['mc_lo']:.3f}-{summary['mc_hi']:.3f}, {summary['n_emulated']} emulated patients)")
    if "unc_lo" in summary:
        text += (f"\nover {summary['samples']} draws of the rechallenge parameters: median {summary['unc_median']:.3f}, "
                 f"95 % {summary['unc_lo']:.3f}-{summary['unc_hi']:.3f}")
    text += (f"\npower of the exact one-sided binomial test of p6 <= {p0:.3f} (alpha {alpha:g}) by n (rows) and true p6:\n"
             + wide.round(3).to_string())
    if "assurance" in table:
        text += "\nassurance (power averaged over the parameter uncertainty): " + ", ".join(
            f"n={n}: {a:.3f}" for n, a in table.drop_duplicates("n")[["n", "assurance"]].itertuples(index=False))
    return final, text
