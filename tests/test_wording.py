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
