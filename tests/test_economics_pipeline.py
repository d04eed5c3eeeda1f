"""The default experiment writes the economics tables and prints them (sim.pipeline.run)."""

from __future__ import annotations

import pandas as pd
import pytest

from sim.economics.incremental import FRONTIER
from sim.errors import UserError
from sim.pipeline import run


def _compose(overrides):
    from hydra import compose, initialize_config_dir

    from sim.economics.spec import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR.parent), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.fixture(scope="module")
def compare_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    cfg = _compose(["cohort.n=60", f"output.root={root}", "output.figures=false", "output.progress=false"])
    return run(cfg)


def test_compare_run_writes_economics_tables(compare_run):
    """economics_summary, incremental (CSV + Parquet) and per-patient economics are in the run folder."""
    folder, _ = compare_run
    for name in ("economics_summary", "incremental", "economics_differences"):
        assert (folder / f"{name}.csv").is_file() and (folder / f"{name}.parquet").is_file()
    per = pd.read_parquet(folder / "economics_patients.parquet")
    summ = pd.read_parquet(folder / "economics_summary.parquet")
    inc = pd.read_parquet(folder / "incremental.parquet")
    assert len(pd.read_csv(folder / "economics_summary.csv")) == len(pd.read_csv(folder / "incremental.csv")) == 3
    assert list(summ["strategy"]) == ["captem_then_rechallenge", "rechallenge_then_captem", "switch"]
    assert len(per) == 3 * 60
    for m in ("cost_total_disc", "qaly_disc", "ly_disc", "cost_drug", "qaly"):
        assert {m, f"{m}_se"} <= set(summ.columns)
    # the category costs add up to the total; discounting lowers every positive outcome
    cats = [f"cost_{c}_disc" for c in ("drug", "administration", "monitoring", "ae", "bsc", "end_of_life")]
    assert summ[cats].sum(axis=1).to_numpy() == pytest.approx(summ["cost_total_disc"].to_numpy(), rel=1e-12)
    assert (summ["qaly_disc"] < summ["qaly"]).all() and (summ["cost_total_disc"] < summ["cost_total"]).all()
    assert (inc["status"] == FRONTIER).any()
    assert {"nmb_20000", "nmb_30000", "nhb_20000", "best_30000", "inc_cost_se"} <= set(inc.columns)
    diff = pd.read_parquet(folder / "economics_differences.parquet").set_index("strategy")
    s = summ.set_index("strategy")
    assert diff.loc["switch", "qaly_disc"] == pytest.approx(s.loc["switch", "qaly_disc"]
                                                            - s.loc["captem_then_rechallenge", "qaly_disc"], rel=1e-9)
    assert summ.set_index("strategy")["cost_total_disc"].to_dict() == pytest.approx(
        inc.set_index("strategy")["cost"].to_dict(), rel=1e-12)


def test_compare_run_writes_every_table_as_csv_and_parquet_and_an_economics_report(tmp_path_factory):
    """The default experiment writes summary, differences and the economic inputs as CSV and Parquet, and a
    report with methods, costs by category, the incremental analysis and Kaplan-Meier figures."""
    root = tmp_path_factory.mktemp("compare_report")
    folder, _ = run(_compose(["cohort.n=40", f"output.root={root}", "output.figures=true", "output.progress=false"]))
    for name in ("summary", "differences", "economics_summary", "incremental", "economics_differences",
                 "economics_inputs"):
        assert len(pd.read_csv(folder / f"{name}.csv")) == len(pd.read_parquet(folder / f"{name}.parquet")) > 0, name
    md = (folder / "report.md").read_text()
    html = (folder / "report.html").read_text()
    for needle in ("Perspective", "UK NHS and personal social services", "lifetime", "GBP, 2016 prices",
                   "Economic inputs", "drugs.sunitinib.cost_per_month", "costs by category",
                   "full incremental analysis", "](km_overview.png)", "CHEERS 2022"):
        assert needle in md and (needle in html or needle.startswith("](")), needle


def test_printed_text_has_the_economics_table(compare_run):
    """The text printed by ``pnetsim`` includes the costs / QALYs table and the incremental analysis."""
    _, text = compare_run
    assert "Costs and QALYs per patient (discounted; GBP, 2016 prices" in text
    assert "Full incremental analysis" in text and "NMB at 30,000 per QALY (GBP)" in text


def test_bad_economics_fails_before_simulating(tmp_path):
    """A bad economic input stops the run with a UserError and leaves no run folder."""
    cfg = _compose(["cohort.n=10", f"output.root={tmp_path}", "economics.discount.costs=1.5"])
    with pytest.raises(UserError, match=r"economics.discount.costs .*1.5"):
        run(cfg)
    assert not any(tmp_path.rglob("manifest.json"))
