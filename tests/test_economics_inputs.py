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
])
def test_bad_economic_input_is_a_user_error_naming_key_and_value(path, value, key):
    """Negative prices, utilities > 1, rates outside [0, 1), empty WTP lists ... name the key and the value."""
    with pytest.raises(UserError) as exc:
        EconomicsSpec.from_config(_with(path, value))
    msg = str(exc.value)
    assert key in msg and repr(value if not isinstance(value, dict) else value)[:3] in msg, msg
    assert "\n" not in msg


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
