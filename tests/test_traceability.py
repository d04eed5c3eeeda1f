"""Every number in the cohort, model, therapy, resources and (choice-line) strategy configs is traced to evidence, an issue or a labelled assumption.

Each config has a ``sources:`` mapping from a dotted parameter path (list items by index,
e.g. ``ecog.0``, ``correlations.3.rho``) to one of

* ``evidence:<id>`` -- a row of ``data/evidence/evidence.csv``;
* ``derived:<expr>`` -- arithmetic (``+ - * /``, parentheses, literal numbers) over evidence ids
  (at least one) and, where a derivation needs one, assumption ids;
* ``assumption:<id>`` -- a row of ``data/evidence/assumptions.csv`` (value, sweep range, rationale);
* ``issue-N:<what>`` -- a figure stated in issue N;
* ``fit:<therapy>`` -- a fit made from the evidence table: the record of ``<therapy>`` in
  ``data/fits/pfs_fits.yaml`` (written by ``pnetsim-fit`` from ``configs/fit/pfs.yaml``).

Resolver rules (also in ``data/evidence/README.md``, section "Traceability of config numbers"):

1. Coverage: a numeric leaf (int/float, not bool, lists included) is covered by the ``sources``
   entry at its own path, else by the entry at its nearest parent path.
2. ``evidence:<id>``: the id exists and its ``value`` equals the leaf (rel. 1e-9), or -- time-point
   rule -- the leaf's key ends in ``months`` and the row's endpoint base ends in ``_<N>m`` / ``_<N>y``
   with N months (N x 12 for years) equal to the leaf (e.g. ``landmark_months: 12`` and
   ``pfs_rate_12m``).
3. ``derived:<expr>``: every identifier is an evidence id or an assumption id, at least one is an
   evidence id; the evaluated value matches the leaf to the leaf's printed precision (rounding the
   result to the printed decimals gives the leaf) or within relative 1e-3.
4. ``assumption:<id>``: an entry at the leaf's own path uses row ``<id>``; an entry at a parent path
   uses row ``<id>.<rest of the leaf's path>`` (e.g. ``cohort_age.mean``) and falls back to row
   ``<id>``. The row's value equals the leaf (rel. 1e-9); every row has low <= value <= high and is
   used by at least one leaf, derived expression or PSA / DSA range (``range: "assumption:<id>"``).
5. ``issue-N:<what>``: issue N is a source of the evidence table (``source == issue-N``) and the leaf
   value appears as a number in ``<what>`` (the issue text itself is not in the repository).
6. ``fit:<therapy>``: the fits file has a record for ``<therapy>`` whose ``pfs`` block holds the leaf
   (its path below the covering key, e.g. ``median``) with the same value (rel. 1e-9), and every
   source of that record (``sources``: ``evidence:<id>`` rows, ``assumption:<id>`` rows -- counted
   as used) resolves. That the record is a fresh fit of its sources is checked by
   ``pnetsim-fit --check`` (``tests/test_fitting_entry.py``).

``sunitinib_rechallenge.yaml`` interpolates sunitinib's ``pfs``/``response``/``covariate_hr``/
``adverse_events``; its leaves are resolved by composing the full hydra config.

Run ``python tests/test_traceability.py`` to print the count of traced leaves by kind.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
EVIDENCE = ROOT / "data" / "evidence" / "evidence.csv"
ASSUMPTIONS = ROOT / "data" / "evidence" / "assumptions.csv"
FITS = ROOT / "data" / "fits" / "pfs_fits.yaml"
ASSUMPTION_COLUMNS = ["id", "parameter", "value", "low", "high", "unit", "rationale"]
COMPOSED = {"therapy/sunitinib_rechallenge.yaml": "sunitinib_rechallenge"}
KINDS = ("evidence", "derived", "assumption", "issue", "fit")

_IDENT = re.compile(r"(?<![\w.])[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_TIMEPOINT = re.compile(r"_(\d+)(m|y)$")


# ---------------------------------------------------------------- loading

class PrintedFloat(float):
    """A float that remembers how it was written in the YAML file (for its printed precision)."""

    text: str

    def __new__(cls, value: float, text: str):
        obj = super().__new__(cls, value)
        obj.text = text
        return obj


class _Loader(yaml.SafeLoader):
    pass


def _construct_float(loader, node):
    return PrintedFloat(yaml.SafeLoader.construct_yaml_float(loader, node), node.value)


_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def config_files() -> list[str]:
    files = ["cohort/default.yaml", "model/default.yaml"]
    files += sorted(f"therapy/{p.name}" for p in (CONFIGS / "therapy").glob("*.yaml"))
    files += sorted(f"resources/{p.name}" for p in (CONFIGS / "resources").glob("*.yaml"))
    # strategies with clinical thresholds (choice lines) trace them in their own sources
    files += sorted(f"strategy/{p.name}" for p in (CONFIGS / "strategy").glob("*.yaml")
                    if "sources" in (yaml.safe_load(p.read_text()) or {}))
    return files


@lru_cache(maxsize=1)
def _composed_therapies() -> dict:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONFIGS.resolve()), version_base="1.3"):
        cfg = compose(config_name="config")
    return OmegaConf.to_container(cfg.therapies, resolve=True)


def load_config(rel: str) -> dict:
    if rel in COMPOSED:
        return _composed_therapies()[COMPOSED[rel]]
    with open(CONFIGS / rel) as fh:
        return yaml.load(fh, Loader=_Loader)


@lru_cache(maxsize=1)
def evidence() -> pd.DataFrame:
    from sim.evidence import load_evidence

    return load_evidence(EVIDENCE)


@lru_cache(maxsize=1)
def assumptions() -> pd.DataFrame:
    table = pd.read_csv(ASSUMPTIONS, dtype=str, keep_default_na=False)
    return table


@lru_cache(maxsize=1)
def fits() -> dict:
    return yaml.safe_load(FITS.read_text()) or {}


def _assumption_values() -> dict[str, float]:
    return {r.id: float(r.value) for r in assumptions().itertuples()}


def _evidence_values() -> dict[str, float]:
    return dict(zip(evidence()["id"], evidence()["value"]))


# ---------------------------------------------------------------- walking

def numeric_leaves(node, path: tuple = ()):
    """Yield (dotted path, value) for every int/float leaf (not bool), lists by index."""
    if isinstance(node, dict):
        for k, v in node.items():
            if not path and k == "sources":
                continue
            yield from numeric_leaves(v, path + (str(k),))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from numeric_leaves(v, path + (str(i),))
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield ".".join(path), node


def path_exists(node, dotted: str) -> bool:
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def covering_key(sources: dict, path: str) -> str | None:
    parts = path.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in sources:
            return key
    return None


def printed_decimals(value) -> int | None:
    text = getattr(value, "text", None) or repr(value)
    if "e" in text.lower() or "inf" in text.lower() or "nan" in text.lower():
        return None
    return len(text.split(".", 1)[1]) if "." in text else 0


def _same(a: float, b: float) -> bool:
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)


# ---------------------------------------------------------------- resolving

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _eval(node) -> float:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.left), _eval(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return -_eval(node.operand) if isinstance(node.op, ast.USub) else _eval(node.operand)
    raise ValueError(f"unsupported element {ast.dump(node)}")


def evaluate_derived(expr: str) -> tuple[float, list[str], list[str]]:
    """Value of a derived expression and the evidence / assumption ids it uses."""
    ev, asm = _evidence_values(), _assumption_values()
    used_ev, used_asm, unknown = [], [], []

    def repl(m):
        name = m.group(0)
        if name in ev:
            used_ev.append(name)
            return f"({ev[name]!r})"
        if name in asm:
            used_asm.append(name)
            return f"({asm[name]!r})"
        unknown.append(name)
        return "0"

    text = _IDENT.sub(repl, expr)
    if unknown:
        raise KeyError(f"unknown id(s) {unknown} (neither evidence nor assumption)")
    if not used_ev:
        raise KeyError("uses no evidence id (a derivation from assumptions only is an assumption)")
    return _eval(ast.parse(text, mode="eval")), used_ev, used_asm


@dataclass
class Trace:
    file: str
    path: str
    value: float
    key: str | None = None
    entry: str | None = None
    kind: str | None = None
    error: str | None = None
    assumption_ids: list[str] = field(default_factory=list)

    def describe(self) -> str:
        where = f"configs/{self.file}: {self.path} = {self.value!r}"
        via = f" (sources[{self.key!r}] = {self.entry!r})" if self.key else ""
        return f"{where}{via}: {self.error}"


def resolve(file: str, path: str, value, sources: dict) -> Trace:
    t = Trace(file, path, value)
    key = covering_key(sources, path)
    if key is None:
        t.error = "no sources entry at this path or a parent path"
        return t
    t.key, t.entry = key, str(sources[key])
    kind, sep, ref = t.entry.partition(":")
    ref = ref.strip()
    if not sep or not ref:
        t.error = "sources entry is not '<kind>:<reference>'"
        return t
    if re.fullmatch(r"issue-\d+", kind):
        t.kind = "issue"
        if kind not in set(evidence()["source"]):
            t.error = f"{kind} is not a source of any evidence row"
        elif not any(_same(float(x), value) for x in _NUMBER.findall(ref)):
            t.error = f"value does not appear in the issue reference {ref!r}"
        return t
    t.kind = kind
    if kind == "evidence":
        rows = evidence().loc[evidence()["id"] == ref]
        if rows.empty:
            t.error = f"evidence id {ref!r} not in {EVIDENCE.name}"
            return t
        row = rows.iloc[0]
        if _same(row["value"], value):
            return t
        m = _TIMEPOINT.search(str(row["endpoint"]).split(":", 1)[0])
        if m and path.split(".")[-1].endswith("months"):
            months = int(m.group(1)) * (12 if m.group(2) == "y" else 1)
            if _same(months, value):
                return t
        t.error = f"evidence {ref!r} has value {float(row['value'])!r} (endpoint {row['endpoint']!r})"
    elif kind == "derived":
        try:
            got, _, used_asm = evaluate_derived(ref)
        except (KeyError, ValueError, SyntaxError, ZeroDivisionError) as exc:
            t.error = f"derived expression does not evaluate: {exc}"
            return t
        t.assumption_ids = used_asm
        d = printed_decimals(value)
        ok = math.isclose(got, float(value), rel_tol=1e-3, abs_tol=1e-12)
        if not ok and d is not None:
            ok = abs(got - float(value)) <= 0.5 * 10.0 ** (-d) * (1 + 1e-9)
        if not ok:
            t.error = f"derived expression evaluates to {got!r}, not the printed value to {d} decimals or rel. 1e-3"
    elif kind == "assumption":
        table = assumptions()
        candidates = [ref] if key == path else [f"{ref}.{path[len(key) + 1:]}", ref]
        for cand in candidates:
            rows = table.loc[table["id"] == cand]
            if not rows.empty:
                t.assumption_ids = [cand]
                row_value = float(rows.iloc[0]["value"])
                if not _same(row_value, value):
                    t.error = f"assumption {cand!r} has value {row_value!r}"
                return t
        t.error = f"no assumption row {' or '.join(repr(c) for c in candidates)} in {ASSUMPTIONS.name}"
    elif kind == "fit":
        record = fits().get(ref)
        if record is None:
            t.error = f"no fit {ref!r} in {FITS.name}"
            return t
        rest = path[len(key) + 1:] if path != key else ""
        block = record.get("pfs") or {}
        if rest not in block or not isinstance(block[rest], (int, float)):
            t.error = f"fit {ref!r} has no pfs.{rest or '<leaf>'} (pfs block {block!r})"
            return t
        if not _same(block[rest], value):
            t.error = f"fit {ref!r} has pfs.{rest} = {block[rest]!r}"
            return t
        bad = []
        chain, seen = dict(record.get("sources") or {}), {ref}
        reference = (record.get("fit") or {}).get("reference")
        while reference and reference not in seen:  # a treated arm's curve is also its reference's
            seen.add(reference)
            rec = fits().get(reference) or {}
            if not rec:
                bad.append(f"reference fit {reference!r} missing")
            chain |= {f"{reference}.{k}": v for k, v in (rec.get("sources") or {}).items()}
            reference = (rec.get("fit") or {}).get("reference")
        for what, src in chain.items():
            skind, _, sref = str(src).partition(":")
            if skind == "evidence" and sref not in set(evidence()["id"]):
                bad.append(f"{what}: evidence id {sref!r} not in {EVIDENCE.name}")
            elif skind == "assumption":
                if sref not in set(assumptions()["id"]):
                    bad.append(f"{what}: no assumption row {sref!r}")
                else:
                    t.assumption_ids.append(sref)
            elif skind not in ("evidence", "assumption"):
                bad.append(f"{what}: source {src!r} is neither evidence nor assumption")
        if not record.get("sources"):
            bad.append("the fit lists no sources")
        if bad:
            t.error = f"fit {ref!r}: " + "; ".join(bad)
    else:
        t.error = f"unknown kind {kind!r} (expected one of {list(KINDS)} or issue-N)"
    return t


@lru_cache(maxsize=1)
def trace_all() -> dict[str, list[Trace]]:
    out = {}
    for rel in config_files():
        cfg = load_config(rel)
        sources = dict(cfg.get("sources") or {})
        out[rel] = [resolve(rel, p, v, sources) for p, v in numeric_leaves(cfg)]
    return out


# ---------------------------------------------------------------- tests

@pytest.mark.parametrize("rel", config_files())
def test_every_number_is_traced(rel):
    bad = [t.describe() for t in trace_all()[rel] if t.error]
    assert not bad, f"{len(bad)} untraced number(s) in configs/{rel}:\n  " + "\n  ".join(bad)


@pytest.mark.parametrize("rel", config_files())
def test_sources_keys_name_config_paths(rel):
    cfg = load_config(rel)
    sources = dict(cfg.get("sources") or {})
    stale = [f"configs/{rel}: sources[{k!r}] = {v!r}: no such parameter path" for k, v in sources.items()
             if not path_exists(cfg, k)]
    assert not stale, "\n".join(stale)


def test_assumptions_table_well_formed():
    table = assumptions()
    assert list(table.columns) == ASSUMPTION_COLUMNS, f"{ASSUMPTIONS}: columns {list(table.columns)}"
    dup = table["id"][table["id"].duplicated()].tolist()
    assert not dup, f"{ASSUMPTIONS}: duplicate ids {dup}"
    problems = []
    for r in table.itertuples():
        try:
            value, low, high = float(r.value), float(r.low), float(r.high)
        except ValueError:
            problems.append(f"{r.id}: value/low/high must be numbers ({r.value!r}, {r.low!r}, {r.high!r})")
            continue
        if not low <= value <= high:
            problems.append(f"{r.id}: needs low <= value <= high, got {low} <= {value} <= {high}")
        for col in ("parameter", "unit", "rationale"):
            if not getattr(r, col).strip():
                problems.append(f"{r.id}: empty {col}")
        if r.id in set(evidence()["id"]):
            problems.append(f"{r.id}: also an evidence id (ambiguous in derived expressions)")
    assert not problems, f"{ASSUMPTIONS}:\n  " + "\n  ".join(problems)


def _sensitivity_range_ids() -> set[str]:
    """Assumption ids named by the PSA / DSA parameter entries (``range: "assumption:<id>"`` or in a
    ``source``)."""
    ids = set()
    for path in list((CONFIGS / "psa").glob("*.yaml")) + list((CONFIGS / "experiment").glob("*.yaml")):
        ids |= {i.rstrip(".") for i in re.findall(r"assumption:([A-Za-z0-9_.]+)", path.read_text())}
    return ids


def test_assumptions_named_by_sensitivity_analyses_exist():
    """Every ``assumption:<id>`` of the PSA / DSA configs is a row of assumptions.csv (range and rationale)."""
    missing = sorted(_sensitivity_range_ids() - set(assumptions()["id"]))
    assert not missing, f"configs/psa, configs/experiment name assumptions missing from {ASSUMPTIONS.name}: {missing}"


def test_every_assumption_is_used():
    """Every assumption row is used by a config number, a derivation or a PSA / DSA range."""
    used = {a for traces in trace_all().values() for t in traces for a in t.assumption_ids}
    used |= _sensitivity_range_ids()
    unused = sorted(set(assumptions()["id"]) - used)
    assert not unused, f"{ASSUMPTIONS}: rows used by no config number: {unused}"


def test_fit_sources_must_match_the_fits_file():
    """A ``fit:`` source traces a leaf only when the fit record holds that value."""
    record = fits()["sunitinib"]["pfs"]
    ok = resolve("therapy/x.yaml", "pfs.median", record["median"], {"pfs": "fit:sunitinib"})
    assert ok.error is None and "pfs_shape_exponential" in ok.assumption_ids
    wrong = resolve("therapy/x.yaml", "pfs.median", record["median"] * 1.01, {"pfs": "fit:sunitinib"})
    assert "has pfs.median" in wrong.error
    missing = resolve("therapy/x.yaml", "pfs.median", 1.0, {"pfs": "fit:no_such_therapy"})
    assert "no fit" in missing.error


def test_rechallenge_inherits_sunitinib():
    """The composed rechallenge therapy really carries sunitinib's efficacy and toxicity."""
    composed = _composed_therapies()
    for part in ("pfs", "response", "covariate_hr", "adverse_events"):
        assert composed["sunitinib_rechallenge"][part] == composed["sunitinib"][part], part


def counts() -> Counter:
    return Counter(t.kind for traces in trace_all().values() for t in traces if not t.error)


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(ROOT))
    total = Counter()
    for rel, traces in trace_all().items():
        c = Counter(t.kind for t in traces if not t.error)
        total += c
        print(f"{rel:40s} leaves={len(traces):3d} " + " ".join(f"{k}={c.get(k, 0)}" for k in KINDS)
              + f" untraced={sum(1 for t in traces if t.error)}")
    print(f"{'TOTAL':40s} leaves={sum(total.values()):3d} " + " ".join(f"{k}={total.get(k, 0)}" for k in KINDS))
