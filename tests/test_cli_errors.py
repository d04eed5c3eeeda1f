"""Bad input through the ``pnetsim`` entry point, in process (``experiments.run.main``): every input
below exits 2 with one line ``pnetsim: error: <key> ... got <value>`` on stderr, no traceback, and
leaves nothing under ``output.root`` (no run folder, no partial folder, no Hydra folder). Also
``--version``, ``--help`` and the small-cohort warning."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pytest

from conftest import DATA
from experiments.run import main


def run_main(args, capfd):
    """``main(args)``: (exit status, stdout, stderr)."""
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capfd.readouterr()
    return code, out, err


def small_cohort_file(tmp_path: Path, rows: int = 20) -> Path:
    path = tmp_path / "cohort20.csv"
    pd.read_csv(DATA / "cohort_small.csv", dtype=str, keep_default_na=False).head(rows).to_csv(path, index=False)
    return path


BAD = {
    "cohort_n_with_source": (lambda t: [f"cohort.source={small_cohort_file(t)}", "cohort.n=5000"],
                             ["cohort.n", "cohort.source", "5000"]),
    "negative_age_mean": (lambda t: ["cohort.age.mean=-5"], ["cohort.age.mean", "-5"]),
    "age_sd_too_wide": (lambda t: ["cohort.age.sd=500"], ["cohort.age.sd", "500"]),
    "impossible_cohort_size": (lambda t: ["cohort.n=1000000000"], ["cohort.n", "1000000000", "memory"]),
    "unknown_experiment": (lambda t: ["experiment=nosuch"], ["experiment", "'nosuch'", "psa"]),
    "unknown_economics": (lambda t: ["economics=nosuch"], ["economics", "'nosuch'", "uk_nhs"]),
    "misspelt_key": (lambda t: ["cohort.nn=500"], ["cohort.nn", "not a configuration key", "500"]),
    "misspelt_key_added_with_plus": (lambda t: ["+cohort.nn=500"], ["cohort.nn", "500"]),
    "unknown_top_level_key": (lambda t: ["+colour=red"], ["colour", "'red'"]),
    "unknown_model_key": (lambda t: ["+model.frailty=0.5"], ["model.frailty", "0.5"]),
    "unquoted_non_ascii": (lambda t: ["cohort.source=données.csv"], ["could not be parsed", "données.csv"]),
    "figures_not_boolean": (lambda t: ["output.figures=maybe"], ["output.figures", "'maybe'"]),
    "progress_not_boolean": (lambda t: ["output.progress=maybe"], ["output.progress", "'maybe'"]),
    "duplicate_strategy": (lambda t: ["experiment.strategies=[switch,switch]"],
                           ["experiment.strategies", "'switch' twice"]),
    "horizon_too_long": (lambda t: ["model.horizon_years=1e9"], ["model.horizon_years", "1000000000"]),
    "seed_not_whole": (lambda t: ["seed=1e26"], ["seed", "1e+26"]),
    "seed_too_large": (lambda t: ["seed=9223372036854775808"], ["seed", "9223372036854775808"]),
    "seed_negative": (lambda t: ["seed=-1"], ["seed", "-1"]),
    "vectorised_with_resources": (lambda t: ["resources=prrt_uk", "engine=vectorised"],
                                  ["engine", "'vectorised'", "resources"]),
    "zero_slots": (lambda t: ["resources=prrt_uk", "resources.prrt.slots_per_week=0"],
                   ["resources.prrt.slots_per_week", "0"]),
    "unknown_resource_therapy": (lambda t: ["resources=prrt_uk", "resources.prrt.therapies=[lu177]"],
                                 ["resources.prrt.therapies", "'lu177'"]),
    "misspelt_resource_key": (lambda t: ["resources=prrt_uk", "+resources.prrt.slot_per_week=3"],
                              ["resources.prrt.slot_per_week", "3"]),
    "unknown_resources_option": (lambda t: ["resources=nosuch"], ["resources", "'nosuch'", "prrt_uk"]),
    "resources_in_validation": (lambda t: ["resources=prrt_uk", "experiment=validation"],
                                ["resources", "'validation'"]),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(name, tmp_path, capfd):
    """Each bad input: exit 2, one stderr line naming the key and the value, no traceback, and nothing
    written under output.root (not even an empty Hydra folder)."""
    make, needles = BAD[name]
    root = tmp_path / "out"
    code, out, err = run_main([f"output.root={root}", "output.progress=false", *make(tmp_path)], capfd)
    lines = err.strip().splitlines()
    assert code == 2, (code, err[-2000:])
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("pnetsim: error: "), err[-2000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not root.exists() or not any(root.rglob("*")), sorted(root.rglob("*"))


def test_output_root_that_is_a_file_is_refused_before_any_work(tmp_path, capfd):
    """output.root naming a file: exit 2, one line naming output.root and the path."""
    f = tmp_path / "afile"
    f.write_text("x")
    code, _, err = run_main([f"output.root={f}", "cohort.n=5"], capfd)
    assert code == 2 and err.count("\n") == 1 and "output.root" in err and str(f) in err, err


def test_unwritable_output_root_is_refused_before_any_work(tmp_path, capfd, monkeypatch):
    """A folder where no file can be created (a read-only file system; permission bits do not stop
    root): exit 2 naming output.root, before anything is simulated."""
    import sim.pipeline

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    def never(*a, **k):
        raise AssertionError("simulated although output.root is not writable")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    monkeypatch.setattr(sim.pipeline, "simulate_model", never)
    root = tmp_path / "ro"
    root.mkdir()
    code, _, err = run_main([f"output.root={root}", "cohort.n=5"], capfd)
    assert code == 2 and err.count("\n") == 1, err
    assert "output.root must be a writable folder" in err and str(root) in err
    assert not any(root.iterdir())


def test_version_prints_the_pnetsim_version(capfd):
    """``pnetsim --version`` prints ``pnetsim <version of the installed package>``, not Hydra's."""
    from importlib import metadata

    code, out, _ = run_main(["--version"], capfd)
    assert code == 0 and out.strip() == f"pnetsim {metadata.version('pnetsim')}"


def test_help_opens_with_a_short_usage_before_hydras_text(capfd):
    """``pnetsim --help`` starts with a usage line, the experiment kinds and where the docs are, then
    Hydra's config groups, without dumping the whole configuration."""
    code, out, _ = run_main(["--help"], capfd)
    assert code == 0
    assert out.startswith("usage: pnetsim")
    head = out[: out.index("Hydra's own help")]
    for needle in ("psa", "dsa", "validation", "emulation", "docs/configuration.md", "cohort.n="):
        assert needle in head
    kinds = sorted(f.stem for f in (Path(__file__).resolve().parents[1] / "configs" / "experiment").glob("*.yaml"))
    assert "experiment: " + ", ".join(kinds) in out
    assert len(out.splitlines()) < 80


def test_a_cohort_below_the_minimum_size_warns_that_intervals_are_unreliable(tmp_path, capfd):
    """A 20-patient run succeeds, with one warning line on stderr about intervals and ICERs."""
    code, out, err = run_main([f"output.root={tmp_path}", "cohort.n=20", "output.figures=false",
                               "output.progress=false"], capfd)
    assert code == 0, err
    warn = [x for x in err.splitlines() if x.startswith("pnetsim: warning:")]
    assert len(warn) == 1 and "20 patients" in warn[0] and "ICER" in warn[0]
    assert not (tmp_path / ".hydra").exists()


@pytest.mark.parametrize("override,key", [("+strategies.switch.rules.skip=true", "strategies.switch.rules.skip"),
                                          ("+therapies.sunitinib.colour=red", "therapies.sunitinib.colour"),
                                          ("+economics.curency=EUR", "economics.curency"),
                                          ("+strategies.mine={lines: [ssa, bsc], rule: {}}", "strategies.mine.rule")])
def test_unknown_key_of_a_therapy_strategy_or_economics_is_refused(override, key, tmp_path, capfd):
    """A key that no shipped therapy, strategy or economics file has, added with ``+``: exit 2 naming it."""
    code, _, err = run_main([f"output.root={tmp_path}", override], capfd)
    assert code == 2 and err.count("\n") == 1 and key in err, err


def test_optional_keys_the_validators_read_are_accepted(tmp_path, capfd):
    """Keys a validator reads but no shipped file sets (a strategy's uptake, a therapy's functional
    exclusion) stay accepted with ``+``."""
    code, _, err = run_main([f"output.root={tmp_path}", "cohort.n=20", "output.figures=false", "output.progress=false",
                             "+strategies.switch.rules.uptake={captem: 0.5}",
                             "+therapies.sunitinib.eligibility.exclude_functional=[insulinoma]"], capfd)
    assert code == 0, err


@pytest.mark.parametrize("experiment", ["psa", "dsa", "emulation"])
def test_impossible_cohort_size_is_refused_in_every_experiment_kind(experiment, tmp_path, capfd):
    """A billion patients: exit 2 with one line about memory before anything is generated."""
    code, _, err = run_main([f"output.root={tmp_path}", f"experiment={experiment}", "cohort.n=1000000000"], capfd)
    assert code == 2 and err.count("\n") == 1 and "cohort.n" in err and "memory" in err, err
