"""The keys a configuration may have, read from the shipped configs, and the check that refuses others.

Hydra refuses a misspelt key on the command line (``cohort.nn=500``) but accepts it with a ``+``
(``+cohort.nn=500``, the fix its own message suggests), and the key is then silently ignored. The
known keys of a group are the keys of the group's shipped files (``configs/<folder>/*.yaml``), so a
key added to a shipped file is known at once and this list never drifts from the configs;
:func:`check_keys` refuses anything else at the top level, in the ``output``, ``cohort``, ``model``,
``experiment``, ``economics`` and ``psa`` groups and at the first level of each therapy, strategy and
trial. ``docs/configuration.md`` is generated from the same files
(:func:`configuration_markdown`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import yaml

from sim.errors import check, mapping
from sim.patients.cohort import check_keys as check_cohort_keys
from sim.runio import check_output

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

#: top-level keys: run settings, then config groups (``psa`` and ``trials`` come with their experiments;
#: ``sweep`` names a resumable sweep, docs/sweeps.md)
TOP_LEVEL = ("seed", "engine", "chunk_size", "output", "cohort", "model", "economics", "therapies", "strategies",
             "experiment", "psa", "trials", "sweep", "resources")

#: group -> folder of configs/ whose files define its keys (mapping groups; first level checked)
FOLDERS = {"model": "model", "experiment": "experiment", "economics": "economics", "psa": "psa"}

#: groups of named entries (one file per entry) -> folder; each entry's first-level keys are checked
ENTRY_FOLDERS = {"therapies": "therapy", "strategies": "strategy", "trials": "trial"}

#: strategy rules read by :class:`sim.strategies.Strategy` that no shipped strategy sets
OPTIONAL_RULES = ("uptake",)


#: LibYAML's parser where PyYAML has it (the same safe constructor and resolver, parsed in C)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load(path: Path) -> dict:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER) or {}
    return data if isinstance(data, dict) else {}


def _package_global(path: Path) -> bool:
    head = path.read_text(encoding="utf-8").splitlines()[:1]
    return bool(head) and "@package _global_" in head[0]


@lru_cache(maxsize=None)
def known_keys(group: str) -> frozenset[str]:
    """First-level keys of ``group`` in any shipped file of its folder (a ``_global_`` package file
    contributes its ``<group>:`` block)."""
    keys: set[str] = set()
    for path in sorted((CONFIGS / FOLDERS[group]).glob("*.yaml")):
        data = _load(path)
        block = data.get(group) if _package_global(path) else data
        if isinstance(block, Mapping):
            keys.update(str(k) for k in block if k != "defaults")
    return frozenset(keys)


@lru_cache(maxsize=None)
def entry_keys(folder: str, block: str | None = None) -> frozenset[str]:
    """First-level keys of the shipped entries of ``configs/<folder>/`` (or of their ``block``)."""
    keys: set[str] = set()
    for path in sorted((CONFIGS / folder).glob("*.yaml")):
        data = _load(path)
        if block is not None:
            data = data.get(block) or {}
        if isinstance(data, Mapping):
            keys.update(str(k) for k in data if k != "defaults")
    return frozenset(keys)


def _check_entries(plain: Mapping) -> None:
    for group, folder in ENTRY_FOLDERS.items():
        if not isinstance(plain.get(group), Mapping):
            continue
        known = entry_keys(folder)
        for name, entry in plain[group].items():
            if not isinstance(entry, Mapping):
                continue                      # the group's own validator names a wrongly typed entry
            for k, v in entry.items():
                check(k in known, f"{group}.{name}.{k}", v, f"is not a configuration key (known keys of a "
                                                           f"{folder}: {', '.join(sorted(known))})")
            if group == "strategies" and isinstance(entry.get("rules"), Mapping):
                rules = entry_keys(folder, "rules") | set(OPTIONAL_RULES)
                for k, v in entry["rules"].items():
                    check(k in rules, f"{group}.{name}.rules.{k}", v,
                          f"is not a strategy rule (known: {', '.join(sorted(rules))})")


def check_keys(plain: Mapping) -> None:
    """Refuse unknown keys (one :class:`~sim.errors.UserError` naming the first) of a resolved config:
    top-level keys outside :data:`TOP_LEVEL`; unknown keys of ``output``, ``cohort``, ``model``,
    ``experiment``, ``economics`` and ``psa``; unknown first-level keys of each therapy, strategy (and
    strategy rule) and trial."""
    for k in plain:
        check(k in TOP_LEVEL, str(k), plain[k], f"is not a configuration key (known: {', '.join(TOP_LEVEL)})")
    check_output(plain)
    if "cohort" in plain:
        check_cohort_keys(mapping("cohort", plain["cohort"]))
    for group in FOLDERS:
        if group not in plain:
            continue
        known = known_keys(group)
        for k, v in mapping(group, plain[group]).items():
            check(k in known, f"{group}.{k}", v, f"is not a configuration key (known keys of {group}: "
                                                 f"{', '.join(sorted(known))})")
    _check_entries(plain)


# --------------------------------------------------------------------------- docs/configuration.md
_COMMENT = re.compile(r"^(\s*)([A-Za-z_][\w@.-]*):(.*?)(?:\s+#\s?(.*))?$")


def _comments(path: Path) -> dict[str, str]:
    """Dotted key -> its inline comment in a YAML file (nested keys by indentation)."""
    out, stack = {}, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith(("#", "-")):
            continue
        m = _COMMENT.match(line)
        if not m:
            continue
        indent, key, comment = len(m.group(1)), m.group(2), (m.group(4) or "").strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        out[".".join(k for _, k in stack)] = comment
    return out


def _type(v) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "whole number"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "interpolation" if "${" in v else "text"
    if isinstance(v, list):
        return "list"
    if isinstance(v, Mapping):
        return "group"
    return "null"


def _value(v) -> str:
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k}: {_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _cell(text: str, limit: int = 90) -> str:
    text = text.replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: the allowed range of each key checked by a validator of sim/config.py, sim/runio.py or
#: sim/patients/cohort.py (the validators' own words); keys without an entry are checked by their group
RANGES = {
    "seed": "0 to 2^63 - 1",
    "engine": "auto, simpy, vectorised",
    "chunk_size": "whole number >= 1, or null",
    "output.root": "a writable folder (checked before any work)",
    "output.figures": "true or false",
    "output.progress": "auto, true or false",
    "cohort.n": "whole number >= 1 that fits in memory; not with cohort.source",
    "cohort.source": ".csv or .parquet file (docs/cohort.md), or null",
    "cohort.age": "18 <= min <= mean <= max <= 100; 0 < sd <= 50",
    "cohort.male": "probability [0, 1]",
    "cohort.ecog": "3 to 5 probabilities summing to 1",
    "cohort.grade": "probabilities of G1, G2, G3 summing to 1",
    "cohort.ki67_range": "per grade [low, high], 0 < low < high <= 100",
    "cohort.non_functioning": "probability [0, 1]",
    "cohort.functional_mix": "probabilities summing to 1",
    "cohort.sstr_positive": "probabilities [0, 1]",
    "cohort.hepatic_burden": "probabilities summing to 1",
    "cohort.rapid_tempo": "probability [0, 1]",
    "cohort.symptomatic_bulk": "probability [0, 1]",
    "cohort.diabetes": "probability [0, 1]",
    "cohort.mgmt_low": "probability [0, 1]",
    "cohort.prior_therapies": "';'-separated configured therapy names",
    "cohort.correlations": "each rho in (-1, 1); positive-definite matrix",
    "model.imaging_interval_weeks": "> 0",
    "model.clinical_detection_months": "> 0, or null (scans only)",
    "model.frailty_rho": "[0, 1)",
    "model.dose_intensity_effect.beta": ">= 0 (0: no effect)",
    "model.pre_progression_death_share": "[0, 1]",
    "model.horizon_years": "(0, 100]",
    "model.background_mortality": "table: a file of data/lifetables/; max_age whole number in (100, 130]",
    "model.covariate_reference": "prevalences [0, 1]",
}

#: (heading, file, prefix of its keys, text) of each section of docs/configuration.md
SECTIONS = (
    ("Run settings and output", "config.yaml", "", "Top-level keys of `configs/config.yaml`."),
    ("cohort", "cohort/default.yaml", "cohort.", "The generated cohort (`configs/cohort/`; columns of a cohort "
                                                 "file: [cohort.md](cohort.md))."),
    ("model", "model/default.yaml", "model.", "Rules shared by every line (`configs/model/`)."),
    ("experiment", "experiment/default.yaml", "", "The comparison experiment "
                                                             "(`configs/experiment/`; other kinds below)."),
    ("experiment=psa", "experiment/psa.yaml", "", "Overrides of `experiment=psa`; the `psa` group is "
                                                  "`configs/psa/default.yaml`."),
    ("psa", "psa/default.yaml", "psa.", "Probabilistic sensitivity analysis (`configs/psa/`)."),
    ("experiment=dsa", "experiment/dsa.yaml", "", "Overrides of `experiment=dsa`."),
    ("experiment=validation", "experiment/validation.yaml", "", "Overrides of `experiment=validation`."),
    ("experiment=emulation", "experiment/emulation.yaml", "", "Overrides of `experiment=emulation`."),
    ("economics", "economics/uk_nhs.yaml", "economics.", "Costs, utilities, discounting and WTP "
                                                         "(`configs/economics/`)."),
    ("resources=prrt_uk", "resources/prrt_uk.yaml", "resources.", "Shared capacity (`configs/resources/`; "
                                                                  "none by default; the SimPy engine queues "
                                                                  "patients for it, `sim/resources.py`)."),
)

#: groups whose entries are listed by name only (one file per entry; their keys: docs/strategies.md)
NAMED = (("therapies", "therapy"), ("strategies", "strategy"), ("trials", "trial"))


def _source(sources: Mapping, key: str) -> str:
    """The ``sources`` entry of ``key`` (or of its nearest parent), shortened to its kind and id."""
    parts = key.split(".")
    for i in range(len(parts), 0, -1):
        hit = sources.get(".".join(parts[:i]))
        if isinstance(hit, str):
            return hit if len(hit) <= 48 else hit.split("(", 1)[0][:45] + "..."
    subs = sorted({v.split(":", 1)[0] for k, v in sources.items() if isinstance(v, str) and k.startswith(key + ".")})
    return ", ".join(subs)


def _rows(data: Mapping, comments: Mapping, prefix: str, path: str = "", depth: int = 0,
          sources: Mapping | None = None):
    sources = data.get("sources") if sources is None and isinstance(data.get("sources"), Mapping) else sources or {}
    for k, v in data.items():
        if k in ("defaults", "sources", "hydra"):
            continue
        key = f"{path}{k}"
        full = f"{prefix}{key}"
        nested = isinstance(v, Mapping) and depth < 1 and v and all(not isinstance(x, Mapping) or len(x) <= 6
                                                                    for x in v.values()) and len(v) <= 12
        if nested and full not in RANGES:
            yield from _rows(v, comments, prefix, f"{key}.", depth + 1, sources)
            continue
        yield (f"`{full}`", _type(v), _cell(f"`{_value(v)}`", 60), RANGES.get(full, ""),
               _cell(comments.get(key, "")), _cell(_source(sources, key), 50))


def configuration_markdown() -> str:
    """The text of ``docs/configuration.md``: every group and key of the shipped configs with its type,
    default, allowed range and the comment beside it in the config file."""
    out = ["# Configuration reference",
           "",
           "Every key of the shipped configuration (`configs/`), with its type, default, allowed range and "
           "meaning. Set any of them on the command line (`pnetsim cohort.n=200 model.horizon_years=20`); a "
           "key that is not listed here is refused. This page is generated from the configs and the "
           "validators' ranges (`python -m sim.schema > docs/configuration.md`); a test fails when it drifts. Sources: `evidence:<id>` rows of `data/evidence/evidence.csv`, `assumption:<id>` rows of `data/evidence/assumptions.csv`, `derived:` formulas over them, `fit:` fitted curves.",
           ""]
    for heading, rel, prefix, text in SECTIONS:
        path = CONFIGS / rel
        data = _load(path)
        if _package_global(path):
            data = {k: v for k, v in data.items() if k != "defaults"}
        out += [f"## {heading}", "", text, "", "| key | type | default | allowed | meaning | source |",
                "|---|---|---|---|---|---|"]
        out += ["| " + " | ".join(r) + " |" for r in _rows(data, _comments(path), prefix)]
        out.append("")
    out += ["## Therapies, strategies and trials", "",
            "One file per entry; select or add entries with config groups "
            "(`+strategy@strategies.mine=switch`, docs/strategies.md).", ""]
    for group, folder in NAMED:
        names = sorted(p.stem for p in (CONFIGS / folder).glob("*.yaml"))
        out.append(f"- `{group}` (`configs/{folder}/`): " + ", ".join(f"`{n}`" for n in names))
    out += ["", "## Shell completion", "",
            "Hydra completes config keys and groups in bash, zsh and fish: "
            "`eval \"$(pnetsim -sc install=bash)\"` (`-sc uninstall=bash` removes it).", ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(configuration_markdown(), end="")
