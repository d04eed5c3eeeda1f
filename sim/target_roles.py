"""In-sample or out-of-sample: which validation targets the model was built from.

A validation target (an evidence id named in a trial design's ``published`` block) is
``in_sample`` when its figure went into the model, through any of

* a fit specification: any evidence id named in ``configs/fit/*.yaml`` (the PFS and AE fits
  of ``pnetsim-fit``; ``checks`` entries included, so the rule errs towards in-sample);
* a config source: an ``evidence:<id>`` or ``derived:<expression>`` entry of any ``sources``
  mapping in ``configs/**/*.yaml`` (cohort, model, therapy, strategy and trial files; the ids
  of a derived expression are the evidence ids it names);
* the overall-survival calibration: the published median OS of the trials of
  :data:`sim.calibration.TRIALS` (read from their ``configs/trial/<key>.yaml``).

Every other target is ``out_of_sample``. The roles are derived from those files each time
the validation runs, so they cannot drift from what the fits and configs use. Free-text
design notes in a ``sources`` mapping (e.g. "n of <id> (101)") and the rationale column of
``data/evidence/assumptions.csv`` are not references: they do not put a number into the model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd
import yaml

from sim.evidence import load_evidence

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "configs"
#: trials whose arms' median OS are the targets of the OS calibration (:data:`sim.calibration.TRIALS`)
CALIBRATION_TRIALS = ("radiant3", "sun1111", "e2211")
IN_SAMPLE, OUT_OF_SAMPLE = "in_sample", "out_of_sample"
_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _strings(node) -> Iterable[str]:
    """Every string value (not key) of a YAML tree."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            yield from _strings(v)


def _sources_blocks(node) -> Iterable[Mapping]:
    """Every mapping stored under a key ``sources`` at any depth of a YAML tree."""
    if isinstance(node, Mapping):
        for k, v in node.items():
            if k == "sources" and isinstance(v, Mapping):
                yield v
            else:
                yield from _sources_blocks(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            yield from _sources_blocks(v)


def _load(path: Path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def fit_references(config_dir: Path, known: set[str]) -> dict[str, set[str]]:
    """``{evidence id: {fit file}}`` for every known evidence id named in ``<config_dir>/fit/*.yaml``.

    Parameters
    ----------
    config_dir : Path
        The ``configs`` folder.
    known : set of str
        Evidence ids of ``data/evidence/evidence.csv``.

    Returns
    -------
    dict
        Evidence id -> set of repository-relative fit file names.
    """
    out: dict[str, set[str]] = {}
    for path in sorted((config_dir / "fit").glob("*.yaml")):
        for s in _strings(_load(path)):
            for tok in _TOKEN.findall(s):
                if tok in known:
                    out.setdefault(tok, set()).add(_rel(path, config_dir.parent))
    return out


def source_references(config_dir: Path, known: set[str]) -> dict[str, set[str]]:
    """``{evidence id: {config file}}`` from the ``evidence:`` / ``derived:`` entries of every ``sources`` mapping.

    Parameters
    ----------
    config_dir : Path
        The ``configs`` folder (searched recursively, ``fit/`` included).
    known : set of str
        Evidence ids of ``data/evidence/evidence.csv``.

    Returns
    -------
    dict
        Evidence id -> set of repository-relative config file names.
    """
    out: dict[str, set[str]] = {}
    for path in sorted(config_dir.rglob("*.yaml")):
        for block in _sources_blocks(_load(path)):
            for entry in _strings(block):
                kind, sep, rest = entry.strip().partition(":")
                if not sep or kind.strip() not in ("evidence", "derived"):
                    continue
                for tok in _TOKEN.findall(rest):
                    if tok in known:
                        out.setdefault(tok, set()).add(_rel(path, config_dir.parent))
    return out


def calibration_references(config_dir: Path, trials: Iterable[str] = CALIBRATION_TRIALS) -> set[str]:
    """Evidence ids of the published median OS of the calibration trials (their ``configs/trial`` files).

    Parameters
    ----------
    config_dir : Path
        The ``configs`` folder.
    trials : iterable of str
        Trial keys whose arms' median OS are calibration targets (default :data:`sim.calibration.TRIALS`).

    Returns
    -------
    set of str
    """
    ids = set()
    for key in trials:
        design = _load(config_dir / "trial" / f"{key}.yaml") or {}
        for metrics in (design.get("published") or {}).values():
            if "median_os" in (metrics or {}):
                ids.add(str(metrics["median_os"]))
    return ids


def in_sample_basis(config_dir: Path = CONFIG_DIR, calibration_trials: Iterable[str] = CALIBRATION_TRIALS,
                    known: set[str] | None = None) -> dict[str, list[str]]:
    """Every evidence id the model uses, with where it is used.

    Parameters
    ----------
    config_dir : Path, optional
        The ``configs`` folder (default: the repository's).
    calibration_trials : iterable of str, optional
        Trials whose median OS the calibration targets (default :data:`sim.calibration.TRIALS`).
    known : set of str, optional
        Known evidence ids (default: the ids of ``data/evidence/evidence.csv``).

    Returns
    -------
    dict
        Evidence id -> sorted list of uses (``fit:<file>``, ``source:<file>``, ``calibration:median_os``).
    """
    known = set(load_evidence()["id"]) if known is None else set(known)
    basis: dict[str, set[str]] = {}
    for eid, files in fit_references(config_dir, known).items():
        basis.setdefault(eid, set()).update(f"fit:{f}" for f in files)
    for eid, files in source_references(config_dir, known).items():
        basis.setdefault(eid, set()).update(f"source:{f}" for f in files)
    for eid in calibration_references(config_dir, calibration_trials):
        basis.setdefault(eid, set()).add("calibration:median_os")
    return {k: sorted(v) for k, v in basis.items()}


def target_roles(evidence_ids: Iterable[str], basis: Mapping[str, list[str]] | None = None) -> pd.DataFrame:
    """``target_role`` and ``role_basis`` of each target, in the order given.

    Parameters
    ----------
    evidence_ids : iterable of str
        The targets' evidence ids (column ``evidence_id`` of the validation table).
    basis : mapping, optional
        Output of :func:`in_sample_basis` (computed from the repository's files when omitted).

    Returns
    -------
    pandas.DataFrame
        Columns ``target_role`` (``in_sample`` / ``out_of_sample``) and ``role_basis`` (the uses
        joined by ``"; "``, empty when out of sample).
    """
    basis = in_sample_basis() if basis is None else basis
    ids = [str(e) for e in evidence_ids]
    return pd.DataFrame({"target_role": [IN_SAMPLE if e in basis else OUT_OF_SAMPLE for e in ids],
                         "role_basis": ["; ".join(basis.get(e, [])) for e in ids]})
