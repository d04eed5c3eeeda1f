"""The user docs stay true: docs/configuration.md is what the configs generate, docs/cohort.md lists
every cohort column and value, the example cohort loads, and the command lines of docs/strategies.md
compose and build."""

from __future__ import annotations

import re
import shlex

import pytest

from conftest import REPO, compose_config
from sim.config import build_model
from sim.patients import COLUMNS, load_cohort
from sim.schema import configuration_markdown

DOCS = REPO / "docs"


def test_configuration_reference_matches_the_configs():
    """docs/configuration.md equals the text generated from configs/ and the validators' ranges."""
    assert (DOCS / "configuration.md").read_text(encoding="utf-8") == configuration_markdown(), \
        "docs/configuration.md is out of date: run `python -m sim.schema > docs/configuration.md`"


def test_configuration_reference_lists_every_key_of_the_cohort_and_model_groups():
    """Every first-level key of the cohort and model configs has a row."""
    import yaml

    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    for group in ("cohort", "model"):
        data = yaml.safe_load((REPO / "configs" / group / "default.yaml").read_text())
        for key in data:
            if key != "sources":
                assert f"`{group}.{key}" in text, f"{group}.{key}"


def test_cohort_doc_lists_every_column_and_allowed_value():
    """Each column of the cohort schema, and each allowed category, is named in docs/cohort.md."""
    text = (DOCS / "cohort.md").read_text(encoding="utf-8")
    for col, (kind, allowed) in COLUMNS.items():
        assert f"| `{col}` |" in text, col
        if kind == "category":
            for value in allowed:
                assert f"`{value}`" in text, (col, value)


def test_example_cohort_file_loads_and_spells_booleans_in_several_ways():
    """examples/cohort.csv is a valid cohort file, with booleans written as true/yes/1 and false/no/0."""
    df = load_cohort(REPO / "examples" / "cohort.csv")
    assert len(df) >= 5 and df["sstr_positive"].dtype == bool
    raw = (REPO / "examples" / "cohort.csv").read_text()
    assert ",yes," in raw and ",1," in raw and ",no," in raw


def _commands(path):
    text = path.read_text(encoding="utf-8")
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        yield shlex.split(block.replace("\\\n", " "))


@pytest.mark.parametrize("command", list(_commands(DOCS / "strategies.md")), ids=lambda c: " ".join(c)[:60])
def test_strategy_command_lines_of_the_docs_build_a_model(command):
    """Each ``pnetsim ...`` example of docs/strategies.md composes and builds with the new strategy."""
    assert command[0] == "pnetsim"
    model = build_model(compose_config(command[1:] + ["cohort.n=10"]))
    assert "mine" in model.strategies
