"""Analysis of probabilistic sensitivity analysis samples: the result tables of a PSA run.

Input: the per-(sample, strategy) rows of :func:`sim.uncertainty.psa.run_samples`
(``psa_samples.parquet``; columns in ``docs/outputs_psa.md``). Every function here works on
those rows only, so a PSA split into blocks can be re-analysed from the concatenated files.

Net monetary benefit of strategy ``d`` in sample ``s`` at willingness to pay ``lambda``:
``NB[s, d] = lambda * QALY[s, d] - cost[s, d]`` (discounted). Monte Carlo standard errors of
means over samples are ``sd / sqrt(S)``; intervals are 2.5 / 97.5 % percentiles over samples.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from sim.uncertainty import mc_variance, voi
from sim.economics.evaluate import incremental_with_se
# labels of the EVPI row and of the EVPPI of all parameters jointly in the ``evppi`` table (re-exported here)
from sim.uncertainty.voi_groups import ALL_GROUP, EVPI_GROUP  # noqa: F401
from sim.errors import UserError

Z95 = 1.959963984540054

#: outcomes summarised per strategy (``cost_<category>`` are discounted costs by category)
SUMMARY_MEASURES = ("cost", "qaly", "ly", "cost_undiscounted", "qaly_undiscounted", "ly_undiscounted",
                    "cost_drug", "cost_administration", "cost_monitoring", "cost_ae", "cost_bsc", "cost_end_of_life")


def matrices(samples: pd.DataFrame, strategies: list[str], col: str) -> np.ndarray:
    """``[S x D]`` array of ``col`` (rows ordered by sample, columns by ``strategies``)."""
    w = samples.pivot(index="sample", columns="strategy", values=col)
    missing = [s for s in strategies if s not in w.columns]
    if missing:
        raise UserError(f"psa samples lack strategies {missing}")
    return w[strategies].sort_index().to_numpy(float)


def param_matrix(samples: pd.DataFrame, paths: list[str]) -> np.ndarray:
    return samples.drop_duplicates("sample").sort_values("sample")[paths].to_numpy(float)


def summary_table(samples: pd.DataFrame, strategies: list[str], labels: Mapping | None = None) -> pd.DataFrame:
    """Per strategy, for every measure of :data:`SUMMARY_MEASURES` present in ``samples``: the
    mean over samples ``x``, its Monte Carlo SE ``x_se = sd / sqrt(S)`` and the 2.5 / 97.5 %
    percentiles ``x_lo``, ``x_hi``."""
    rows = []
    measures = [c for c in SUMMARY_MEASURES if c in samples.columns]
    for s in strategies:
        d = samples[samples["strategy"] == s]
        row = {"strategy": s, "label": (labels or {}).get(s, s), "n_samples": len(d)}
        for c in measures:
            x = d[c].to_numpy(float)
            row[c] = x.mean()
            row[f"{c}_se"] = x.std(ddof=1) / math.sqrt(len(x)) if len(x) > 1 else math.nan
            row[f"{c}_lo"], row[f"{c}_hi"] = np.quantile(x, [0.025, 0.975])
        rows.append(row)
    return pd.DataFrame(rows)


def full_incremental(samples: pd.DataFrame, strategies: list[str], wtps: Iterable[float]) -> pd.DataFrame:
    """Full incremental analysis (:func:`sim.economics.incremental.incremental`: strict and
    extended dominance, ICERs along the frontier, NMB / NHB) of the expected (mean over samples)
    discounted costs and QALYs: the probabilistic base case. SEs as in
    :func:`sim.economics.evaluate.incremental_with_se` with PSA samples in place of patients
    (``sd / sqrt(S)``; incremental SEs paired by sample)."""
    d = samples[samples["strategy"].isin(strategies)].rename(columns={"sample": "patient_id"})
    order = {s: i for i, s in enumerate(strategies)}
    d = d.sort_values(["strategy", "patient_id"], key=lambda c: c.map(order) if c.name == "strategy" else c)
    return incremental_with_se(d[["strategy", "patient_id", "cost", "qaly"]], list(wtps), cost="cost", effect="qaly")


def incremental_table(samples: pd.DataFrame, strategies: list[str], comparator: str,
                      wtps: Iterable[float]) -> pd.DataFrame:
    """Each strategy vs ``comparator``: mean incremental cost / QALY (95 % percentile
    intervals), ICER of the means, and at each WTP the mean incremental NMB, its interval
    and the probability that the strategy's NMB exceeds the comparator's."""
    C, Q = matrices(samples, strategies, "cost"), matrices(samples, strategies, "qaly")
    j = strategies.index(comparator)
    rows = []
    for i, s in enumerate(strategies):
        if i == j:
            continue
        dc, dq = C[:, i] - C[:, j], Q[:, i] - Q[:, j]
        mc, mq = dc.mean(), dq.mean()
        if mq > 0:
            icer = mc / mq
        elif mq < 0 and mc > 0:
            icer = math.nan  # dominated
        else:
            icer = mc / mq if mq != 0 else math.nan
        status = ("dominates" if (mc <= 0 and mq >= 0) else "dominated" if (mc >= 0 and mq <= 0) else
                  "more costly, more effective" if mq > 0 else "less costly, less effective")
        n = math.sqrt(len(dc))
        row = {"strategy": s, "comparator": comparator, "delta_cost": mc, "delta_cost_se": dc.std(ddof=1) / n,
               "delta_cost_lo": np.quantile(dc, 0.025), "delta_cost_hi": np.quantile(dc, 0.975),
               "delta_qaly": mq, "delta_qaly_se": dq.std(ddof=1) / n,
               "delta_qaly_lo": np.quantile(dq, 0.025), "delta_qaly_hi": np.quantile(dq, 0.975),
               "icer": icer, "status": status}
        for w in wtps:
            inb = w * dq - dc
            se = inb.std(ddof=1) / math.sqrt(len(inb))
            row[f"inmb_{w:.0f}"] = inb.mean()
            row[f"inmb_{w:.0f}_se"] = se
            row[f"inmb_{w:.0f}_lo"], row[f"inmb_{w:.0f}_hi"] = np.quantile(inb, [0.025, 0.975])
            row[f"p_ce_{w:.0f}"] = float(np.mean(inb > 0))
        rows.append(row)
    return pd.DataFrame(rows)


def ce_plane(samples: pd.DataFrame, strategies: list[str], comparator: str) -> pd.DataFrame:
    """Long table ``sample, strategy, delta_cost, delta_qaly`` vs the comparator."""
    C, Q = matrices(samples, strategies, "cost"), matrices(samples, strategies, "qaly")
    j = strategies.index(comparator)
    ids = np.sort(samples["sample"].unique())
    parts = [pd.DataFrame({"sample": ids, "strategy": s, "delta_cost": C[:, i] - C[:, j],
                           "delta_qaly": Q[:, i] - Q[:, j]}) for i, s in enumerate(strategies) if i != j]
    return pd.concat(parts, ignore_index=True)


def evppi_table(samples: pd.DataFrame, strategies: list[str], groups: Mapping[str, list[str]],
                wtps: Iterable[float], method: str = "auto", n_boot: int = 500, seed: int = 0,
                all_parameters: list[str] | None = None, noise_replicates: int = 20,
                population: float = math.nan) -> pd.DataFrame:
    """EVPPI per parameter group and WTP (per person; NB units), with EVPI alongside.

    With ``all_parameters`` (every sampled parameter path) a row :data:`ALL_GROUP` gives the EVPPI
    of all parameters jointly. It approaches the EVPI from below: the rest of the EVPI is the
    decision uncertainty left by the finite cohort of each sample (first-order Monte Carlo
    noise), which more parameter information cannot remove.

    Beside every EVPPI: ``noise_floor`` / ``noise_mean`` (95 % quantile and mean of the EVPPI of
    ``noise_replicates`` groups -- at most 5 for groups of more than four parameters, whose
    additive fits are costly -- of as many dummy parameters of pure noise, :func:`voi.noise_floor`)
    and ``within_noise_floor``; the regression diagnostics ``r2`` (smallest over contrasts),
    ``resid_p`` (residual check, smallest p-value) and ``edf``; for a group of several parameters
    the member with the largest one-parameter EVPPI (``max_member``, ``max_member_evppi``) and
    ``group_ge_member``: ``evppi >= max_member_evppi - 1.96 sqrt(se^2 + se_member^2)`` (a group is
    worth at least each member; the check allows for the Monte Carlo error of both). With a
    ``population`` (discounted number of people who benefit from the decision,
    :func:`population_factor`), ``evppi_population = evppi x population``.
    """
    C, Q = matrices(samples, strategies, "cost"), matrices(samples, strategies, "qaly")
    todo = dict(groups)
    if all_parameters and len(all_parameters) > 0:
        todo[ALL_GROUP] = list(all_parameters)
    rows = []
    for w in wtps:
        nb = w * Q - C
        e = voi.evpi_se(nb)
        rows.append({"wtp": w, "group": EVPI_GROUP, "parameters": "", "n_parameters": np.nan,
                     "evppi": e.value, "se": e.se, "lo": e.lo, "hi": e.hi, "method": "definition"})
        floors: dict = {}
        singles: dict = {}

        def single(path):
            if path not in singles:
                singles[path] = voi.evppi(nb, param_matrix(samples, [path]), method="gam", n_boot=min(n_boot, 200),
                                          seed=seed)
            return singles[path]

        for g, paths in todo.items():
            x = param_matrix(samples, paths)
            r = voi.evppi(nb, x, method=method, n_boot=n_boot, seed=seed)
            k = len(paths)
            base_method = "gp" if (method == "gp" or (method == "auto" and k > 2)) else "gam"
            if (k, base_method) not in floors:
                reps = noise_replicates if k <= 4 else min(noise_replicates, 5)   # large groups: costly fits
                floors[(k, base_method)] = voi.noise_floor(nb, k, base_method, reps, seed)
            floor, fmean = floors[(k, base_method)]
            row = {"wtp": w, "group": g, "parameters": ";".join(paths), "n_parameters": k,
                   "evppi": r.value, "se": r.se, "lo": r.lo, "hi": r.hi, "method": r.method,
                   "noise_floor": floor, "noise_mean": fmean, "within_noise_floor": bool(r.value <= floor),
                   "r2": r.diagnostics.get("r2", np.nan), "resid_p": r.diagnostics.get("resid_p", np.nan),
                   "edf": r.diagnostics.get("edf", np.nan)}
            if k > 1 and g != ALL_GROUP:
                best = max(paths, key=lambda p: single(p).value)
                m = single(best)
                tol = Z95 * math.hypot(r.se if np.isfinite(r.se) else 0.0, m.se if np.isfinite(m.se) else 0.0)
                row.update(max_member=best, max_member_evppi=m.value, group_ge_member=bool(r.value >= m.value - tol))
            rows.append(row)
    out = pd.DataFrame(rows)
    for c, v in (("max_member", ""), ("max_member_evppi", np.nan), ("group_ge_member", np.nan)):
        if c not in out:
            out[c] = v
    out["evppi_population"] = out["evppi"] * population
    return out


def population_factor(incidence: float, horizon_years: float, discount: float) -> float:
    """Discounted number of people who benefit from the decision,
    ``P = sum_{t=0}^{H-1} I / (1 + r)^t`` for ``I`` new patients a year over a decision horizon of
    ``H`` years (a fractional last year counts in proportion) at discount rate ``r`` (Philips,
    Claxton & Palmer, Med Decis Making 2008;28:287-299, on the horizon of research decisions)."""
    full = int(math.floor(horizon_years))
    t = np.arange(full)
    p = float(np.sum(incidence / (1 + discount) ** t))
    return p + (horizon_years - full) * incidence / (1 + discount) ** full


def convergence_voi(C: np.ndarray, Q: np.ndarray, strategies: list[str], wtp: float, steps: int = 50) -> pd.DataFrame:
    """Convergence of the CEAC and the EVPI with the number of samples, at ``wtp``: one row per
    (``n_samples``, ``measure``, ``strategy``) with ``value``, ``se``, ``lo``, ``hi``.
    ``measure = "p_ce"``: share of the first ``n`` samples in which ``strategy`` has the highest
    NB (binomial SE ``sqrt(p (1 - p) / n)``); ``measure = "evpi"``: the EVPI of the first ``n``
    samples with its Monte Carlo SE (:func:`voi.evpi_se`)."""
    S = len(C)
    ns = np.unique(np.linspace(2, S, min(steps, S - 1)).round().astype(int))
    nb = wtp * Q - C
    best = np.argmax(nb, axis=1)
    rows = []
    for n in ns:
        p = np.bincount(best[:n], minlength=len(strategies)) / n
        for d, name in enumerate(strategies):
            se = math.sqrt(p[d] * (1 - p[d]) / n)
            rows.append((int(n), "p_ce", name, wtp, float(p[d]), se, max(p[d] - Z95 * se, 0.0),
                         min(p[d] + Z95 * se, 1.0)))
        e = voi.evpi_se(nb[:n])
        rows.append((int(n), "evpi", "", wtp, e.value, e.se, e.lo, e.hi))
    return pd.DataFrame(rows, columns=["n_samples", "measure", "strategy", "wtp", "value", "se", "lo", "hi"])


def decision_thresholds(C: np.ndarray, Q: np.ndarray, strategies: list[str], wtps: Iterable[float],
                        population: float = math.nan) -> pd.DataFrame:
    """The price at which the decision changes: per WTP and strategy ``d``, the change in the
    expected discounted cost per patient of ``d`` at which the strategy with the highest expected
    NMB changes, ``premium_d = E[NB_d] - max_{e != d} E[NB_e]`` (NB is linear in cost, so the
    decision between ``d`` and the best alternative turns exactly there). Positive: ``d`` is
    optimal and could cost up to this much more per patient (a price rise by this amount per
    patient treated on the pathway) and stay so; negative: ``d`` needs its cost per patient cut by
    ``-premium_d`` to become optimal. Also the WTP grid's switch points are in ``ceaf``.
    ``premium_population`` multiplies by the population."""
    rows = []
    for w in wtps:
        m = (w * Q - C).mean(axis=0)
        for d, name in enumerate(strategies):
            others = np.delete(m, d)
            e = int(np.delete(np.arange(len(m)), d)[int(np.argmax(others))]) if len(others) else d
            prem = float(m[d] - m[e]) if len(others) else math.inf
            rows.append({"wtp": float(w), "strategy": name, "expected_nmb": float(m[d]),
                         "best_alternative": strategies[e], "optimal": bool(prem >= 0), "premium": prem,
                         "premium_population": prem * population})
    return pd.DataFrame(rows)


def analyse(samples: pd.DataFrame, strategies: list[str], st, groups: Mapping[str, list[str]],
            labels: Mapping | None = None, seed: int = 0, all_parameters: list[str] | None = None
            ) -> dict[str, pd.DataFrame]:
    """All PSA result tables from the per-(sample, strategy) rows (schemas: ``docs/outputs_psa.md``).

    ``st`` is a :class:`sim.uncertainty.psa.PsaSettings`. Tables: ``psa_summary``,
    ``psa_full_incremental`` (full incremental analysis of the expected costs and QALYs),
    ``psa_incremental`` (vs ``st.comparator``), ``ce_plane``, ``ceac`` and ``ceaf`` (on the WTP
    grid plus the report WTPs, with the population EVPI), ``evppi`` (EVPI, EVPPI per group and,
    with ``all_parameters``, of all parameters jointly, at the report WTPs, with noise floors and
    checks), ``convergence`` (running mean INB of ``st.intervention`` vs ``st.comparator`` at
    ``st.primary_wtp``), ``convergence_voi`` (CEAC and EVPI against the number of samples),
    ``decision_thresholds`` and, when the samples carry their within-sample moments,
    ``psa_mc_variance`` (:func:`sim.uncertainty.mc_variance.mc_variance_table`).
    """
    C, Q = matrices(samples, strategies, "cost"), matrices(samples, strategies, "qaly")
    i, j = strategies.index(st.intervention), strategies.index(st.comparator)
    inb = st.primary_wtp * (Q[:, i] - Q[:, j]) - (C[:, i] - C[:, j])
    conv = voi.convergence(inb)
    conv.insert(0, "wtp", st.primary_wtp)
    conv.insert(0, "comparison", f"{st.intervention} vs {st.comparator}")
    grid = np.union1d(st.wtp_grid, np.asarray(st.report_wtp + (st.primary_wtp,), float))
    population = getattr(st, "population", math.nan)
    ceaf = voi.ce_frontier(C, Q, grid, strategies)
    ceaf["evpi_population"] = ceaf["evpi"] * population
    out = {
        "psa_summary": summary_table(samples, strategies, labels),
        "psa_full_incremental": full_incremental(samples, strategies, st.report_wtp),
        "psa_incremental": incremental_table(samples, strategies, st.comparator, st.report_wtp),
        "ce_plane": ce_plane(samples, strategies, st.comparator),
        "ceac": voi.ceac(C, Q, grid, strategies),
        "ceaf": ceaf,
        "evppi": evppi_table(samples, strategies, groups, st.report_wtp, st.evppi_method, st.n_boot, seed,
                             all_parameters, getattr(st, "noise_replicates", 20), population),
        "convergence": conv,
        "convergence_voi": convergence_voi(C, Q, strategies, st.primary_wtp),
        "decision_thresholds": decision_thresholds(C, Q, strategies, st.report_wtp, population),
    }
    if f"cov_cost__{st.comparator}" in samples.columns:
        out["psa_mc_variance"] = mc_variance.mc_variance_table(
            samples, strategies, st.comparator, sorted(set(st.report_wtp) | {st.primary_wtp}),
            getattr(st, "target_share", 0.05))
    return out


def _money(v) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:,.0f}"


def format_psa(tables: Mapping[str, pd.DataFrame], wtps: Iterable[float] | None = None,
               currency: str | None = None) -> str:
    """Console summary: full incremental analysis of the expected values, each strategy vs the
    comparator, CEAC and CEAF at the report WTPs (those of the ``evppi`` table unless ``wtps``
    is given), EVPI / EVPPI per person. ``currency`` defaults to that of ``psa_summary``."""
    summ = tables.get("psa_summary")
    if currency is None:
        currency = str(summ["currency"].iloc[0]) if summ is not None and "currency" in summ and len(summ) else ""
    cur = f" {currency}" if currency else ""
    ev = tables["evppi"]
    wtps = sorted(set(ev["wtp"])) if wtps is None else list(wtps)
    out = []
    full = tables.get("psa_full_incremental")
    if full is not None and len(full):
        t = pd.DataFrame({"strategy": full["strategy"], "status": full["status"],
                          f"cost{cur}": [f"{_money(m)} ± {_money(s)}" for m, s in zip(full["cost"], full["cost_se"])],
                          "QALYs": [f"{m:.3f} ± {s:.3f}" for m, s in zip(full["effect"], full["effect_se"])],
                          "vs": full["comparator"].fillna("-"), f"ICER{cur}/QALY": [_money(v) for v in full["icer"]]})
        out.append("Full incremental analysis of the expected values (discounted; mean ± Monte Carlo SE over PSA "
                   "samples):\n" + t.to_string(index=False))
    inc = tables["psa_incremental"]
    t = pd.DataFrame({"strategy": inc["strategy"], "vs": inc["comparator"],
                      f"dCost{cur}": [_money(v) for v in inc["delta_cost"]],
                      "dQALY": [f"{v:.3f}" for v in inc["delta_qaly"]], "status": inc["status"]})
    for w in wtps:
        if f"inmb_{w:.0f}" in inc:
            t[f"INMB@{w:,.0f}"] = [_money(v) for v in inc[f"inmb_{w:.0f}"]]
            t[f"P(CE)@{w:,.0f}"] = [f"{v:.3f}" for v in inc[f"p_ce_{w:.0f}"]]
    out.append("\nEach strategy vs the comparator (means over PSA samples; INMB = incremental net monetary "
               "benefit; P(CE) = share of samples with a positive INMB):\n" + t.to_string(index=False))
    ce = tables["ceac"]
    order = list(dict.fromkeys(ce["strategy"]))
    ce = ce[ce["wtp"].isin(wtps)].pivot(index="wtp", columns="strategy", values="probability")[order]
    ce.index = [f"{w:,.0f}" for w in ce.index]
    ce.index.name = f"WTP{cur}/QALY"
    out.append("\nCEAC (probability that each strategy has the highest net monetary benefit):\n"
               + ce.to_string(float_format=lambda v: f"{v:.3f}"))
    f = tables["ceaf"]
    f = f[f["wtp"].isin(wtps)]
    f = pd.DataFrame({f"WTP{cur}/QALY": [f"{w:,.0f}" for w in f["wtp"]], "optimal": f["optimal_strategy"],
                      f"expected NMB{cur}": [_money(v) for v in f["expected_nmb"]],
                      "P(cost-effective)": [f"{v:.3f}" for v in f["probability_cost_effective"]]})
    out.append("\nCEAF (strategy with the highest expected NMB):\n" + f.to_string(index=False))
    e = pd.DataFrame({f"WTP{cur}/QALY": [f"{w:,.0f}" for w in ev["wtp"]], "group": ev["group"],
                      f"per person{cur}": [_money(v) for v in ev["evppi"]],
                      "95 % interval": [f"{_money(lo)} to {_money(hi)}" for lo, hi in zip(ev["lo"], ev["hi"])],
                      "noise floor": [_money(v) for v in ev.get("noise_floor", pd.Series(np.nan, ev.index))],
                      "group >= member": [("yes" if v else "NO") if isinstance(v, (bool, np.bool_)) else "-"
                                          for v in ev.get("group_ge_member", pd.Series(np.nan, ev.index))],
                      "method": ev["method"]})
    out.append("\nEVPI / EVPPI per person (interval: Monte Carlo for EVPI, bootstrap with posterior draws for EVPPI; "
               "noise floor: EVPPI of as many dummy noise parameters, 95 % quantile):\n" + e.to_string(index=False))
    mv = tables.get("psa_mc_variance")
    if mv is not None and len(mv):
        out.append("\nMonte Carlo share of the variance of INB across samples (ANOVA, O'Hagan et al. 2007):\n"
                   + pd.DataFrame({"strategy": mv["strategy"], "vs": mv["comparator"],
                                   f"WTP{cur}/QALY": [f"{w:,.0f}" for w in mv["wtp"]],
                                   "MC share": [f"{v:.1%}" for v in mv["mc_share"]],
                                   "patients": [f"{v:,.0f}" for v in mv["n_patients"]],
                                   "patients for target": [f"{v:,.0f}" if np.isfinite(v) else "-"
                                                           for v in mv["n_for_target"]]}).to_string(index=False))
    if len(ev) and np.allclose(ev["evppi"].to_numpy(float), 0.0):
        out.append("(EVPI = 0: the same strategy has the highest net benefit in every PSA sample, so no parameter "
                   "information could change the decision.)")
    return "\n".join(out)
