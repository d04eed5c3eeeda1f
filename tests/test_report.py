"""Reports (sim.report.html, sim.report.econ_figures): a tiny PSA run writes its report and
tables; compare and DSA reports from hand-made tables; bad kind."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sim.uncertainty import psa
from sim.errors import UserError
from sim.report import econ_figures as ef
from sim.report.html import pretty, write_report
from tests.conftest import compose_config

PSA_TABLES = ["psa_summary", "psa_incremental", "ce_plane", "ceac", "ceaf", "evppi", "convergence", "psa_parameters"]


@pytest.fixture(scope="module")
def tiny_psa(tmp_path_factory):
    """A PSA of 3 samples x 16 patients x 2 strategies, figures on, written under a tmp root."""
    root = tmp_path_factory.mktemp("runs")
    cfg = compose_config(["experiment=psa", "cohort.n=16", "experiment.strategies=[switch,rechallenge]",
                          "experiment.reference=switch", "psa.intervention=rechallenge", "psa.comparator=switch",
                          "psa.samples=3", "psa.workers=1", "psa.evppi.n_boot=20", "output.figures=true",
                          "output.progress=false", f"output.root={root}",
                          "psa.evppi.groups={rechallenge_efficacy:[therapies.sunitinib_rechallenge.rechallenge.*],"
                          "utilities:[economics.utilities.*]}"])
    return psa.run_psa(cfg)


def test_tiny_psa_writes_tables_figures_report_and_manifest(tiny_psa):
    """Every PSA table as CSV and Parquet (same rows), the four figures, report.html / report.md
    and a manifest naming the kind and the number of samples."""
    folder, tables = tiny_psa
    for name in PSA_TABLES:
        csv, pq = pd.read_csv(folder / f"{name}.csv"), pd.read_parquet(folder / f"{name}.parquet")
        assert len(csv) == len(pq) == len(tables[name]) > 0, name
        assert list(csv.columns) == list(tables[name].columns)
    samples = pd.read_parquet(folder / "psa_samples.parquet")
    assert len(samples) == 3 * 2 and set(samples["sample"]) == {0, 1, 2}
    for fig in ("ce_plane", "ceac", "evppi", "convergence"):
        assert (folder / f"{fig}.png").stat().st_size > 1000
    man = json.loads((folder / "manifest.json").read_text())
    assert man["kind"] == "psa" and man["n_samples"] == 3 and man["config"]["psa"]["samples"] == 3


def test_psa_report_html_and_md_hold_the_same_tables(tiny_psa):
    """report.html (figures embedded) and report.md (figures linked) both contain the methods, the
    incremental table, the EVPI row and the CHEERS checklist."""
    folder, tables = tiny_psa
    html, md = (folder / "report.html").read_text(), (folder / "report.md").read_text()
    for text in (html, md):
        for needle in ("Methods", "Perspective", "Discount rates", "3.5 % a year", "GBP, 2016 prices",
                       "CHEERS 2022", "ALL (EVPI)", "rechallenge_efficacy", "Provenance", "psa_incremental",
                       "Uncertain parameters"):
            assert needle in text, needle
    # PSA figures (CE plane, CEAC, EVPPI, convergence, convergence of CEAC / EVPI, EVPI curve; no EVPPI diagnostics
    # when every EVPPI is 0 by dominance) + KM of the deterministic base case
    n_diag = int((folder / "evppi_diagnostics.png").exists())
    assert html.count("data:image/png;base64,") == 6 + n_diag + 3
    assert "](ce_plane.png)" in md and "](ceac.png)" in md
    for needle in ("Deterministic base case", "Probabilistic results", "Expected discounted costs by category",
                   "Full incremental analysis of the expected costs and QALYs", "Economic inputs",
                   "all parameters (EVPPI)"):
        assert needle in md and needle in html, needle
    assert "](km_overview.png)" in md
    d = tables["psa_incremental"]["delta_cost"].iloc[0]
    assert f"{d:,.0f}" in md and f"{d:,.0f}" in html


def test_format_psa_prints_ceac_and_evpi(tiny_psa):
    """The console text of a PSA has the incremental table, the CEAC at the report WTPs and EVPI."""
    _, tables = tiny_psa
    text = psa.format_psa(tables)
    assert "CEAC" in text and "ALL (EVPI)" in text and "rechallenge" in text and "20,000" in text
    assert "Full incremental analysis" in text and "GBP" in text


def _compare_tables():
    summary = pd.DataFrame({"strategy": ["a", "b"], "n_patients": [10, 10], "median_os_months": [30.0, 35.0],
                            "median_os_months_lo": [25.0, 30.0], "median_os_months_hi": [36.0, 40.0]})
    econ = pd.DataFrame({"strategy": ["a", "b"], "label": ["A", "B"], "n_patients": [10, 10],
                         "cost_total_disc": [10000.0, 25000.0], "cost_total_disc_se": [500.0, 800.0],
                         "qaly_disc": [2.0, 2.5], "qaly_disc_se": [0.1, 0.1]})
    inc = pd.DataFrame({"strategy": ["a", "b"], "status": ["frontier", "frontier"], "cost": [10000.0, 25000.0],
                        "effect": [2.0, 2.5], "comparator": [None, "a"], "inc_cost": [np.nan, 15000.0],
                        "inc_effect": [np.nan, 0.5], "icer": [np.nan, 30000.0], "nmb_20000": [30000.0, 25000.0],
                        "nmb_20000_se": [1.0, 2.0], "best_20000": [True, False]})
    return {"summary": summary, "differences": summary.iloc[:0], "economics_summary": econ, "incremental": inc,
            "extra_table": pd.DataFrame({"k": [1]})}


def test_compare_report_from_tables_combines_estimates_and_intervals(tmp_path):
    """A compare report shows ``x (lo to hi)`` and ``x ± se`` cells, the ICER, KM figures given,
    and unknown tables under "Other tables"; provenance is collected without a manifest."""
    plain = compose_config(["cohort.n=10"])
    from sim.config import to_container
    plain = to_container(plain)
    fig = ef.convergence(pd.DataFrame({"n_samples": [2, 3], "mean_inb": [1.0, 2.0], "lo": [0.0, 1.0],
                                       "hi": [2.0, 3.0]}), tmp_path / "km_overview.png")
    h, m = write_report(tmp_path, "compare", plain, _compare_tables(), {"km_overview": fig}, {"a": "A", "b": "B"})
    md = m.read_text()
    assert "30.0 (25.0 to 36.0)" in md and "25,000 ± 800" in md and "30,000" in md
    assert "Other tables" in md and "extra table" in md
    assert "](km_overview.png)" in md and "data:image/png;base64," in h.read_text()
    assert "Git revision" in md


def test_tornado_accepts_the_dsa_columns_and_the_brief_aliases(tmp_path):
    """tornado(table, path) draws from the DSA table columns (low/high/inb_base) and from the
    aliases low_value/high_value/base_inb."""
    t = pd.DataFrame({"parameter": ["p", "q"], "low": [0.1, 1.0], "high": [0.9, 2.0], "inb_low": [-100.0, 50.0],
                      "inb_high": [300.0, 80.0], "inb_base": [60.0, 60.0]})
    assert ef.tornado(t, tmp_path / "a.png").stat().st_size > 1000
    alias = t.rename(columns={"low": "low_value", "high": "high_value", "inb_base": "base_inb"})
    assert ef.tornado(alias, tmp_path / "b.png", wtp=30000).stat().st_size > 1000
    with pytest.raises(UserError, match="inb_low"):
        ef.tornado(t.drop(columns="inb_low"), tmp_path / "c.png")


def test_dsa_report_lists_scenarios_and_tornado(tmp_path):
    """A DSA report holds the scenario table, the tornado table and the tornado figure."""
    from sim.config import to_container
    plain = to_container(compose_config(["experiment=dsa", "cohort.n=10"]))
    tor = pd.DataFrame({"parameter": ["p"], "base_value": [0.5], "low": [0.1], "high": [0.9], "inb_low": [-100.0],
                        "inb_high": [300.0], "swing": [400.0], "inb_base": [60.0], "source": ["assumption:x"]})
    sc = pd.DataFrame({"scenario": ["base_case"], "description": ["base case"], "intervention": ["rechallenge"],
                       "comparator": ["switch"], "wtp": [30000.0], "delta_cost": [100.0], "delta_cost_se": [5.0],
                       "delta_qaly": [0.01], "delta_qaly_se": [0.001], "icer": [10000.0], "quadrant": ["NE"],
                       "inb": [200.0], "inb_se": [10.0]})
    fig = ef.tornado(tor, tmp_path / "tornado.png")
    _, m = write_report(tmp_path, "dsa", plain, {"tornado": tor, "scenarios": sc}, {"tornado": fig}, {})
    md = m.read_text()
    assert "base_case" in md and "assumption:x" in md and "](tornado.png)" in md and "100 ± 5" in md


def test_unknown_report_kind_is_a_user_error(tmp_path):
    """write_report with an unknown kind raises a UserError naming experiment.kind."""
    with pytest.raises(UserError, match="experiment.kind"):
        write_report(tmp_path, "nosuch", {}, {}, {}, {})


def test_pretty_drops_interval_columns_into_the_estimate():
    """pretty() merges x/x_lo/x_hi and x/x_se and formats missing values as '-'."""
    t = pd.DataFrame({"x": [1.5], "x_lo": [1.0], "x_hi": [2.0], "y": [1234.5], "y_se": [10.0], "z": [np.nan]})
    p = pretty(t)
    assert list(p.columns) == ["x", "y", "z"]
    assert p.iloc[0].tolist() == ["1.50 (1.00 to 2.00)", "1,234 ± 10", "-"]


def test_one_significant_digits_rule_for_estimates_and_their_intervals():
    """Estimates show 3 significant digits (whole numbers from 100 up, with separators); an interval or
    SE takes the estimate's decimals, so ``0.468 (0.4505 to 0.4855)`` cannot appear."""
    from sim.report.html import fmt

    t = pd.DataFrame({"x": [0.468], "x_lo": [0.4505], "x_hi": [0.4856], "c": [123456.7], "c_se": [1234.5],
                      "m": [24.83], "m_lo": [22.1], "m_hi": [25.64]})
    row = pretty(t).iloc[0].tolist()
    assert row == ["0.468 (0.451 to 0.486)", "123,457 ± 1,234", "24.8 (22.1 to 25.6)"]
    assert fmt(0.000123456) == "0.000123" and fmt(-0.0004, 0) == "0"


def test_dominance_is_named_by_the_strategy_that_dominates():
    """A dominated strategy reads ``dominated by <the cheapest strategy at least as effective>``; an
    extendedly dominated one names the two frontier strategies around it."""
    from sim.report.labels import dominance_text

    inc = pd.DataFrame({"strategy": ["a", "b", "c", "d"], "cost": [100.0, 150.0, 200.0, 400.0],
                        "effect": [1.0, 0.9, 1.2, 2.0],
                        "status": ["frontier", "dominated", "extendedly dominated", "frontier"]})
    assert dominance_text(inc, {"a": "A: x -> y"}) == ["frontier", "dominated by A", "extendedly dominated by A and d",
                                                       "frontier"]
