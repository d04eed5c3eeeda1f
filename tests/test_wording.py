"""What users read (README, docs, configs, the evidence tables, examples) carries no planning language
and no machine paths: sources cite publications, not issues or sessions."""

from __future__ import annotations

import re

import pytest

from conftest import REPO

USER_FILES = sorted({*REPO.glob("README.md"), *REPO.glob("docs/*.md"), *REPO.glob("configs/**/*.yaml"),
                     *REPO.glob("data/evidence/*"), *REPO.glob("data/README.md"), *REPO.glob("examples/*"),
                     *REPO.glob("bench/README.md")})
PLANNING = re.compile(r"\bissues?\b|\bissue-\d+|/work/|/home/|\bsession\b", re.I)


@pytest.mark.parametrize("path", USER_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_user_visible_file_has_no_planning_language_or_machine_path(path):
    """No line mentions an issue, a session or a path on a developer's machine."""
    bad = [f"{i}: {line.strip()[:120]}" for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
           if PLANNING.search(line)]
    assert not bad, bad


def test_readme_test_command_is_the_ci_command_with_pinned_constraints():
    """The README's test command (after the venv line) is the last command of .ci/run, and both
    install from constraints.txt, which pins every package (``name==version``)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line.strip() and not line.startswith("#")]
    command = ci[-1].strip()
    assert "-c constraints.txt" in command
    assert re.search(r"activate && " + re.escape(command) + r"\n", readme), command
    pins = [line for line in (REPO / "constraints.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.+!-]+", p) for p in pins), pins[:5]
    assert any(p.lower().startswith("pytest-xdist==") for p in pins)
