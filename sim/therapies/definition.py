"""One therapy definition, built from its config file ``configs/therapy/<name>.yaml``.

A therapy knows its efficacy (PFS distribution on the line, covariate hazard ratios,
objective response), its toxicity (grade 3/4 adverse events with onset and consequence),
its schedule (fixed course length where one exists) and its eligibility rules. It knows
nothing about SimPy, costs or strategies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from sim.distributions import SurvivalDistribution
from sim.errors import check, mapping, number, probability, required, sequence_of_str
from sim.patients.schema import FUNCTIONAL
from sim.therapies.pfs import build_pfs
from sim.units import DAYS_PER_MONTH, weeks

KINDS = ("active", "observation", "terminal")
_AE_STREAMS: dict[str, tuple[str, str]] = {}
CONSEQUENCES = ("none", "dose_reduction", "interruption", "discontinuation")
#: binary covariates that can modify PFS hazards (see :func:`sim.kernel.line.covariates`)
COVARIATES = ("rapid_tempo", "ki67_ge10", "hepatic_gt25", "hepatic_gt50", "grade_ge2", "grade_g3", "ecog_ge2",
              "mgmt_low")
#: exposure classes (prior-exposure hazard ratios name them)
EXPOSURE_CLASSES = ("none", "ssa", "mtor", "tki", "chemotherapy", "prrt", "liver_directed")
#: covariates that can modify response probability
RESPONSE_COVARIATES = ("mgmt_low",)


@dataclass(frozen=True)
class AdverseEvent:
    """A grade 3/4 adverse event type of a therapy.

    It occurs on the line with probability ``probability`` (``probability_diabetes`` for
    patients with diabetes / baseline hyperglycaemia, when given; only in patients whose functional
    status is ``functional`` when that is given, e.g. hypoglycaemia in insulinoma) at an onset time drawn
    from an exponential distribution with median ``onset_median_weeks``, provided the
    patient is still on treatment then. Its consequence is drawn from ``consequence``
    (probabilities over none / dose_reduction / interruption / discontinuation): a dose
    reduction multiplies the dose level by ``reduced_intensity``; an interruption stops
    the drug for ``interruption_weeks``; a discontinuation ends the line. The AE lasts
    ``duration_weeks`` (used for disutilities downstream).
    """

    name: str
    probability: float
    probability_diabetes: float | None
    onset_median_weeks: float
    consequence: tuple[tuple[str, float], ...]
    reduced_intensity: float
    interruption_weeks: float
    duration_weeks: float
    #: functional status (:data:`~sim.patients.schema.FUNCTIONAL`) the AE is restricted to (None: every patient)
    functional: str | None = None

    @property
    def stream(self) -> str:
        """Random stream of occurrence (slot 2(line-1)) and onset (slot 2(line-1)+1)."""
        return _AE_STREAMS.setdefault(self.name, (f"ae/{self.name}", f"ae_consequence/{self.name}"))[0]

    @property
    def consequence_stream(self) -> str:
        """Random stream choosing the consequence (slot line-1)."""
        return _AE_STREAMS.setdefault(self.name, (f"ae/{self.name}", f"ae_consequence/{self.name}"))[1]

    def probability_for(self, diabetes: bool) -> float:
        return self.probability_diabetes if (diabetes and self.probability_diabetes is not None) else self.probability

    @classmethod
    def from_config(cls, key: str, name: str, cfg: Mapping) -> "AdverseEvent":
        cfg = mapping(key, cfg)
        cons = dict(mapping(f"{key}.consequence", cfg.get("consequence"), allow_none=True) or {"none": 1.0})
        for c, p in cons.items():
            check(c in CONSEQUENCES, f"{key}.consequence", c, f"must be one of {list(CONSEQUENCES)}")
            probability(f"{key}.consequence.{c}", p)
        check(abs(sum(cons.values()) - 1) < 1e-6, f"{key}.consequence", cons, "probabilities must sum to 1")
        pd_ = cfg.get("probability_diabetes")
        func = cfg.get("functional")
        check(func is None or func in FUNCTIONAL, f"{key}.functional", func, f"must be null or one of {list(FUNCTIONAL)}")
        return cls(
            name=name,
            probability=probability(f"{key}.probability", required(cfg, key, "probability")),
            probability_diabetes=None if pd_ is None else probability(f"{key}.probability_diabetes", pd_),
            onset_median_weeks=number(f"{key}.onset_median_weeks", required(cfg, key, "onset_median_weeks"), 0,
                                      lo_open=True),
            consequence=tuple((c, float(p)) for c, p in cons.items()),
            reduced_intensity=probability(f"{key}.reduced_intensity", cfg.get("reduced_intensity", 1.0)),
            interruption_weeks=number(f"{key}.interruption_weeks", cfg.get("interruption_weeks", 0.0), 0),
            duration_weeks=number(f"{key}.duration_weeks", cfg.get("duration_weeks", 0.0), 0),
            functional=func,
        )


@dataclass(frozen=True)
class LateToxicity:
    """A late toxicity of a therapy (e.g. a myeloid neoplasm years after PRRT), drawn once per
    exposure and lasting beyond the line.

    It occurs with ``probability``, at an onset uniform between ``onset_min_months`` and
    ``onset_max_months`` after the line's start; it is then recorded as an ``adverse_event``
    (type ``name``, lasting ``duration_weeks``: its cost and disutility downstream) on whatever
    line the patient is on at that time, and with probability ``fatal_share`` the patient dies
    of it (cause ``treatment``) an exponential time of median ``survival_median_months`` after
    the onset, unless something else comes first.
    """

    name: str
    probability: float
    onset_min_months: float
    onset_max_months: float
    fatal_share: float
    survival_median_months: float
    duration_weeks: float

    @classmethod
    def from_config(cls, key: str, name: str, cfg: Mapping) -> "LateToxicity":
        cfg = mapping(key, cfg)
        lo = number(f"{key}.onset_min_months", required(cfg, key, "onset_min_months"), 0)
        hi = number(f"{key}.onset_max_months", required(cfg, key, "onset_max_months"), 0)
        check(hi >= lo, f"{key}.onset_max_months", hi, f"must be >= onset_min_months ({lo})")
        return cls(
            name=name,
            probability=probability(f"{key}.probability", required(cfg, key, "probability")),
            onset_min_months=lo, onset_max_months=hi,
            fatal_share=probability(f"{key}.fatal_share", required(cfg, key, "fatal_share")),
            survival_median_months=number(f"{key}.survival_median_months",
                                          required(cfg, key, "survival_median_months"), 0, lo_open=True),
            duration_weeks=number(f"{key}.duration_weeks", cfg.get("duration_weeks", 0.0), 0),
        )


@dataclass(frozen=True)
class Rechallenge:
    """Efficacy of re-exposure relative to a first exposure to therapy ``of``.

    PFS on re-exposure is the first-exposure PFS distribution scaled in time (accelerated
    failure time) by ``TR = time_ratio * (pfs_first / reference_pfs_first)^beta_prior_pfs
    * (time_off / reference_time_off)^beta_time_off * response_time_ratio^(r - reference_response_share)``;
    the response probability is the first exposure's times ``response_ratio``. ``pfs_first``
    is the PFS (months) achieved on the most recent exposure to ``of``; ``time_off`` is the
    time since it stopped; ``r`` is 1 if it gave an objective response. ``time_ratio`` applies
    after ``reference_intervening_lines`` active lines between the exposures (the line effect
    counts lines beyond it).
    """

    of: str
    time_ratio: float
    response_ratio: float
    beta_prior_pfs: float
    beta_time_off: float
    reference_pfs_first: float
    reference_time_off: float
    response_time_ratio: float = 1.0
    reference_response_share: float = 0.0
    reference_intervening_lines: float = 1.0

    def time_ratio_for(self, pfs_first: float, time_off: float, responded: float | None = None) -> float:
        tr = self.time_ratio
        if self.beta_prior_pfs:
            tr *= (max(pfs_first, 1e-6) / self.reference_pfs_first) ** self.beta_prior_pfs
        if self.beta_time_off:
            tr *= (max(time_off, 1e-6) / self.reference_time_off) ** self.beta_time_off
        r = self.reference_response_share if responded is None else float(responded)
        return tr * self.response_time_ratio ** (r - self.reference_response_share)

    @classmethod
    def from_config(cls, key: str, cfg: Mapping) -> "Rechallenge":
        cfg = mapping(key, cfg)
        of = required(cfg, key, "of")
        check(isinstance(of, str), f"{key}.of", of, "must be a therapy name")
        return cls(
            of=of,
            time_ratio=number(f"{key}.time_ratio", required(cfg, key, "time_ratio"), 0, lo_open=True),
            response_ratio=number(f"{key}.response_ratio", required(cfg, key, "response_ratio"), 0),
            beta_prior_pfs=number(f"{key}.beta_prior_pfs", cfg.get("beta_prior_pfs", 0.0)),
            beta_time_off=number(f"{key}.beta_time_off", cfg.get("beta_time_off", 0.0)),
            reference_pfs_first=number(f"{key}.reference_pfs_first", required(cfg, key, "reference_pfs_first"), 0,
                                       lo_open=True),
            reference_time_off=number(f"{key}.reference_time_off", required(cfg, key, "reference_time_off"), 0,
                                      lo_open=True),
            response_time_ratio=number(f"{key}.response_time_ratio", cfg.get("response_time_ratio", 1.0), 0,
                                       lo_open=True),
            reference_response_share=probability(f"{key}.reference_response_share",
                                                 cfg.get("reference_response_share", 0.0)),
            reference_intervening_lines=number(f"{key}.reference_intervening_lines",
                                               cfg.get("reference_intervening_lines", 1.0), 0),
        )


@dataclass(frozen=True)
class Therapy:
    """A therapy as used on one line of a strategy.

    ``kind``: ``active`` (drug or procedure; PFS = time to progression or death),
    ``observation`` (no anticancer therapy, progression still monitored) or ``terminal``
    (best supportive care until death: its time distribution is time to disease death).
    """

    name: str
    label: str
    kind: str
    pfs: SurvivalDistribution
    covariate_hr: Mapping[str, float]
    response_probability: float
    response_by: Mapping[str, tuple[float, float]]
    adverse_events: tuple[AdverseEvent, ...]
    course_months: float
    doses: int | None
    dose_interval_months: float | None
    requires_sstr_positive: bool
    exclude_functional: tuple[str, ...]
    requires_prior_progression_on: str | None
    rechallenge: Rechallenge | None
    sources: Mapping[str, str] = field(default_factory=dict)
    #: exposure class (:data:`EXPOSURE_CLASSES`) seen by later lines' ``prior_exposure_hr``
    exposure_class: str = "none"
    #: progression hazard ratio when the patient was exposed before to a class
    prior_exposure_hr: Mapping[str, float] = field(default_factory=dict)
    #: typical number of active lines before this therapy in its source trial (line effect)
    reference_prior_lines: float = 0.0
    #: covariate prevalences of this therapy's source population where they differ from
    #: ``model.covariate_reference`` (its fit describes that population; effects are centred on it)
    covariate_reference: Mapping[str, float] = field(default_factory=dict)
    #: probability that a line of this therapy controls a functional syndrome, by functional status
    #: (statuses not listed: never controlled; the patient's syndrome is uncontrolled on other lines)
    symptom_control: Mapping[str, float] = field(default_factory=dict)
    #: probability of death from the procedure (e.g. 30-day mortality of an embolisation), 0 if none
    procedure_death_probability: float = 0.0
    #: months after the line start within which a procedure death happens (uniformly)
    procedure_death_window_months: float = 0.0
    #: late toxicities (drawn once per exposure, acting after the line): :class:`LateToxicity`
    late_toxicity: tuple = ()

    def reference(self, model_reference: Mapping) -> dict:
        """The prevalences the therapy's covariate effects are centred on: ``model_reference``
        updated with the therapy's own ``covariate_reference``."""
        return {**model_reference, **self.covariate_reference}

    def log_hazard_multiplier(self, x: Mapping, reference: Mapping,
                              prognostic: Mapping | None = None) -> "np.ndarray | float":
        """``sum_c log(hr_c) (x_c - ref_c)``: covariate effect on the PFS hazard, centred on
        the reference population (``x_c`` indicator values or arrays of them).

        Parameters
        ----------
        x : mapping
            Covariate indicators (booleans or boolean arrays) by name.
        reference : mapping
            ``model.covariate_reference``; the therapy's own ``covariate_reference`` overrides it.
        prognostic : mapping, optional
            ``model.prognostic_hr``: hazard ratios of every non-terminal line, multiplied with the
            therapy's ``covariate_hr`` (ignored on a terminal line).

        Returns
        -------
        float or ndarray
            The log hazard multiplier per patient.
        """
        ref = self.reference(reference)
        hrs = dict(self.covariate_hr)
        if prognostic and self.kind != "terminal":
            for c, h in prognostic.items():
                hrs[c] = hrs.get(c, 1.0) * h
        out = 0.0
        for c, hr in hrs.items():
            out = out + math.log(hr) * (np.asarray(x[c], dtype=float) - ref.get(c, 0.0))
        return out

    @classmethod
    def from_config(cls, name: str, cfg: Mapping) -> "Therapy":
        key = f"therapies.{name}"
        cfg = mapping(key, cfg)
        kind = cfg.get("kind", "active")
        check(isinstance(kind, str) and kind in KINDS, f"{key}.kind", kind, f"must be one of {list(KINDS)}")
        check("pfs" in cfg, f"{key}.pfs", None, "is required")
        pfs = build_pfs(f"{key}.pfs", cfg["pfs"])
        hrs = {}
        for cov, hr in mapping(f"{key}.covariate_hr", cfg.get("covariate_hr"), allow_none=True).items():
            check(cov in COVARIATES, f"{key}.covariate_hr", cov, f"must name one of {list(COVARIATES)}")
            hrs[cov] = number(f"{key}.covariate_hr.{cov}", hr, 0, lo_open=True)
        resp = mapping(f"{key}.response", cfg.get("response"), allow_none=True)
        by = {}
        for cov, pair in mapping(f"{key}.response.by", resp.get("by"), allow_none=True).items():
            check(cov in RESPONSE_COVARIATES, f"{key}.response.by", cov, f"must name one of {list(RESPONSE_COVARIATES)}")
            k = f"{key}.response.by.{cov}"
            pair = mapping(k, pair)
            by[cov] = (probability(f"{k}.if_true", required(pair, k, "if_true")),
                       probability(f"{k}.if_false", required(pair, k, "if_false")))
        aes = tuple(
            AdverseEvent.from_config(f"{key}.adverse_events.{ae}", ae, spec)
            for ae, spec in mapping(f"{key}.adverse_events", cfg.get("adverse_events"), allow_none=True).items()
        )
        course = mapping(f"{key}.course", cfg.get("course"), allow_none=True)
        doses, interval = course.get("doses"), course.get("interval_weeks")
        if doses is not None:
            check(isinstance(doses, int) and not isinstance(doses, bool) and doses >= 1, f"{key}.course.doses", doses,
                  "must be a whole number >= 1")
            interval = number(f"{key}.course.interval_weeks", interval, 0, lo_open=True)
        elig = mapping(f"{key}.eligibility", cfg.get("eligibility"), allow_none=True)
        excl = tuple(sequence_of_str(f"{key}.eligibility.exclude_functional", elig.get("exclude_functional"),
                                     allow_none=True))
        for f in excl:
            check(f in FUNCTIONAL, f"{key}.eligibility.exclude_functional", f, f"must be one of {list(FUNCTIONAL)}")
        rech = cfg.get("rechallenge")
        sstr = elig.get("requires_sstr_positive", False)
        check(isinstance(sstr, bool), f"{key}.eligibility.requires_sstr_positive", sstr, "must be true or false")
        need = elig.get("requires_prior_progression_on")
        check(need is None or isinstance(need, str), f"{key}.eligibility.requires_prior_progression_on", need,
              "must be null or a therapy name")
        klass = cfg.get("class", "none")
        check(isinstance(klass, str) and klass in EXPOSURE_CLASSES, f"{key}.class", klass,
              f"must be one of {list(EXPOSURE_CLASSES)}")
        prior_hr = {}
        for c, h in mapping(f"{key}.prior_exposure_hr", cfg.get("prior_exposure_hr"), allow_none=True).items():
            check(c in EXPOSURE_CLASSES, f"{key}.prior_exposure_hr", c, f"must name one of {list(EXPOSURE_CLASSES)}")
            prior_hr[c] = number(f"{key}.prior_exposure_hr.{c}", h, 0, lo_open=True)
        le = mapping(f"{key}.line_effect", cfg.get("line_effect"), allow_none=True)
        ref_lines = number(f"{key}.line_effect.reference_prior_lines", le.get("reference_prior_lines", 0.0), 0)
        cov_ref = {}
        for c, v in mapping(f"{key}.covariate_reference", cfg.get("covariate_reference"), allow_none=True).items():
            check(c in COVARIATES, f"{key}.covariate_reference", c, f"must name one of {list(COVARIATES)}")
            cov_ref[c] = probability(f"{key}.covariate_reference.{c}", v)
        control = {}
        for f, v in mapping(f"{key}.symptom_control", cfg.get("symptom_control"), allow_none=True).items():
            check(f in FUNCTIONAL[1:], f"{key}.symptom_control", f, f"must name one of {list(FUNCTIONAL[1:])}")
            control[f] = probability(f"{key}.symptom_control.{f}", v)
        late = tuple(LateToxicity.from_config(f"{key}.late_toxicity.{n}", n, spec) for n, spec in
                     mapping(f"{key}.late_toxicity", cfg.get("late_toxicity"), allow_none=True).items())
        proc = mapping(f"{key}.procedure_death", cfg.get("procedure_death"), allow_none=True)
        p_proc = probability(f"{key}.procedure_death.probability", proc.get("probability", 0.0))
        window = number(f"{key}.procedure_death.window_days", proc.get("window_days", 30.0 if p_proc > 0 else 0.0), 0,
                        lo_open=p_proc > 0)
        return cls(
            name=name,
            label=str(cfg.get("label", name)),
            kind=kind,
            pfs=pfs,
            covariate_hr=hrs,
            response_probability=probability(f"{key}.response.probability", resp.get("probability", 0.0)),
            response_by=by,
            adverse_events=aes,
            course_months=weeks(doses * interval) if doses is not None else math.inf,
            doses=doses,
            dose_interval_months=weeks(interval) if doses is not None else None,
            requires_sstr_positive=sstr,
            exclude_functional=excl,
            requires_prior_progression_on=need,
            rechallenge=None if rech is None else Rechallenge.from_config(f"{key}.rechallenge", rech),
            sources=dict(mapping(f"{key}.sources", cfg.get("sources"), allow_none=True)),
            exposure_class=klass,
            prior_exposure_hr=prior_hr,
            reference_prior_lines=ref_lines,
            covariate_reference=cov_ref,
            symptom_control=control,
            procedure_death_probability=p_proc,
            procedure_death_window_months=window / DAYS_PER_MONTH,
            late_toxicity=late,
        )
