"""One comparison run: build the model, simulate every strategy, write the run folder."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from sim.config import Model, build_model, to_container
from sim.engine import simulate
from sim.outcomes import paired_differences, summarise
from sim.runio import atomic_run_dir, progress_bar, run_folder_name, write_manifest

SUMMARY_COLUMNS = ["strategy", "n_patients", "median_pfs1_months", "median_pfs2_months", "median_os_months",
                   "mean_os_months", "mean_time_on_treatment_months", "g34_ae_per_patient"]


def simulate_model(model: Model, chunk_size: int, progress="auto"):
    """Simulate and return (patients, lines, events) frames; patients carry baseline columns."""
    n = len(model.cohort)
    with progress_bar(progress, n, "simulating") as bar:
        rec = simulate(model.cohort, model.strategies, model.therapies, model.rules, model.lifetable,
                       model.seed, chunk_size=chunk_size, progress=bar.update)
    patients, lines, events = rec.frames()
    patients = patients.merge(model.cohort, on="patient_id", how="left")
    order = {s: i for i, s in enumerate(model.strategies)}
    patients = patients.sort_values(["strategy", "patient_id"], key=lambda c: c.map(order) if c.name == "strategy" else c)
    lines = lines[["patient_id", "strategy"] + [c for c in lines.columns if c not in ("patient_id", "strategy")]]
    lines = lines.sort_values(["strategy", "patient_id", "line"], key=lambda c: c.map(order) if c.name == "strategy" else c)
    events = events.sort_values(["strategy", "patient_id", "time"], kind="stable",
                                key=lambda c: c.map(order) if c.name == "strategy" else c)
    return (patients.reset_index(drop=True), lines.reset_index(drop=True), events.reset_index(drop=True))


def run_compare(cfg, job: int | None = None) -> tuple[Path, pd.DataFrame]:
    """The default experiment: compare strategies on one cohort. Returns (folder, summary)."""
    t0 = time.perf_counter()
    model = build_model(cfg)
    plain = to_container(cfg)
    chunk = plain.get("chunk_size", 500)
    if not (isinstance(chunk, int) and chunk >= 1):
        from sim.errors import UserError
        raise UserError(f"chunk_size must be a whole number >= 1, got {chunk!r}")
    t1 = time.perf_counter()
    patients, lines, events = simulate_model(model, chunk, plain["output"].get("progress", "auto"))
    t2 = time.perf_counter()
    labels = {s: st.label for s, st in model.strategies.items()}
    summary = summarise(patients, lines, labels)
    diffs = paired_differences(patients, model.reference, model.seed)
    final = run_folder_name(plain, job)
    with atomic_run_dir(final) as tmp:
        patients.to_parquet(tmp / "patients.parquet", index=False)
        lines.to_parquet(tmp / "lines.parquet", index=False)
        events.to_parquet(tmp / "events.parquet", index=False)
        summary.to_csv(tmp / "summary.csv", index=False, float_format="%.6g")
        diffs.to_csv(tmp / "differences.csv", index=False, float_format="%.6g")
        if plain["output"].get("figures", True):
            from sim.report.figures import km_figures
            km_figures(patients, lines, tmp, labels)
        t3 = time.perf_counter()
        write_manifest(tmp, plain, model.seed,
                       {"build": t1 - t0, "simulate": t2 - t1, "write": t3 - t2, "total": t3 - t0},
                       {"n_patients": len(model.cohort), "strategies": list(model.strategies),
                        "patients_per_second": len(model.cohort) * len(model.strategies) / max(t2 - t1, 1e-9)})
    return final, summary


def run(cfg, job: int | None = None) -> tuple[Path, str]:
    """Entry of ``experiment.kind=compare`` (see ``experiments/run.py``): run folder and printed table."""
    folder, summary = run_compare(cfg, job)
    return folder, format_summary(summary)


def format_summary(summary: pd.DataFrame) -> str:
    """Human-readable table: medians and means with 95 % CIs."""
    out = pd.DataFrame({"strategy": summary["strategy"], "n": summary["n_patients"]})
    for col in SUMMARY_COLUMNS[2:]:
        out[col.replace("_months", "")] = [f"{m:.1f} ({lo:.1f}-{hi:.1f})" for m, lo, hi in
                                           zip(summary[col], summary[f"{col}_lo"], summary[f"{col}_hi"])]
    return out.to_string(index=False)
