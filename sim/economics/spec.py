"""Economic inputs (``configs/economics/<name>.yaml``) as a validated, frozen :class:`EconomicsSpec`.

Every problem is reported as a :class:`sim.errors.UserError` naming the config key and the
bad value (``economics.drugs.everolimus.pack_price must be >= 0, got -1``). Validation runs in
``__post_init__``, so ``dataclasses.replace`` and :meth:`EconomicsSpec.with_values` (used by the
sensitivity analyses) re-validate too.

Units: costs in ``currency`` at ``price_year`` prices; times in model months
(:mod:`sim.units`); utilities per year (QALYs are reported in years); discount rates annual.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from sim.economics.dispensing import parse_dispensing
from sim.errors import UserError, check, mapping, number
from sim.units import DAYS_PER_MONTH, MONTHS_PER_YEAR, weeks

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "economics"
SCHEDULES = ("daily", "cycle")
KEY = "economics"


def _num(key: str, v, lo: float | None = 0.0, hi: float | None = None, *, lo_open=False, hi_open=False) -> float:
    """A finite number within bounds (``>= 0`` unless told; NumPy scalars too), else :class:`UserError`
    naming ``key`` and ``v`` (:func:`sim.errors.number`; a NaN or an infinity: ``must be finite``)."""
    return number(key, v, lo, hi, lo_open=lo_open, hi_open=hi_open, nonfinite="must be finite",
                  types=(int, float, np.integer, np.floating))


def _utility(key: str, v) -> float:
    check(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool), key, v, "must be a number")
    check(-1.0 <= v <= 1.0 and math.isfinite(v), key, v, "must be a utility in [-1, 1] (1 = full health)")
    return float(v)


def _rate(key: str, v) -> float:
    check(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool), key, v,
          "must be an annual discount rate in [0, 1)")
    check(0.0 <= v < 1.0, key, v, "must be an annual discount rate in [0, 1)")
    return float(v)


@dataclass(frozen=True)
class DrugCost:
    """Acquisition and administration cost of one drug.

    ``schedule='daily'`` (oral, continuous): cost per month
    ``c_m = pack_price / pack_size * daily_dose_mg / unit_mg * DAYS_PER_MONTH`` accrues while on
    treatment, times the dose level received at each moment (1 = full dose, 0 = interrupted);
    ``administration_cost`` is then per month on treatment.

    ``schedule='cycle'``: ``price_per_administration`` (+ ``administration_cost``) at the start
    of each cycle ``t_k = start + k * interval_months``, ``k = 0 .. n - 1`` with
    ``n = min(ceil(on_treatment / interval), max_administrations)``; the drug price is scaled by
    the line's relative dose intensity (dose reductions, skipped doses).
    """

    name: str
    schedule: str
    cost_per_month: float = 0.0
    price_per_administration: float = 0.0
    interval_months: float = math.nan
    max_administrations: float = math.inf
    administration_cost: float = 0.0
    dose_intensity_scaling: bool = True

    def __post_init__(self):
        k = f"{KEY}.drugs.{self.name}"
        check(self.schedule in SCHEDULES, f"{k}.schedule", self.schedule, f"must be one of {list(SCHEDULES)}")
        _num(f"{k}.cost_per_month", self.cost_per_month)
        _num(f"{k}.price_per_administration", self.price_per_administration)
        _num(f"{k}.administration_cost", self.administration_cost)
        if self.schedule == "cycle":
            _num(f"{k}.interval_weeks", self.interval_months, 0.0, lo_open=True)
            check(self.max_administrations >= 1, f"{k}.max_administrations", self.max_administrations, "must be >= 1")

    @classmethod
    def from_config(cls, name: str, cfg: Mapping) -> "DrugCost":
        k = f"{KEY}.drugs.{name}"
        check(isinstance(cfg, Mapping), k, cfg, "must be a mapping")
        schedule = cfg.get("schedule")
        check(schedule in SCHEDULES, f"{k}.schedule", schedule, f"must be one of {list(SCHEDULES)}")
        admin = _num(f"{k}.administration_cost", cfg.get("administration_cost", 0.0))
        scale = cfg.get("dose_intensity_scaling", True)
        check(isinstance(scale, bool), f"{k}.dose_intensity_scaling", scale, "must be true or false")
        if schedule == "daily":
            if "price_per_day" in cfg:
                per_day = _num(f"{k}.price_per_day", cfg["price_per_day"])
            else:
                for f in ("pack_price", "pack_size", "unit_mg", "daily_dose_mg"):
                    check(f in cfg, f"{k}.{f}", None, "is required for a daily drug (or give price_per_day)")
                price = _num(f"{k}.pack_price", cfg["pack_price"])
                size = _num(f"{k}.pack_size", cfg["pack_size"], 0.0, lo_open=True)
                unit = _num(f"{k}.unit_mg", cfg["unit_mg"], 0.0, lo_open=True)
                dose = _num(f"{k}.daily_dose_mg", cfg["daily_dose_mg"])
                per_day = price / size * dose / unit
            return cls(name, "daily", cost_per_month=per_day * DAYS_PER_MONTH, administration_cost=admin,
                       dose_intensity_scaling=scale)
        check("price_per_administration" in cfg, f"{k}.price_per_administration", None, "is required for a cycle drug")
        check("interval_weeks" in cfg, f"{k}.interval_weeks", None, "is required for a cycle drug")
        mx = cfg.get("max_administrations")
        if mx is not None:
            check(isinstance(mx, int) and not isinstance(mx, bool) and mx >= 1, f"{k}.max_administrations", mx,
                  "must be a whole number >= 1 (or null)")
        return cls(name, "cycle",
                   price_per_administration=_num(f"{k}.price_per_administration", cfg["price_per_administration"]),
                   interval_months=weeks(_num(f"{k}.interval_weeks", cfg["interval_weeks"], 0.0, lo_open=True)),
                   max_administrations=math.inf if mx is None else float(mx),
                   administration_cost=admin, dose_intensity_scaling=scale)


@dataclass(frozen=True)
class EconomicsSpec:
    """Validated economic inputs of one analysis.

    Attributes
    ----------
    currency, price_year : str, int
    drugs : mapping drug name -> :class:`DrugCost`
    therapy_drugs : mapping therapy name -> drug name or ``None`` (no acquisition cost).
        Every therapy in the lines table must be listed.
    scan_cost : float
        Per scheduled imaging visit (``n_scans`` of each line).
    labs_per_month : float
        Per month on active treatment (``on_treatment_months``).
    ae_costs : mapping AE type -> one-off cost per grade 3/4 event; ``ae_cost_default`` otherwise.
    bsc_per_month : float
        Per month on a terminal (best supportive care) line.
    end_of_life : float
        One-off at disease death.
    utility_set, utility_pf, utility_pd : str, float, float
        Chosen set and its progression-free / progressed utilities (per year).
    ae_state_utility : mapping AE type -> utility of "stable disease with that AE"
        (``utilities.sets.<set>.ae_states``, e.g. Swinburn et al. 2012: hand-foot syndrome 0.58,
        stomatitis 0.56). For these AE types the decrement is ``utility_pf - u_AE``.
    ae_disutility : mapping AE type -> utility decrement over the AE duration, for AE types the
        set has no state for; ``ae_disutility_default`` for any other type.
    uncontrolled_syndrome : float
        Utility decrement of a patient with a functioning tumour while the syndrome is not
        controlled (:func:`sim.economics.qalys.effect_accruals`).
    discount_costs, discount_effects : float
        Annual rates ``d``; continuous monthly rate ``r = ln(1 + d) / 12``.
    horizon_months : float
        Accrual stops here (``inf`` = the model horizon, i.e. lifetime).
    wtp : tuple of float
        Willingness-to-pay thresholds (currency per QALY) for NMB / NHB.
    wtp_grid : numpy array
        Thresholds for acceptability curves.
    perspective : str
        Costing perspective (``economics.perspective``), reported in the methods.
    sources, ranges, rationale : mappings keyed by dotted config key.
    config : dict
        The plain config the spec was built from (:meth:`with_values` edits it).
    """

    currency: str
    price_year: int
    drugs: Mapping[str, DrugCost]
    therapy_drugs: Mapping[str, str | None]
    scan_cost: float
    labs_per_month: float
    ae_costs: Mapping[str, float]
    ae_cost_default: float
    bsc_per_month: float
    end_of_life: float
    utility_set: str
    utility_pf: float
    utility_pd: float
    ae_state_utility: Mapping[str, float]
    ae_disutility: Mapping[str, float]
    ae_disutility_default: float
    discount_costs: float
    discount_effects: float
    discount_alternatives: tuple[float, ...]
    horizon_months: float
    wtp: tuple[float, ...]
    wtp_grid: np.ndarray = field(compare=False)
    perspective: str = ""
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict, compare=False)
    rationale: Mapping[str, str] = field(default_factory=dict, compare=False)
    config: Mapping = field(default_factory=dict, compare=False, repr=False)
    #: utility decrement (per year) while a functional syndrome is uncontrolled (``utilities.uncontrolled_syndrome``)
    uncontrolled_syndrome: float = 0.0

    def __post_init__(self):
        k = KEY
        for th, d in self.therapy_drugs.items():
            check(d is None or d in self.drugs, f"{k}.therapy_drugs.{th}", d, f"must be null or one of {sorted(self.drugs)}")
        _num(f"{k}.monitoring.scan", self.scan_cost)
        _num(f"{k}.monitoring.labs_per_month", self.labs_per_month)
        for ae, c in self.ae_costs.items():
            _num(f"{k}.adverse_events.{ae}", c)
        _num(f"{k}.adverse_events.default", self.ae_cost_default)
        _num(f"{k}.bsc_per_month", self.bsc_per_month)
        _num(f"{k}.end_of_life", self.end_of_life)
        _utility(f"{k}.utilities.sets.{self.utility_set}.progression_free", self.utility_pf)
        _utility(f"{k}.utilities.sets.{self.utility_set}.progressed", self.utility_pd)
        for ae, u in self.ae_state_utility.items():
            key = f"{k}.utilities.sets.{self.utility_set}.ae_states.{ae}"
            _utility(key, u)
            check(u <= self.utility_pf, key, u,
                  f"must not exceed the set's progression_free utility {self.utility_pf:g} (stable disease with the AE)")
        for ae, d in {**self.ae_disutility, "default": self.ae_disutility_default}.items():
            check(isinstance(d, (int, float)) and 0.0 <= d <= 1.0, f"{k}.utilities.ae_disutility.{ae}", d,
                  "must be a utility decrement in [0, 1]")
        _rate(f"{k}.discount.costs", self.discount_costs)
        _rate(f"{k}.discount.effects", self.discount_effects)
        for i, a in enumerate(self.discount_alternatives):
            _rate(f"{k}.discount.alternatives[{i}]", a)
        check(self.horizon_months > 0, f"{k}.horizon_years", self.horizon_months / MONTHS_PER_YEAR, "must be > 0 (or null)")
        check(len(self.wtp) > 0, f"{k}.wtp", list(self.wtp), "must list at least one threshold")
        for w in self.wtp:
            _num(f"{k}.wtp", w, 0.0, lo_open=True)
        grid = np.asarray(self.wtp_grid, dtype=float)
        check(grid.ndim == 1 and grid.size > 0, f"{k}.wtp_grid", self.config.get("wtp_grid", list(grid)),
              "must hold at least one threshold")
        check(bool(np.all(np.isfinite(grid)) and np.all(grid >= 0)), f"{k}.wtp_grid", list(grid), "must be finite and >= 0")
        for key, (lo, hi) in self.ranges.items():
            check(lo <= hi, f"{k}.ranges.{key}", (lo, hi), "must have low <= high")

    # -- convenience -------------------------------------------------------------------
    def ae_cost(self, ae: str) -> float:
        """One-off management cost of one grade 3/4 event of type ``ae``."""
        return self.ae_costs.get(ae, self.ae_cost_default)

    def ae_decrement(self, ae: str) -> float:
        """Utility decrement while an AE of type ``ae`` lasts: ``utility_pf - u_AE`` when the utility
        set has a state for ``ae`` (``ae_states``), else ``ae_disutility[ae]`` (or the default)."""
        if ae in self.ae_state_utility:
            return self.utility_pf - self.ae_state_utility[ae]
        return self.ae_disutility.get(ae, self.ae_disutility_default)

    def drug_for(self, therapy: str) -> DrugCost | None:
        """The :class:`DrugCost` of ``therapy`` (``None``: no acquisition cost)."""
        if therapy not in self.therapy_drugs:
            raise UserError(f"{KEY}.therapy_drugs has no entry for therapy {therapy!r} "
                            f"(add it, null for no drug cost), got {sorted(self.therapy_drugs)}")
        d = self.therapy_drugs[therapy]
        return None if d is None else self.drugs[d]

    def value(self, key: str):
        """The config value at dotted ``key`` (e.g. ``'drugs.everolimus.pack_price'``)."""
        node = self.config
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise UserError(f"{KEY}: no parameter {key!r}")
            node = node[part]
        return node

    def with_values(self, values: Mapping[str, object]) -> "EconomicsSpec":
        """A new, re-validated spec with config values replaced at dotted keys.

        Examples
        --------
        >>> spec.with_values({"discount.costs": 0.0, "utilities.set": "meng2017"})  # doctest: +SKIP
        """
        cfg = copy.deepcopy(dict(self.config))
        for key, v in values.items():
            node, parts = cfg, key.split(".")
            for part in parts[:-1]:
                if not isinstance(node.get(part), Mapping):
                    raise UserError(f"{KEY}: no parameter {key!r}")
                node = node[part]
            if parts[-1] not in node:
                raise UserError(f"{KEY}: no parameter {key!r}")
            node[parts[-1]] = v
        return EconomicsSpec.from_config(cfg)

    @property
    def parameters(self) -> list[str]:
        """Dotted keys of the numeric parameters that have a sensitivity range."""
        return list(self.ranges)

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Mapping) -> "EconomicsSpec":
        """Build and validate from the plain ``economics`` config mapping."""
        k = KEY
        check(isinstance(cfg, Mapping), k, cfg, "must be a mapping")
        cfg = _plain(cfg)
        for req in ("drugs", "therapy_drugs", "monitoring", "utilities", "discount", "wtp"):
            check(req in cfg, f"{k}.{req}", None, "is required")
        drugs_cfg = mapping(f"{k}.drugs", cfg["drugs"], allow_none=True)
        drugs = {n: DrugCost.from_config(n, c) for n, c in drugs_cfg.items()}
        td = cfg["therapy_drugs"] or {}
        check(isinstance(td, Mapping), f"{k}.therapy_drugs", td, "must be a mapping therapy -> drug")
        for th, d in td.items():
            check(d is None or isinstance(d, str), f"{k}.therapy_drugs.{th}", d, "must be null or a drug name")
        mon = mapping(f"{k}.monitoring", cfg["monitoring"], allow_none=True)
        aes = dict(mapping(f"{k}.adverse_events", cfg.get("adverse_events"), allow_none=True))
        ae_default = aes.pop("default", 0.0)
        ut = mapping(f"{k}.utilities", cfg["utilities"], allow_none=True)
        sets = mapping(f"{k}.utilities.sets", ut.get("sets"), allow_none=True)
        uset = ut.get("set")
        check(isinstance(uset, str) and uset in sets, f"{k}.utilities.set", uset, f"must be one of {sorted(sets)}")
        for name, s in sets.items():
            for state in ("progression_free", "progressed"):
                check(isinstance(s, Mapping) and state in s, f"{k}.utilities.sets.{name}.{state}", None, "is required")
                _utility(f"{k}.utilities.sets.{name}.{state}", s[state])
            unknown = sorted(set(s) - {"progression_free", "progressed", "ae_states"})
            check(not unknown, f"{k}.utilities.sets.{name}", unknown,
                  "has unknown keys (allowed: progression_free, progressed, ae_states)")
            st = s.get("ae_states") or {}
            check(isinstance(st, Mapping), f"{k}.utilities.sets.{name}.ae_states", st,
                  "must map AE types to utilities of stable disease with that AE")
            for ae, u in st.items():
                _utility(f"{k}.utilities.sets.{name}.ae_states.{ae}", u)
        dis = dict(mapping(f"{k}.utilities.ae_disutility", ut.get("ae_disutility"), allow_none=True))
        dis_default = dis.pop("default", 0.0)
        disc = mapping(f"{k}.discount", cfg["discount"], allow_none=True)
        alternatives = disc.get("alternatives") or []
        check(isinstance(alternatives, (list, tuple)), f"{k}.discount.alternatives", alternatives,
              "must be a list of annual rates")
        horizon = cfg.get("horizon_years")
        horizon_m = math.inf if horizon is None else _num(f"{k}.horizon_years", horizon, 0.0, lo_open=True) * MONTHS_PER_YEAR
        wtp = cfg["wtp"]
        check(wtp is None or isinstance(wtp, (int, float, list, tuple)) and not isinstance(wtp, bool), f"{k}.wtp", wtp,
              "must be a threshold or a list of thresholds (currency per QALY)")
        wtp = [wtp] if isinstance(wtp, (int, float)) else list(wtp or [])
        check(len(wtp) > 0, f"{k}.wtp", cfg["wtp"], "must list at least one threshold")
        wtp = tuple(_num(f"{k}.wtp", w, 0.0, lo_open=True) for w in wtp)
        grid = _grid(cfg.get("wtp_grid", list(wtp)))
        ranges, why = {}, {}
        for key, r in mapping(f"{k}.ranges", cfg.get("ranges"), allow_none=True).items():
            check(isinstance(r, Mapping) and "low" in r and "high" in r, f"{k}.ranges.{key}", r, "must give low and high")
            lo = _num(f"{k}.ranges.{key}.low", r["low"], None)
            hi = _num(f"{k}.ranges.{key}.high", r["high"], None)
            ranges[key], why[key] = (lo, hi), str(r.get("why", ""))
        for ae, c in aes.items():
            _num(f"{k}.adverse_events.{ae}", c)
        for ae, d in dis.items():
            _num(f"{k}.utilities.ae_disutility.{ae}", d, 0.0, 1.0)
        parse_dispensing(cfg)          # drug_costing and pack-level dispensing (sim/economics/dispensing.py)
        price_year = cfg.get("price_year", 0)
        check(isinstance(price_year, int) and not isinstance(price_year, bool), f"{k}.price_year", price_year,
              "must be a year (whole number)")
        return cls(
            currency=str(cfg.get("currency", "GBP")),
            price_year=price_year,
            drugs=drugs,
            therapy_drugs={str(t): (None if d is None else str(d)) for t, d in td.items()},
            scan_cost=_num(f"{k}.monitoring.scan", mon.get("scan", 0.0)),
            labs_per_month=_num(f"{k}.monitoring.labs_per_month", mon.get("labs_per_month", 0.0)),
            ae_costs={a: float(c) for a, c in aes.items()},
            ae_cost_default=_num(f"{k}.adverse_events.default", ae_default),
            bsc_per_month=_num(f"{k}.bsc_per_month", cfg.get("bsc_per_month", 0.0)),
            end_of_life=_num(f"{k}.end_of_life", cfg.get("end_of_life", 0.0)),
            utility_set=str(uset),
            utility_pf=float(sets[uset]["progression_free"]),
            utility_pd=float(sets[uset]["progressed"]),
            ae_state_utility={str(a): float(u) for a, u in (sets[uset].get("ae_states") or {}).items()},
            ae_disutility={a: float(d) for a, d in dis.items()},
            ae_disutility_default=_num(f"{k}.utilities.ae_disutility.default", dis_default, 0.0, 1.0),
            discount_costs=_rate(f"{k}.discount.costs", disc.get("costs")),
            discount_effects=_rate(f"{k}.discount.effects", disc.get("effects")),
            discount_alternatives=tuple(_rate(f"{k}.discount.alternatives[{i}]", a)
                                        for i, a in enumerate(alternatives)),
            horizon_months=horizon_m,
            wtp=wtp,
            wtp_grid=grid,
            perspective=str(cfg.get("perspective") or ""),
            sources=dict(mapping(f"{k}.sources", cfg.get("sources"), allow_none=True)),
            ranges=ranges,
            rationale=why,
            config=cfg,
            uncontrolled_syndrome=_num(f"{k}.utilities.uncontrolled_syndrome", ut.get("uncontrolled_syndrome", 0.0),
                                       0.0, 1.0),
        )


def _plain(cfg) -> dict:
    """Plain dict (resolves an OmegaConf node)."""
    try:
        if isinstance(cfg, DictConfig):
            return OmegaConf.to_container(cfg, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    return copy.deepcopy(dict(cfg))


def _grid(g) -> np.ndarray:
    """WTP grid from a list or ``{start, stop, step}`` (stop included)."""
    k = f"{KEY}.wtp_grid"
    if isinstance(g, Mapping):
        for f in ("start", "stop", "step"):
            check(f in g, f"{k}.{f}", None, "is required")
        start, stop = _num(f"{k}.start", g["start"]), _num(f"{k}.stop", g["stop"])
        step = _num(f"{k}.step", g["step"], 0.0, lo_open=True)
        check(stop >= start, k, g, "is empty (stop < start)")
        n = int(math.floor((stop - start) / step + 1e-9)) + 1
        return start + step * np.arange(n)
    check(isinstance(g, (list, tuple)) and len(g) > 0, k, g, "must hold at least one threshold")
    return np.asarray([_num(f"{k}[{i}]", w) for i, w in enumerate(g)], dtype=float)


def load_spec(name: str = "uk_nhs", overrides: Mapping[str, object] | None = None) -> EconomicsSpec:
    """Spec from ``configs/economics/<name>.yaml`` (or a path), with optional dotted overrides."""
    path = Path(name)
    if not path.suffix:
        path = CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"economics config not found: {path}")
    spec = EconomicsSpec.from_config(OmegaConf.to_container(OmegaConf.load(path), resolve=True))
    return spec.with_values(overrides) if overrides else spec
