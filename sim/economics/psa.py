"""Probabilistic sensitivity analysis (PSA): parameter uncertainty propagated through the
simulation, one PSA sample at a time.

For sample ``s``: draw the parameter overrides (:mod:`sim.economics.params`, named streams
``"psa/<path>"`` at sample ``s``), set them in the composed config *before* interpolations
are resolved, build the model, simulate every strategy with the sample's own random streams
(common random numbers across strategies within the sample; see :func:`simulate_sample`),
evaluate costs and QALYs, and keep only the per-strategy means plus the parameter values:
one row per (sample, strategy). Memory therefore does not grow with the number of samples
beyond these rows. Sample ``s`` depends only on (master seed, ``s``), not on how many
samples are run, in which order, in which block or worker.

The cohort is the base-case cohort (generated from the master seed) in every sample:
PSA varies parameters and the patients' event streams, not who the patients are.

Outputs of :func:`analyse`: per-strategy summary with 95 % intervals, incremental results
against the comparator, CE-plane points, CEAC, CEAF with EVPI by WTP, EVPPI by parameter
group at the report WTPs, convergence of the mean incremental net benefit.
"""

from __future__ import annotations

import inspect
import math
import os
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from sim.economics import voi
from sim.economics.params import ParamSet, apply_overrides, build_paramset, expand_groups
from sim.errors import UserError, check

SAMPLE_COLUMNS = ["sample", "strategy", "cost", "qaly", "ly", "cost_undiscounted", "qaly_undiscounted",
                  "ly_undiscounted"]
Evaluator = Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame, object], pd.DataFrame]


# --------------------------------------------------------------------------- config
@dataclass(frozen=True)
class PsaSettings:
    """``psa`` config group, validated."""

    samples: int
    first_sample: int
    intervention: str
    comparator: str
    wtp_grid: np.ndarray
    report_wtp: tuple[float, ...]
    primary_wtp: float
    groups: Mapping[str, list]
    evppi_method: str
    n_boot: int
    workers: int
    chunk_size: int
    progress: object


def _int(key, v, lo):
    check(isinstance(v, int) and not isinstance(v, bool) and v >= lo, key, v, f"must be a whole number >= {lo}")
    return v


def psa_settings(plain: Mapping, spec=None) -> PsaSettings:
    """Validate ``psa.*`` of the plain config (WTPs default to the economics spec's)."""
    p = plain.get("psa")
    check(isinstance(p, Mapping), "psa", p, "must be a config group (add `experiment=psa`)")
    exp = plain.get("experiment") or {}
    strategies = list(exp.get("strategies") or [])
    inter = p.get("intervention", "rechallenge")
    comp = p.get("comparator", exp.get("reference"))
    check(inter in strategies, "psa.intervention", inter, f"must be one of the compared strategies {strategies}")
    check(comp in strategies, "psa.comparator", comp, f"must be one of the compared strategies {strategies}")
    check(inter != comp, "psa.intervention", inter, "must differ from psa.comparator")
    if p.get("wtp_grid") is not None:
        from sim.economics.spec import _grid
        grid = _grid(p["wtp_grid"])
    else:
        grid = np.asarray(spec.wtp_grid if spec is not None else np.arange(0, 100001, 1000), float)
    rw = p.get("report_wtp")
    rw = list(spec.wtp) if (rw is None and spec is not None) else list(rw or [20000, 30000])
    for w in rw:
        check(isinstance(w, (int, float)) and w >= 0, "psa.report_wtp", rw, "must be numbers >= 0")
    prim = p.get("primary_wtp", max(rw))
    check(isinstance(prim, (int, float)) and prim >= 0, "psa.primary_wtp", prim, "must be a number >= 0")
    ev = p.get("evppi") or {}
    method = ev.get("method", "auto")
    check(method in ("auto", "gam", "gp"), "psa.evppi.method", method, "must be one of ['auto', 'gam', 'gp']")
    workers = p.get("workers", 1)
    if workers == "auto":
        workers = max(1, min(os.cpu_count() or 1, 8))
    progress = (plain.get("output") or {}).get("progress", "auto")
    return PsaSettings(
        samples=_int("psa.samples", p.get("samples", 100), 2),
        first_sample=_int("psa.first_sample", p.get("first_sample", 0), 0),
        intervention=inter, comparator=comp, wtp_grid=grid, report_wtp=tuple(float(w) for w in rw),
        primary_wtp=float(prim), groups=dict(ev.get("groups") or {}), evppi_method=method,
        n_boot=_int("psa.evppi.n_boot", ev.get("n_boot", 500), 0),
        workers=_int("psa.workers", workers, 1),
        chunk_size=_int("chunk_size", plain.get("chunk_size", 500), 1),
        progress=progress,
    )


def with_economics(cfg):
    """The DictConfig with an ``economics`` group (``configs/economics/uk_nhs.yaml`` merged in
    when the composed config has none)."""
    from omegaconf import DictConfig, OmegaConf, open_dict

    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.create(cfg)
    if "economics" in cfg and cfg.economics is not None:
        return cfg
    from sim.economics.spec import CONFIG_DIR
    name = OmegaConf.select(cfg, "psa.economics", default="uk_nhs") or "uk_nhs"
    path = CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"psa.economics config not found: {path}")
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    with open_dict(cfg):
        cfg.economics = OmegaConf.load(path)
    return cfg


# --------------------------------------------------------------------------- evaluation
def economics_spec(plain: Mapping):
    from sim.economics.spec import EconomicsSpec
    return EconomicsSpec.from_config(plain["economics"])


def default_evaluator(patients, lines, events, spec) -> pd.DataFrame:
    """Per-strategy mean costs, QALYs and LYs (discounted and undiscounted) via
    :func:`sim.economics.evaluate.evaluate` and :func:`~sim.economics.evaluate.summarise`."""
    try:
        from sim.economics.evaluate import evaluate, summarise
    except ImportError as exc:  # pragma: no cover - until sim.economics.evaluate lands
        raise UserError(f"economics evaluation is not available ({exc})") from None
    per = evaluate(patients, lines, events, spec)
    return means_from_per_patient(per)


def _pick(df: pd.DataFrame, *names):
    for n in names:
        if n in df.columns:
            return df[n]
    raise UserError(f"economics output lacks any of the columns {list(names)}; has {list(df.columns)}")


def means_from_per_patient(per: pd.DataFrame) -> pd.DataFrame:
    """Per-strategy means of the per-patient economics table (column names of
    :mod:`sim.economics.evaluate`, with fallbacks)."""
    cols = {
        "cost": ("cost_total", "total_cost", "cost", "costs_total_discounted", "cost_total_disc"),
        "qaly": ("qaly", "qalys", "qaly_discounted", "qalys_discounted", "qaly_disc"),
        "ly": ("ly", "lys", "ly_discounted", "lys_discounted", "ly_disc"),
        "cost_undiscounted": ("cost_total_undiscounted", "total_cost_undiscounted", "cost_undiscounted",
                              "costs_total_undiscounted", "cost_total_undisc"),
        "qaly_undiscounted": ("qaly_undiscounted", "qalys_undiscounted", "qaly_undisc"),
        "ly_undiscounted": ("ly_undiscounted", "lys_undiscounted", "ly_undisc"),
    }
    out = pd.DataFrame({"strategy": per["strategy"].astype(str).to_numpy()})
    for k, names in cols.items():
        out[k] = _pick(per, *names).to_numpy(float)
    return out.groupby("strategy", sort=False).mean().reset_index()


# --------------------------------------------------------------------------- one sample
def sample_seed(master_seed: int, s: int) -> int:
    """Master seed of the simulation streams of PSA sample ``s`` when the engine has no
    ``sample`` argument (a SeedSequence child keyed by ("psa-sample", s))."""
    ss = np.random.SeedSequence(int(master_seed), spawn_key=(zlib.crc32(b"psa-sample"), int(s)))
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def simulate_sample(model, s: int, chunk_size: int):
    """(patients, lines, events) of ``model`` with the random streams of PSA sample ``s``.

    Uses ``simulate(..., sample=s)`` when the engine supports it (streams keyed by
    (master seed, name, sample)), else the master seed :func:`sample_seed` ``(seed, s)``;
    either way every strategy meets the same streams (common random numbers)."""
    from sim.engine import simulate

    if "sample" in inspect.signature(simulate).parameters:
        rec = simulate(model.cohort, model.strategies, model.therapies, model.rules, model.lifetable, model.seed,
                       chunk_size=chunk_size, sample=s)
    else:
        rec = simulate(model.cohort, model.strategies, model.therapies, model.rules, model.lifetable,
                       sample_seed(model.seed, s), chunk_size=chunk_size)
    patients, lines, events = rec.frames()
    patients = patients.merge(model.cohort, on="patient_id", how="left")
    return patients, lines, events


def stream_mode() -> str:
    from sim.engine import simulate
    return "engine-sample" if "sample" in inspect.signature(simulate).parameters else "derived-seed"


class SampleRunner:
    """Runs PSA samples of one configuration (picklable: used in worker processes)."""

    def __init__(self, cfg, paramset: ParamSet, chunk_size: int, evaluator: Evaluator | None = None):
        from sim.config import build_model, to_container

        self.cfg = cfg
        self.paramset = paramset
        self.chunk_size = chunk_size
        self.evaluator = evaluator or default_evaluator
        self._cohort = build_model(cfg).cohort
        self._plain = to_container(cfg)

    def run(self, s: int) -> pd.DataFrame:
        """Rows (one per strategy) of sample ``s``: means and parameter values."""
        from sim.config import build_model, to_container

        ov = self.paramset.draw(s)
        cfg_s = apply_overrides(self.cfg, ov)
        model = replace(build_model(cfg_s), cohort=self._cohort)
        spec = economics_spec(to_container(cfg_s))
        patients, lines, events = simulate_sample(model, s, self.chunk_size)
        m = self.evaluator(patients, lines, events, spec)
        del patients, lines, events
        m = m.set_index("strategy").reindex(list(model.strategies)).reset_index()
        m.insert(0, "sample", s)
        for p, v in ov.items():
            m[p] = v
        return m


def _worker_run(args):
    runner, samples = args
    return [runner.run(s) for s in samples]


def run_samples(cfg, paramset: ParamSet, samples: Iterable[int], chunk_size: int = 500,
                evaluator: Evaluator | None = None, workers: int = 1, progress=None) -> pd.DataFrame:
    """One row per (sample, strategy) for the PSA samples ``samples`` (see module doc).

    ``workers > 1`` runs samples in worker processes; the rows are the same. ``progress`` is
    an optional callable receiving the number of samples just finished.
    """
    samples = list(samples)
    runner = SampleRunner(cfg, paramset, chunk_size, evaluator)
    out = []
    if workers <= 1 or len(samples) <= 1:
        for s in samples:
            out.append(runner.run(s))
            if progress:
                progress(1)
    else:
        blocks = [samples[i:i + 1] for i in range(len(samples))]
        with ProcessPoolExecutor(max_workers=workers) as ex:
            for rows in ex.map(_worker_run, [(runner, b) for b in blocks]):
                out.extend(rows)
                if progress:
                    progress(len(rows))
    if not out:
        return pd.DataFrame(columns=SAMPLE_COLUMNS + paramset.paths)
    df = pd.concat(out, ignore_index=True)
    return df[SAMPLE_COLUMNS + paramset.paths]


# --------------------------------------------------------------------------- analysis
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
    """Per strategy: mean cost / QALY / LY over samples with 2.5 / 97.5 % percentiles."""
    rows = []
    for s in strategies:
        d = samples[samples["strategy"] == s]
        row = {"strategy": s, "label": (labels or {}).get(s, s), "n_samples": len(d)}
        for c in ("cost", "qaly", "ly", "cost_undiscounted", "qaly_undiscounted", "ly_undiscounted"):
            x = d[c].to_numpy(float)
            row[c] = x.mean()
            row[f"{c}_lo"], row[f"{c}_hi"] = np.quantile(x, [0.025, 0.975])
        rows.append(row)
    return pd.DataFrame(rows)


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
        row = {"strategy": s, "comparator": comparator, "delta_cost": mc,
               "delta_cost_lo": np.quantile(dc, 0.025), "delta_cost_hi": np.quantile(dc, 0.975),
               "delta_qaly": mq, "delta_qaly_lo": np.quantile(dq, 0.025), "delta_qaly_hi": np.quantile(dq, 0.975),
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
                wtps: Iterable[float], method: str = "auto", n_boot: int = 500, seed: int = 0) -> pd.DataFrame:
    """EVPPI per parameter group and WTP (per person; NB units), with EVPI alongside."""
    C, Q = matrices(samples, strategies, "cost"), matrices(samples, strategies, "qaly")
    rows = []
    for w in wtps:
        nb = w * Q - C
        e = voi.evpi_se(nb)
        rows.append({"wtp": w, "group": "ALL (EVPI)", "parameters": "", "n_parameters": np.nan,
                     "evppi": e.value, "se": e.se, "lo": e.lo, "hi": e.hi, "method": "definition"})
        for g, paths in groups.items():
            x = param_matrix(samples, paths)
            r = voi.evppi(nb, x, method=method, n_boot=n_boot, seed=seed)
            rows.append({"wtp": w, "group": g, "parameters": ";".join(paths), "n_parameters": len(paths),
                         "evppi": r.value, "se": r.se, "lo": r.lo, "hi": r.hi, "method": r.method})
    return pd.DataFrame(rows)


def analyse(samples: pd.DataFrame, strategies: list[str], st: PsaSettings, groups: Mapping[str, list[str]],
            labels: Mapping | None = None, seed: int = 0) -> dict[str, pd.DataFrame]:
    """All PSA result tables from the per-(sample, strategy) rows."""
    C, Q = matrices(samples, strategies, "cost"), matrices(samples, strategies, "qaly")
    i, j = strategies.index(st.intervention), strategies.index(st.comparator)
    inb = st.primary_wtp * (Q[:, i] - Q[:, j]) - (C[:, i] - C[:, j])
    conv = voi.convergence(inb)
    conv.insert(0, "wtp", st.primary_wtp)
    conv.insert(0, "comparison", f"{st.intervention} vs {st.comparator}")
    return {
        "psa_summary": summary_table(samples, strategies, labels),
        "psa_incremental": incremental_table(samples, strategies, st.comparator, st.report_wtp),
        "ce_plane": ce_plane(samples, strategies, st.comparator),
        "ceac": voi.ceac(C, Q, st.wtp_grid, strategies),
        "ceaf": voi.ce_frontier(C, Q, st.wtp_grid, strategies),
        "evppi": evppi_table(samples, strategies, groups, st.report_wtp, st.evppi_method, st.n_boot, seed),
        "convergence": conv,
    }


# --------------------------------------------------------------------------- the run
def run_psa(cfg, job: int | None = None, evaluator: Evaluator | None = None) -> tuple[Path, dict]:
    """The PSA experiment: sample, simulate, analyse, write the run folder (atomic) with
    ``psa_samples.parquet``, result tables (CSV + Parquet), figures, report and manifest.
    Returns (folder, tables)."""
    from sim.config import build_model, to_container
    from sim.runio import atomic_run_dir, progress_bar, run_folder_name, write_manifest

    t0 = time.perf_counter()
    cfg = with_economics(cfg)
    plain = to_container(cfg)
    model = build_model(cfg)  # validates the base case
    spec = economics_spec(plain)
    st = psa_settings(plain, spec)
    paramset = build_paramset(plain, (plain["psa"] or {}).get("parameters") or {}, model.seed)
    groups = expand_groups(st.groups, paramset.paths)
    strategies = list(model.strategies)
    labels = {s: v.label for s, v in model.strategies.items()}
    t1 = time.perf_counter()
    samples_ids = range(st.first_sample, st.first_sample + st.samples)
    bar = progress_bar(st.progress, st.samples, "PSA samples")
    bar.unit = "sample"
    with bar:
        samples = run_samples(cfg, paramset, samples_ids, st.chunk_size, evaluator, st.workers, bar.update)
    t2 = time.perf_counter()
    tables = analyse(samples, strategies, st, groups, labels, model.seed)
    tables["psa_parameters"] = paramset.table().assign(
        group=lambda d: d["path"].map({p: g for g, ps in groups.items() for p in ps}).fillna(""))
    t3 = time.perf_counter()
    final = run_folder_name(plain, job)
    with atomic_run_dir(final) as tmp:
        samples.to_parquet(tmp / "psa_samples.parquet", index=False)
        write_tables(tmp, tables)
        figs = {}
        if (plain.get("output") or {}).get("figures", True):
            from sim.report.html import psa_figures
            figs = psa_figures(tables, tmp, labels, st)
        timings = {"build": t1 - t0, "simulate": t2 - t1, "analyse": t3 - t1 - (t2 - t1), "total": time.perf_counter() - t0}
        extra = {"kind": "psa", "n_samples": st.samples, "n_patients": len(model.cohort), "strategies": strategies,
                 "psa_streams": stream_mode(), "evppi_groups": groups,
                 "samples_per_second": st.samples / max(t2 - t1, 1e-9)}
        write_manifest(tmp, plain, model.seed, timings, extra)
        from sim.report.html import write_report
        write_report(tmp, "psa", plain, tables, figs, labels)
    return final, tables


def write_tables(folder: Path, tables: Mapping[str, pd.DataFrame]) -> None:
    """Every table as ``<name>.csv`` and ``<name>.parquet``."""
    for name, t in tables.items():
        t.to_csv(Path(folder) / f"{name}.csv", index=False, float_format="%.6g")
        t.to_parquet(Path(folder) / f"{name}.parquet", index=False)


def format_psa(tables: Mapping[str, pd.DataFrame], st_wtp: Iterable[float] = (20000, 30000)) -> str:
    """Console summary: incremental table, CEAC at the report WTPs, EVPI/EVPPI."""
    out = []
    inc = tables["psa_incremental"]
    cols = ["strategy", "comparator", "delta_cost", "delta_qaly", "icer", "status"] + \
        [c for c in inc.columns if c.startswith(("inmb_", "p_ce_")) and not c.endswith(("_lo", "_hi", "_se"))]
    out.append(inc[cols].to_string(index=False, float_format=lambda v: f"{v:,.4g}"))
    ce = tables["ceac"]
    ce = ce[ce["wtp"].isin(list(st_wtp))].pivot(index="wtp", columns="strategy", values="probability")
    out.append("\nCEAC (probability cost-effective):\n" + ce.to_string(float_format=lambda v: f"{v:.3f}"))
    ev = tables["evppi"]
    out.append("\nEVPI / EVPPI per person:\n" + ev[["wtp", "group", "evppi", "se", "method"]].to_string(
        index=False, float_format=lambda v: f"{v:,.1f}"))
    return "\n".join(out)
