"""Economic inputs: bad values are user errors naming the key and the value; every number of
``configs/economics/*.yaml`` is traced to evidence or to a labelled assumption with a range."""

from __future__ import annotations

import ast
import copy
import math
import operator
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sim.economics import EconomicsSpec, load_spec
from sim.errors import UserError
from sim.evidence import load_evidence

ROOT = Path(__file__).resolve().parents[1]
ECON = ROOT / "configs" / "economics"


def _with(path: str, value):
    cfg = copy.deepcopy(dict(load_spec("uk_nhs").config))
    node = cfg
    *head, last = path.split(".")
    for p in head:
        node = node[p]
    node[last] = value
    return cfg


@pytest.mark.parametrize("path, value, key", [
    ("drugs.everolimus.pack_price", -1.0, "economics.drugs.everolimus.pack_price"),
    ("drugs.lu177_dotatate.price_per_administration", -5.0, "economics.drugs.lu177_dotatate.price_per_administration"),
    ("monitoring.scan", -350.0, "economics.monitoring.scan"),
    ("utilities.sets.swinburn2012.progression_free", 1.2, "economics.utilities.sets.swinburn2012.progression_free"),
    ("utilities.ae_disutility.stomatitis", 1.5, "economics.utilities.ae_disutility.stomatitis"),
    ("discount.costs", 1.0, "economics.discount.costs"),
    ("discount.effects", -0.01, "economics.discount.effects"),
    ("wtp", [], "economics.wtp"),
    ("wtp_grid", [], "economics.wtp_grid"),
    ("wtp_grid", {"start": 10, "stop": 0, "step": 1}, "economics.wtp_grid"),
    ("utilities.set", "nonexistent", "economics.utilities.set"),
    ("horizon_years", 0, "economics.horizon_years"),
    ("utilities.sets.swinburn2012.ae_states.stomatitis", 0.9, "economics.utilities.sets.swinburn2012.ae_states.stomatitis"),
    ("utilities.sets.swinburn2012.ae_states.stomatitis", 1.5, "economics.utilities.sets.swinburn2012.ae_states.stomatitis"),
    ("adverse_events.neutropenia", -1.0, "economics.adverse_events.neutropenia"),
    ("bsc_per_month", -600.0, "economics.bsc_per_month"),
])
def test_bad_economic_input_is_a_user_error_naming_key_and_value(path, value, key):
    """Negative prices, utilities > 1, rates outside [0, 1), empty WTP lists ... name the key and the value."""
    with pytest.raises(UserError) as exc:
        EconomicsSpec.from_config(_with(path, value))
    msg = str(exc.value)
    assert key in msg and repr(value if not isinstance(value, dict) else value)[:3] in msg, msg
    assert "\n" not in msg


def test_unknown_key_in_a_utility_set_is_a_user_error():
    """A misspelt state in a utility set (``progresion_free``) is named, not ignored."""
    with pytest.raises(UserError, match=r"economics.utilities.sets.meng2017 .*progresion_free"):
        EconomicsSpec.from_config(_with("utilities.sets.meng2017.progresion_free", 0.7))


def test_nice_ta449_list_prices_and_monthly_drug_costs():
    """TA449 list prices as stated in issue 4 and the monthly costs they imply at full dose:
    everolimus 2,673 / 30 x 10 mg (one tablet a day), sunitinib 784.70 / 28 x 12.5 mg at 37.5 mg a day."""
    from sim.economics.inputs import inputs_table
    from sim.units import DAYS_PER_MONTH

    spec = load_spec("uk_nhs")
    ev, su = spec.config["drugs"]["everolimus"], spec.config["drugs"]["sunitinib"]
    assert (ev["pack_price"], ev["pack_size"], ev["unit_mg"], ev["daily_dose_mg"]) == (2673.0, 30, 10.0, 10.0)
    assert (su["pack_price"], su["pack_size"], su["unit_mg"], su["daily_dose_mg"]) == (784.70, 28, 12.5, 37.5)
    assert spec.drugs["everolimus"].cost_per_month == pytest.approx(2673 / 30 * DAYS_PER_MONTH, rel=1e-12)
    assert spec.drugs["sunitinib"].cost_per_month == pytest.approx(784.70 / 28 * 3 * DAYS_PER_MONTH, rel=1e-12)
    t = inputs_table(spec.config).set_index("parameter")
    assert t.loc["drugs.sunitinib.cost_per_month", "value"] == pytest.approx(spec.drugs["sunitinib"].cost_per_month)
    assert t.loc["drugs.everolimus.pack_price", "source"].startswith("evidence:nice_ta449_everolimus_pack_price (NICE")
    assert (spec.currency, spec.price_year) == ("GBP", 2016) and "NHS" in spec.perspective


def test_economic_inputs_table_gives_every_input_a_source_and_assumptions_a_range():
    """Every row of economics_inputs has a unit and a source; every assumption (other than policy choices) a range."""
    from sim.economics.inputs import inputs_table

    t = inputs_table(load_spec("uk_nhs").config)
    assert len(t) > 40 and (t["unit"] != "").all() and (t["source"] != "").all()
    assumed = t[t["source"].str.startswith("assumption:") & ~t["parameter"].str.startswith(("discount", "wtp"))]
    assert len(assumed) > 10 and assumed["low"].notna().all() and (assumed["low"] <= assumed["value"]).all() \
        and (assumed["value"] <= assumed["high"]).all()


@pytest.mark.parametrize("override, key", [
    ("economics.utilities.sets.swinburn2012.progression_free=1.2", "economics.utilities.sets.swinburn2012.progression_free"),
    ("economics.discount.effects=1.0", "economics.discount.effects"),
    ("economics.wtp=[]", "economics.wtp"),
])
def test_cli_rejects_bad_economics_with_one_line_naming_the_key(tmp_path, override, key):
    """A utility above 1, a discount rate of 100 % or an empty WTP list: exit 2, one stderr line with key and value."""
    r = subprocess.run([sys.executable, "-m", "experiments.run", override, f"output.root={tmp_path}", "cohort.n=10"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and key in lines[0] and override.split("=")[1] in lines[0], lines
    assert not any(tmp_path.rglob("manifest.json"))


def test_cli_rejects_an_empty_psa_wtp_grid(tmp_path):
    """``pnetsim experiment=psa psa.wtp_grid=[]``: exit 2 naming psa.wtp_grid, before any sample is simulated."""
    r = subprocess.run([sys.executable, "-m", "experiments.run", "experiment=psa", "psa.wtp_grid=[]",
                        f"output.root={tmp_path}", "cohort.n=10", "psa.samples=2"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "psa.wtp_grid" in lines[0] and "[]" in lines[0], lines
    assert not any(tmp_path.rglob("manifest.json"))


def test_therapy_without_drug_entry_is_a_user_error():
    """A therapy missing from economics.therapy_drugs is named when its costs are asked for."""
    with pytest.raises(UserError, match=r"economics.therapy_drugs .*'temozolomide'"):
        load_spec("uk_nhs").drug_for("temozolomide")


def test_cli_rejects_negative_price_with_one_line_and_no_run_folder(tmp_path):
    """``pnetsim economics.drugs.sunitinib.pack_price=-1``: exit 2, one stderr line naming the key, no folder."""
    r = subprocess.run([sys.executable, "-m", "experiments.run", "economics.drugs.sunitinib.pack_price=-1",
                        f"output.root={tmp_path}", "cohort.n=10"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "economics.drugs.sunitinib.pack_price" in lines[0] and "-1" in lines[0]
    assert not any(tmp_path.rglob("manifest.json"))


# --------------------------------------------------------------------------- traceability
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _leaves(node, prefix=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, f"{prefix}.{i}")
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield prefix, float(node)


def _source_of(sources: dict, path: str):
    parts = path.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in sources:
            return key, sources[key]
    return None, None


def _eval(expr: str, ev: dict) -> float:
    def go(n):
        if isinstance(n, ast.BinOp):
            return _OPS[type(n.op)](go(n.left), go(n.right))
        if isinstance(n, ast.Constant):
            return float(n.value)
        if isinstance(n, ast.Name):
            return ev[n.id]
        raise AssertionError(f"unsupported {ast.dump(n)}")
    return go(ast.parse(expr, mode="eval").body)


@pytest.mark.parametrize("config", sorted(p.name for p in ECON.glob("*.yaml")))
def test_every_economic_number_is_traced(config):
    """Each number (outside sources / ranges) has a source: an evidence row with that value, a
    derivation from evidence rows, or an assumption with a range (low <= value <= high) and a rationale."""
    cfg = yaml.safe_load((ECON / config).read_text())
    sources, ranges = cfg.get("sources") or {}, cfg.get("ranges") or {}
    ev = load_evidence().set_index("id")["value"].astype(float).to_dict()
    body = {k: v for k, v in cfg.items() if k not in ("sources", "ranges")}
    n = 0
    for path, value in _leaves(body):
        if path.startswith(("wtp_grid", "price_year")):
            continue                                    # output grid and price-year label, not model inputs
        key, src = _source_of(sources, path)
        assert src is not None, f"{config}: {path} = {value} has no source"
        kind, _, ref = src.partition(":")
        if kind == "evidence":
            assert ref in ev, f"{path}: evidence id {ref} not in evidence.csv"
            assert math.isclose(ev[ref], value, rel_tol=1e-9), f"{path} = {value} but {ref} = {ev[ref]}"
        elif kind == "derived":
            assert math.isclose(_eval(ref, ev), value, rel_tol=1e-3), f"{path} = {value} but {ref} = {_eval(ref, ev)}"
        elif kind == "assumption":
            if path.startswith(("wtp", "discount", "horizon")):
                continue                                # policy choices (NICE reference case), scenarios in the DSA
            r = ranges.get(path)
            assert r is not None, f"{config}: assumed {path} = {value} ({src}) has no range in ranges:"
            assert r["low"] <= value <= r["high"] and r.get("why"), f"{path}: range {r} must hold {value} with a why"
        else:
            raise AssertionError(f"{path}: unknown source kind {src!r}")
        n += 1
    assert n > 30
    for key in sources:
        assert _source_of({key: 1}, key)[0] is not None
