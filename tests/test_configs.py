"""Every option of every config group composes with ``configs/config.yaml`` and builds.

The options are discovered from ``configs/<group>/*.yaml``, so a new file is tested without
editing this module. Building goes as far as each group's own validator: the model
(:func:`sim.config.build_model`), the economics spec, the PSA settings and parameters, the
trial designs. Running every experiment end to end is ``tests/test_cli.py``.
"""

from __future__ import annotations

import numbers

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import CONFIG_DIR, compose_config
from smoke import SMOKE
from sim.config import build_model, to_container
from sim.strategies import build_strategies
from sim.therapies import build_therapies

SMALL = "cohort.n=20"


def options(group: str) -> list[str]:
    """Names of the options of a config group (``configs/<group>/*.yaml``)."""
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def default_choices() -> dict[str, str]:
    """``{package: option}`` of the ``therapy@therapies.<x>`` / ``strategy@strategies.<x>`` defaults."""
    out = {}
    for item in yaml.safe_load((CONFIG_DIR / "config.yaml").read_text())["defaults"]:
        if isinstance(item, dict):
            (k, v), = item.items()
            out[k] = v
    return out


#: groups composed and built by a dedicated test below
BUILT_GROUPS = {"cohort", "model", "economics", "experiment", "psa", "strategy", "therapy", "trial", "hydra"}
OTHER_OPTIONS = sorted((p.parent.name, p.stem) for p in CONFIG_DIR.glob("*/*.yaml") if p.parent.name not in BUILT_GROUPS)


@pytest.mark.parametrize("group,name", OTHER_OPTIONS or [pytest.param(None, None, marks=pytest.mark.skip("none"))])
def test_options_of_other_groups_are_yaml_mappings(group, name):
    """Options of groups used by other entry points (e.g. ``fit``) parse as YAML mappings."""
    assert isinstance(yaml.safe_load((CONFIG_DIR / group / f"{name}.yaml").read_text()), dict)


@pytest.mark.parametrize("name", options("cohort"))
def test_cohort_option_composes_and_builds(name):
    """``cohort=<name>`` composes and yields a valid cohort."""
    model = build_model(compose_config([f"cohort={name}", SMALL]))
    assert len(model.cohort) == 20


@pytest.mark.parametrize("name", options("model"))
def test_model_option_composes_and_builds(name):
    """``model=<name>`` composes and yields valid rules and life table."""
    model = build_model(compose_config([f"model={name}", SMALL]))
    assert model.rules.imaging_interval_months > 0 and model.lifetable.max_age > 100


@pytest.mark.parametrize("name", options("economics"))
def test_economics_option_composes_and_prices_every_therapy_given(name):
    """``economics=<name>`` gives a valid spec with a drug entry (or an explicit null) for every
    therapy of every strategy."""
    from sim.pipeline import economics_spec_of

    cfg = compose_config([f"economics={name}", SMALL])
    model = build_model(cfg)
    spec = economics_spec_of(to_container(cfg))
    assert spec is not None
    for strategy in model.strategies.values():
        for therapy in strategy.therapy_names:
            spec.drug_for(therapy)


@pytest.mark.parametrize("name", options("experiment"))
def test_experiment_option_composes_builds_and_has_smoke_overrides(name):
    """``experiment=<name>`` composes, names a dispatched kind, has smoke override strings in
    tests/smoke.py that themselves compose (used by tests/test_cli.py) and, for the kinds simulating the
    compared strategies, builds the model; the shipped config holds no test-only key."""
    from experiments.run import KINDS

    cfg = compose_config([f"experiment={name}", SMALL])
    exp = to_container(cfg)["experiment"]
    assert exp.get("kind", "compare") in KINDS
    assert "smoke" not in exp
    smoke = SMOKE.get(name)
    assert isinstance(smoke, list) and smoke and all(isinstance(s, str) for s in smoke), (
        f"tests/smoke.py needs overrides for configs/experiment/{name}.yaml: a list of Hydra overrides that make "
        f"the experiment finish in a few seconds, got {smoke!r}")
    smoked = compose_config([f"experiment={name}", *smoke, SMALL])
    if exp.get("kind", "compare") in MODEL_KINDS:
        build_model(smoked)


#: experiment kinds that simulate the model of ``sim.config.build_model`` (validation and
#: emulation build their own trial / pathway models from ``trials`` / ``experiment.strategy``)
MODEL_KINDS = ("compare", "psa", "dsa")


@pytest.mark.parametrize("name", options("psa"))
def test_psa_option_composes_and_validates_parameters(name):
    """``psa=<name>`` (with the PSA experiment) gives valid settings and parameter distributions."""
    from sim.uncertainty.psa import prepare

    _, _, _, st, paramset, groups = prepare(compose_config(["experiment=psa", f"psa={name}", SMALL]))
    assert st.samples >= 2 and len(paramset.paths) > 0
    assert set(groups) <= set(st.groups)


@pytest.fixture(scope="module")
def every_therapy_cfg():
    """The composed config with every therapy option under ``therapies.<name>`` (plain dict)."""
    present = {k.split("@therapies.")[1]: v for k, v in default_choices().items() if k.startswith("therapy@")}
    extra = [f"+therapy@therapies.{n}={n}" for n in options("therapy") if n not in present]
    return to_container(compose_config([SMALL, *extra]))


def test_every_therapy_option_builds(every_therapy_cfg):
    """Every ``configs/therapy/*.yaml`` builds into a validated Therapy (interpolations resolved)."""
    therapies = build_therapies(every_therapy_cfg["therapies"])
    assert set(options("therapy")) <= set(therapies)


def test_default_config_uses_each_therapy_file_under_its_own_name():
    """``therapy@therapies.<x>: <x>``: a therapy's key equals its file name (strategies name files)."""
    for pkg, option in default_choices().items():
        if pkg.startswith(("therapy@", "strategy@")):
            assert pkg.split(".", 1)[1] == option, pkg


#: leaf key -> (kind, low, high) for every number allowed in a therapy config
PROBABILITY = ("probability", 0.0, 1.0)
POSITIVE = ("real", 0.0, None)
THERAPY_NUMBERS = {
    "probability": PROBABILITY, "probability_diabetes": PROBABILITY, "if_true": PROBABILITY,
    "if_false": PROBABILITY, "landmark_survival": PROBABILITY, "reduced_intensity": PROBABILITY,
    "consequence.*": PROBABILITY,
    "median": POSITIVE, "shape": POSITIVE, "sigma": POSITIVE, "Q": ("real", None, None),
    "hazard_ratio": POSITIVE, "landmark_months": POSITIVE, "onset_median_weeks": POSITIVE,
    "interruption_weeks": POSITIVE, "duration_weeks": POSITIVE, "interval_weeks": POSITIVE,
    "covariate_hr.*": POSITIVE, "time_ratio": POSITIVE, "response_ratio": POSITIVE,
    "reference_pfs_first": POSITIVE, "reference_time_off": POSITIVE,
    "beta_prior_pfs": ("real", None, None), "beta_time_off": ("real", None, None),
    "response_time_ratio": POSITIVE, "reference_response_share": PROBABILITY,
    "reference_intervening_lines": ("whole", 0, None), "reference_prior_lines": ("whole", 0, None),
    "prior_exposure_hr.*": POSITIVE, "covariate_reference.*": PROBABILITY,
    "symptom_control.*": PROBABILITY,
    "doses": ("whole", 1, None),
    "window_days": POSITIVE,
    "onset_min_months": POSITIVE, "onset_max_months": POSITIVE, "fatal_share": PROBABILITY,
    "survival_median_months": POSITIVE,
}


def _leaves(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            if path == () and k == "sources":
                continue
            yield from _leaves(v, path + (str(k),))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, path + (str(i),))
    else:
        yield path, node


def _rule(path):
    if len(path) >= 2 and f"{path[-2]}.*" in THERAPY_NUMBERS:
        return THERAPY_NUMBERS[f"{path[-2]}.*"]
    return THERAPY_NUMBERS.get(path[-1])


@pytest.mark.parametrize("name", options("therapy"))
def test_every_number_in_a_therapy_config_has_the_right_type_and_range(every_therapy_cfg, name):
    """Probabilities are reals in [0, 1], durations / medians / ratios positive reals, dose counts
    whole numbers; booleans are never used as numbers; every numeric key has a rule here."""
    problems = []
    for path, v in _leaves(every_therapy_cfg["therapies"][name]):
        key = ".".join(path)
        rule = _rule(path)
        if isinstance(v, bool) or not isinstance(v, numbers.Number):
            if rule is not None and v is not None:
                problems.append(f"{name}.{key}={v!r}: must be a number")
            continue
        if rule is None:
            problems.append(f"{name}.{key}={v!r}: no type rule (add it to THERAPY_NUMBERS)")
            continue
        kind, lo, hi = rule
        if kind == "whole" and not isinstance(v, int):
            problems.append(f"{name}.{key}={v!r}: must be a whole number")
        if lo is not None and not (v > lo if kind == "real" and lo == 0.0 else v >= lo):
            problems.append(f"{name}.{key}={v!r}: below {lo}")
        if hi is not None and v > hi:
            problems.append(f"{name}.{key}={v!r}: above {hi}")
    assert not problems, problems


@pytest.mark.parametrize("name", options("strategy"))
def test_strategy_lines_name_existing_therapy_files_and_build(name):
    """Each strategy's lines are therapy files of configs/therapy/, and the strategy builds with the
    default therapies (composed under its own name and compared alone)."""
    lines = yaml.safe_load((CONFIG_DIR / "strategy" / f"{name}.yaml").read_text())["lines"]
    named = [r["give"] for ln in lines if isinstance(ln, dict) for r in ln["choose"]]
    named += [t for t in lines if isinstance(t, str)]
    missing = [t for t in named if not (CONFIG_DIR / "therapy" / f"{t}.yaml").is_file()]
    assert not missing, f"configs/strategy/{name}.yaml names therapies without a file: {missing}"
    key = f"{name}_under_test"
    model = build_model(compose_config([SMALL, f"+strategy@strategies.{key}={name}",
                                        f"experiment.strategies=[{key}]", f"experiment.reference={key}"]))
    built = model.strategies[key].lines
    assert [ln if isinstance(ln, str) else ln.name for ln in built] == [
        ln if isinstance(ln, str) else ln["name"] for ln in lines]
    assert set(model.strategies[key].therapy_names) == set(named)


@pytest.mark.parametrize("name", options("trial"))
def test_trial_option_composes_and_its_arms_build(name):
    """``configs/trial/<name>.yaml`` is a valid design whose arms are valid strategies over the
    validation experiment's therapies, and whose published targets are evidence rows."""
    from sim.validation import load_designs

    plain = to_container(compose_config(["experiment=validation", SMALL]))
    if name not in plain.get("trials", {}):
        plain = to_container(compose_config(["experiment=validation", SMALL, f"+trial@trials.{name}={name}"]))
    design, = load_designs(plain, [name])
    therapies = build_therapies(plain["therapies"])
    arms = {a.name: {"label": a.label, "lines": list(a.lines), "rules": dict(a.rules)} for a in design.arms}
    built = build_strategies(arms, therapies, list(arms))
    assert set(built) == set(arms)
    assert len(design.targets()) > 0


#: launcher config -> (plugin module, pip package); a config of configs/hydra/launcher/ without an
#: entry here fails the test below (its plugin would not be checked)
PLUGINS = {"joblib": ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher"),
           "ray_cluster": ("hydra_plugins.hydra_ray_launcher", "hydra-ray-launcher"),
           "slurm": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher")}
LAUNCHERS = [("joblib", PLUGINS["joblib"])] + [
    (p.stem, PLUGINS.get(p.stem)) for p in sorted((CONFIG_DIR / "hydra" / "launcher").glob("*.yaml"))]


@pytest.mark.parametrize("name,plugin", LAUNCHERS, ids=[n for n, _ in LAUNCHERS])
def test_hydra_launcher_composes_for_parallel_sweeps(name, plugin):
    """``hydra/launcher=<name>`` (README: sweeps on all cores or a cluster) composes with the
    project config when its plugin is installed (skipped, with the package to install, when it is not)."""
    assert plugin is not None, f"configs/hydra/launcher/{name}.yaml: add its plugin to PLUGINS"
    module, package = plugin
    pytest.importorskip(module, reason=f"the {name} launcher needs the Hydra plugin {package} "
                                       f"(pip install -e '.[cluster]')")
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"hydra/launcher={name}"], return_hydra_config=True)
    assert "_target_" in OmegaConf.to_container(cfg.hydra.launcher)
