"""The real console command ``pnetsim`` in subprocesses (issue 2, "Done when").

* a default run prints the summary table and writes every file of docs/outputs.md;
* the same seed twice gives a byte-identical ``summary.csv``;
* every experiment of ``configs/experiment/`` runs with its smoke overrides (tests/smoke.py);
* bad input exits with status 2 and exactly one stderr line ``pnetsim: error: ...`` naming the
  key (or column) and the value, without a traceback and without a complete-looking run folder.

Each subprocess costs ~2-3 s of imports, so runs are few and small (``cohort.n`` small, figures
only in the default run). Every run writes under a temporary ``output.root`` and runs from a
temporary working directory, so the repository is never written to.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from smoke import SMOKE
import yaml

from conftest import CONFIG_DIR, DATA, REPO

DOCS = REPO / "docs" / "outputs.md"
TIMEOUT = 600


#: the default experiment's strategies, reference first
DEFAULT_STRATEGIES = ("captem_then_rechallenge", "rechallenge_then_captem", "switch")

def pnetsim_executable() -> str:
    """The ``pnetsim`` console script of the running interpreter's environment."""
    exe = Path(sys.executable).parent / "pnetsim"
    if exe.is_file():
        return str(exe)
    found = shutil.which("pnetsim")
    if found is None:
        pytest.fail("the console command `pnetsim` is not installed (pip install -e .)")
    return found


def pnetsim(*overrides: str, root: Path, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``pnetsim <overrides> output.root=<root>`` in ``cwd``; output captured as text."""
    return subprocess.run([pnetsim_executable(), *overrides, f"output.root={root}", "output.progress=false"],
                          cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)


def run_folders(root: Path) -> list[Path]:
    """Complete-looking run folders under ``root``: non-hidden folders two levels down."""
    return sorted(p for p in root.glob("*/*") if p.is_dir() and not any(part.startswith(".")
                                                                      for part in p.relative_to(root).parts))


def the_run_folder(proc: subprocess.CompletedProcess, root: Path) -> Path:
    """The single run folder of a successful run, checked against the path it printed."""
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    folders = run_folders(root)
    assert len(folders) == 1, folders
    m = re.search(r"results written to (.+)$", proc.stdout.strip(), flags=re.M)
    assert m is not None, proc.stdout[-2000:]
    assert Path(m.group(1).strip()).resolve() == folders[0].resolve()
    assert not list(root.rglob(".*.partial-*")), "a partial folder was left behind"
    return folders[0]


def documented_columns(section: str) -> list[str]:
    """Column names in the first table of the ``## `<section>` ...`` part of docs/outputs.md."""
    text = DOCS.read_text()
    start = text.index(f"## `{section}`")
    end = text.find("\n## ", start + 1)
    cols = []
    for line in text[start:end if end > 0 else None].splitlines():
        m = re.match(r"^\| ([^|]+) \|", line)
        if not m or set(m.group(1).strip()) <= set("-") or m.group(1).strip() in ("column", "baseline columns"):
            continue
        cols += [c.strip() for c in m.group(1).split(",") if c.strip()]
    return cols


# ------------------------------------------------------------------ default run, reproducibility
@pytest.fixture(scope="module")
def twin_runs(tmp_path_factory):
    """``pnetsim cohort.n=200 seed=7`` twice (figures in the first run only): (proc, folder) x 2."""
    out = []
    for i, figures in enumerate(("true", "false")):
        root = tmp_path_factory.mktemp(f"run{i}")
        proc = pnetsim("cohort.n=200", "seed=7", f"output.figures={figures}", root=root, cwd=root)
        out.append((proc, the_run_folder(proc, root)))
    return out


def test_default_run_prints_titled_tables_with_units(twin_runs):
    """stdout opens with a titled outcome table (units in the title), one row per compared strategy,
    then titled economics tables: costs and QALYs, increments vs the reference, the full incremental
    analysis with the dominance in words, and the folder."""
    proc, folder = twin_runs[0]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Clinical outcomes (200 patients per strategy; months"), lines[0]
    for col in ("strategy", "median PFS1", "median PFS2", "median OS", "mean OS", "grade 3/4 AEs per patient"):
        assert col in lines[1], lines[1]
    for strategy in DEFAULT_STRATEGIES:
        assert re.search(rf"^\s*{strategy}\s+200\s", proc.stdout, flags=re.M), proc.stdout[:2000]
    for title in ("Costs and QALYs per patient (discounted; GBP", f"Incremental costs and QALYs vs {DEFAULT_STRATEGIES[0]}",
                  "Full incremental analysis"):
        assert title in proc.stdout, proc.stdout[:3000]
    inc = pd.read_csv(folder / "incremental.csv")
    if (inc["status"] == "dominated").any():
        assert re.search(r"dominated by \w+", proc.stdout), proc.stdout[-2000:]
    assert " - " not in proc.stdout.split("Full incremental analysis")[1]
    assert folder.parent.name == "default" and folder.name.endswith("-seed7")


class _Report(HTMLParser):
    """Headings, table headers, images and text of an HTML report."""

    def __init__(self):
        super().__init__()
        self.headings, self.th, self.img, self.text, self._tag, self._pre = [], [], [], [], [], 0

    def handle_starttag(self, tag, attrs):
        self._tag.append(tag)
        self._pre += tag == "pre"
        if tag == "img":
            self.img.append(dict(attrs).get("src", ""))

    def handle_endtag(self, tag):
        self._pre -= tag == "pre"
        if self._tag:
            self._tag.pop()

    def handle_data(self, data):
        tag = self._tag[-1] if self._tag else ""
        if tag in ("h1", "h2", "h3"):
            self.headings.append((tag, data.strip()))
        elif tag == "th":
            self.th.append(data.strip())
        if not self._pre:                     # the resolved configuration is shown verbatim
            self.text.append(data)


def test_default_report_opens_with_the_summary_and_has_no_raw_names(twin_runs):
    """report.html: the first section is the summary; every figure of the run folder is embedded; no
    table header or text holds a raw column name of the run's tables, a backtick or the word issue."""
    _, folder = twin_runs[0]
    page = _Report()
    source = (folder / "report.html").read_text(encoding="utf-8")
    page.feed(source)
    sections = [h for tag, h in page.headings if tag == "h2"]
    assert sections[0] == "Summary" and sections.index("Results") < sections.index("Methods"), sections
    pngs = sorted(p.name for p in folder.glob("*.png"))
    assert "ce_plane_paired.png" in pngs and len(page.img) == len(pngs)
    assert all(src.startswith("data:image/png;base64,") for src in page.img)
    text = " ".join(page.text)
    raw = set()
    for csv in folder.glob("*.csv"):
        raw |= {c for c in pd.read_csv(csv, nrows=0).columns if "_" in c}
    for name in sorted(raw):
        assert not re.search(rf"(?<![\w.]){re.escape(name)}(?![\w.])", text), name
    assert not any("_" in h for h in page.th), [h for h in page.th if "_" in h]
    assert "`" not in text
    assert not re.search(r"\bissues?\b", re.sub(r"base64,[^'\"]+", "", source), flags=re.I)


def test_default_run_writes_every_documented_file(twin_runs):
    """The run folder holds the tables, figures and manifest listed in docs/outputs.md."""
    _, folder = twin_runs[0]
    names = {p.name for p in folder.iterdir()}
    expected = {"patients.parquet", "lines.parquet", "events.parquet", "summary.csv", "differences.csv",
                "km_overview.png", "manifest.json"} | {f"km_{s}.png" for s in DEFAULT_STRATEGIES}
    expected |= {"economics_patients.parquet", "economics_summary.csv", "economics_summary.parquet",
                 "incremental.csv", "incremental.parquet", "economics_differences.csv",
                 "economics_differences.parquet"}
    assert expected <= names, sorted(expected - names)
    assert all((folder / n).stat().st_size > 0 for n in expected)


@pytest.mark.parametrize("file,section", [("patients.parquet", "patients.parquet"),
                                          ("lines.parquet", "lines.parquet")])
def test_tables_have_the_documented_columns(twin_runs, file, section):
    """Every column documented in docs/outputs.md is in the written table (and the cohort's
    baseline columns are in patients.parquet)."""
    from sim.patients import COLUMNS

    _, folder = twin_runs[0]
    df = pd.read_parquet(folder / file)
    documented = documented_columns(section)
    assert len(documented) >= 8
    assert set(documented) <= set(df.columns), sorted(set(documented) - set(df.columns))
    if file == "patients.parquet":
        assert set(COLUMNS) <= set(df.columns)
        assert len(df) == 3 * 200


def test_summary_and_differences_have_one_row_per_strategy(twin_runs):
    """summary.csv: one row per strategy with estimate and CI columns; differences.csv: one row
    per non-reference strategy against the reference (the first default strategy)."""
    _, folder = twin_runs[0]
    summary = pd.read_csv(folder / "summary.csv")
    assert summary["strategy"].tolist() == list(DEFAULT_STRATEGIES)
    for col in ("median_pfs1_months", "median_os_months", "mean_os_months", "g34_ae_per_patient"):
        assert {col, f"{col}_lo", f"{col}_hi"} <= set(summary.columns)
        assert (summary[f"{col}_lo"] <= summary[col]).all() and (summary[col] <= summary[f"{col}_hi"]).all()
    diff = pd.read_csv(folder / "differences.csv")
    assert sorted(diff["strategy"]) == sorted(DEFAULT_STRATEGIES[1:]) and set(diff["reference"]) == {DEFAULT_STRATEGIES[0]}


def test_manifest_records_config_seed_versions_and_git_revision(twin_runs):
    """manifest.json has the resolved config, the seed, package versions, the git revision and timings."""
    _, folder = twin_runs[0]
    m = json.loads((folder / "manifest.json").read_text())
    assert m["seed"] == 7 and m["config"]["seed"] == 7 and m["config"]["cohort"]["n"] == 200
    assert "${" not in json.dumps(m["config"])            # interpolations resolved
    assert {"python", "numpy", "pandas", "simpy"} <= set(m["versions"])
    assert {"commit", "dirty"} <= set(m["git"])
    assert m["git"]["commit"] is None or re.fullmatch(r"[0-9a-f]{40}", m["git"]["commit"])
    assert m["timings_seconds"]["total"] > 0
    assert m["n_patients"] == 200 and m["strategies"] == list(DEFAULT_STRATEGIES)


def test_same_seed_twice_gives_byte_identical_summary(twin_runs):
    """Two processes with ``cohort.n=200 seed=7`` write byte-identical summary.csv and
    differences.csv (figures on or off do not matter)."""
    (_, a), (_, b) = twin_runs
    for name in ("summary.csv", "differences.csv", "economics_summary.csv", "incremental.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


# ------------------------------------------------------------------ every experiment
EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))


def smoke_overrides(name: str) -> list[str]:
    """The test-only overrides of tests/smoke.py for configs/experiment/<name>.yaml (a clear failure when absent)."""
    if name not in SMOKE:
        pytest.fail(f"tests/smoke.py has no overrides for configs/experiment/{name}.yaml (overrides that make the "
                    f"experiment finish in a few seconds)")
    return SMOKE[name]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_runs_through_the_cli_with_its_smoke_overrides(name, tmp_path):
    """``pnetsim experiment=<name> <smoke>`` exits 0 and writes one complete run folder with a
    manifest holding the resolved config of that experiment."""
    smoke = smoke_overrides(name)
    proc = pnetsim(f"experiment={name}", *smoke, root=tmp_path, cwd=tmp_path)
    folder = the_run_folder(proc, tmp_path)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["config"]["experiment"]["name"] == folder.parent.name
    assert len(list(folder.iterdir())) >= 2


# ------------------------------------------------------------------ bad input
def _bad_cohort_file(tmp_path: Path) -> Path:
    df = pd.read_csv(DATA / "cohort_small.csv", dtype=str, keep_default_na=False)
    df.loc[3, "ecog"] = "seven"
    path = tmp_path / "cohort_bad.csv"
    df.to_csv(path, index=False)
    return path


def _bad_parquet_cohort_file(tmp_path: Path) -> Path:
    from sim.patients import load_cohort

    df = load_cohort(DATA / "cohort_small.csv").astype({"sex": object})
    df.loc[2, "sex"] = None
    path = tmp_path / "cohort_bad.parquet"
    df.to_parquet(path, index=False)
    return path


BAD = {
    # a strategy line naming a therapy that does not exist
    "unknown_therapy": (lambda tmp: ["strategies.switch.lines=[ssa,nosuch,bsc]"],
                        ["strategies.switch.lines[1]", "'nosuch'"]),
    # a malformed cohort file: wrong type in column ecog, data row 4
    "malformed_cohort_file": (lambda tmp: [f"cohort.source={_bad_cohort_file(tmp)}"],
                              ["'ecog'", "row 4", "'seven'", "cohort_bad.csv"]),
    # a config key of the wrong type, in another experiment kind (DSA)
    "wrong_type_in_dsa": (lambda tmp: ["experiment=dsa", "cohort.n=abc"], ["cohort.n", "'abc'"]),
    # a malformed Parquet cohort file: no value in column sex, data row 3
    "malformed_parquet_cohort_file": (lambda tmp: [f"cohort.source={_bad_parquet_cohort_file(tmp)}"],
                                      ["'sex'", "row 3", "None", "cohort_bad.parquet"]),
    # wrong type in the PSA kind, an unknown therapy in a trial arm of the validation kind
    "wrong_type_in_psa": (lambda tmp: ["experiment=psa", "psa.workers=abc"], ["psa.workers", "'abc'"]),
    "unknown_arm_therapy_in_validation": (
        lambda tmp: ["experiment=validation", "trials.e2211.arms.captem.lines=[x,bsc]"],
        ["trials.e2211.arms.captem.lines[0]", "'x'"]),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_exits_2_with_one_error_line_and_no_run_folder(name, tmp_path):
    """Bad input: exit status 2, exactly one stderr line ``pnetsim: error: ...`` naming the key
    or column and the value, no traceback, and no complete-looking folder under output.root."""
    make, needles = BAD[name]
    root = tmp_path / "out"
    proc = pnetsim(*make(tmp_path), root=root, cwd=tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pnetsim: error: "), proc.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    if root.exists():
        assert run_folders(root) == []
        assert not list(root.rglob(".*.partial-*"))
