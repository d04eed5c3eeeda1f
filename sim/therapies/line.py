"""What happens to one patient on one line of therapy: the clinical rules, pure functions.

:func:`plan_line` turns a patient's uniforms for a line into the line's dated events
(start, grade 3/4 toxicities and their consequences, end of a fixed course, true
progression, progression detected at a scan, death) and the line's summary record. The
engine only replays those dates on its clock; nothing here knows about SimPy.

Randomness, all by inverse transform of the patient's named streams (slot = line - 1):

* ``pfs``: PFS uniform, tied across lines by the patient's frailty (Gaussian copula:
  ``u = Phi(sqrt(rho) z + sqrt(1 - rho) Phi^{-1}(u_raw))``, ``z`` from stream ``frailty``),
  so PFS on successive lines is rank-correlated while each line keeps its fitted marginal;
* ``pfs_event``: whether the PFS event is a death rather than a progression;
* ``response``: objective response; ``ae/<name>`` (slots ``2(line-1)`` occurrence and
  ``2(line-1)+1`` onset) and ``ae_consequence/<name>``: toxicity.

Covariates act on the PFS hazard proportionally, centred on the reference population of
the fit: ``HR_i = prod_c hr_c^(x_ic - ref_c)`` so a cohort like the trials' keeps the
fitted PFS on average.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr, ndtri

from sim.fastdraw import scalar_sampler
from sim.therapies.definition import Therapy
from sim.units import weeks


@dataclass(frozen=True)
class ModelRules:
    """Model-level settings that apply to every line (``configs/model``)."""

    imaging_interval_months: float
    frailty_rho: float
    pre_progression_death_share: float
    covariate_reference: dict
    horizon_months: float


@dataclass
class LineHistory:
    """A line already given (or reported as prior therapy), as seen by later lines."""

    therapy: str
    start: float
    end: float
    reason: str          # progression | toxicity | death | horizon | prior
    pfs: float           # months from start to detected progression (nan if not progressed)


@dataclass(slots=True)
class LineResult:
    """The resolved line: dated events and the summary row of ``lines.parquet``."""

    events: list = field(default_factory=list)   # (abs time, event, detail, value)
    record: dict = field(default_factory=dict)
    end: float = 0.0
    reason: str = ""
    death_time: float = math.inf
    death_cause: str = ""


def covariates(p) -> dict:
    """Binary covariates that modify PFS hazards, from a cohort row (mapping)."""
    return {
        "rapid_tempo": p["tempo"] == "rapid",
        "ki67_ge10": p["ki67"] >= 10.0,
        "hepatic_gt25": p["hepatic_burden"] != "le25",
        "grade_g3": p["grade"] == "G3",
        "ecog_ge2": p["ecog"] >= 2,
        "mgmt_low": bool(p["mgmt_low"]),
    }


def hazard_multiplier(therapy: Therapy, cov: dict, reference: dict) -> float:
    """``prod_c hr_c^(x_c - ref_c)`` over the therapy's covariate hazard ratios."""
    return math.exp(float(therapy.log_hazard_multiplier(cov, reference)))


def eligible(therapy: Therapy, patient, history: list[LineHistory]) -> str | None:
    """``None`` if the patient may receive ``therapy`` now, else the reason not."""
    if therapy.requires_sstr_positive and not patient["sstr_positive"]:
        return "sstr_negative"
    if patient["functional_status"] in therapy.exclude_functional:
        return f"excluded_{patient['functional_status']}"
    need = therapy.requires_prior_progression_on
    if need and not any(h.therapy == need and h.reason in ("progression", "prior") for h in history):
        return f"no_prior_progression_on_{need}"
    return None


def frailty_uniforms(u_raw, z, rho: float):
    """Gaussian-copula mixing of PFS uniforms with the patient frailty ``z`` (vectorised).

    ``u = Phi(sqrt(rho) z + sqrt(1 - rho) Phi^{-1}(u_raw))``: exactly uniform for each line,
    with correlation ``rho`` between the latent normals of any two lines of a patient.
    ``u_raw`` has shape (n, slots), ``z`` shape (n,).
    """
    u_raw = np.asarray(u_raw, float)
    if rho <= 0.0:
        return u_raw
    x = math.sqrt(rho) * np.asarray(z, float)[:, None] + math.sqrt(1.0 - rho) * ndtri(u_raw)
    return np.clip(ndtr(x), 1e-300, 1.0 - 1e-16)


def plan_line(therapy: Therapy, therapies: dict, patient, line: int, start: float, death_bg: float,
              history: list[LineHistory], U, u_pfs: float, rules: ModelRules) -> LineResult:
    """Resolve line number ``line`` (1-based) of ``therapy`` starting at time ``start``.

    ``U(stream, slot)`` returns the patient's uniform; ``u_pfs`` is the line's PFS uniform
    after frailty mixing (:func:`frailty_uniforms` of stream ``pfs`` at slot ``line - 1``);
    ``death_bg`` is the absolute time of other-cause death; ``therapies`` maps names to
    :class:`Therapy` (for rechallenge).
    """
    k = line - 1
    res = LineResult()
    ev = res.events
    ev.append((start, "line_start", therapy.name, float(line)))
    u = u_pfs
    cov = patient["_cov"] if "_cov" in patient else covariates(patient)
    hrs = patient.get("_hr")
    hr = hrs[therapy.name] if hrs is not None else hazard_multiplier(therapy, cov, rules.covariate_reference)
    p_resp = therapy.response_probability_for(cov)
    tr = 1.0
    if therapy.rechallenge is not None:
        rc = therapy.rechallenge
        first = next((h for h in reversed(history) if h.therapy == rc.of), None)
        pfs_first = first.pfs if first is not None and math.isfinite(first.pfs) else rc.reference_pfs_first
        time_off = start - first.end if first is not None and first.reason != "prior" else rc.reference_time_off
        tr = rc.time_ratio_for(pfs_first, time_off)
        p_resp = min(1.0, therapies[rc.of].response_probability_for(cov) * rc.response_ratio)
    t_event = tr * scalar_sampler(therapy.pfs)(u, hr)
    horizon = rules.horizon_months

    if therapy.kind == "terminal":
        death = min(start + t_event, death_bg)
        end = min(death, horizon)
        res.end, res.reason = end, ("death" if death <= horizon else "horizon")
        if death <= horizon:
            res.death_time, res.death_cause = death, ("disease" if start + t_event <= death_bg else "other")
            ev.append((death, "death", res.death_cause, math.nan))
        res.record = dict(line=line, therapy=therapy.name, start=start, end=end, reason=res.reason,
                          pfs_true=math.nan, progression_true=math.nan, progression_detected=math.nan,
                          pfs_months=math.nan, on_treatment_months=0.0, dose_intensity=math.nan,
                          response=False, n_ae=0, ae_types="", n_scans=0, time_ratio=tr)
        return res

    event_is_death = U("pfs_event", k) < rules.pre_progression_death_share
    dt = rules.imaging_interval_months
    if event_is_death:
        detect = t_event
        n_scans = int(t_event // dt)
    else:
        n_scans = max(1, math.ceil(t_event / dt - 1e-12))
        detect = n_scans * dt
    disease_death = start + t_event if event_is_death else math.inf
    death = min(death_bg, disease_death)
    responded = U("response", k) < p_resp

    # toxicity, in onset order, while on treatment
    on_drug = therapy.kind == "active"
    stop = min(start + therapy.course_months, start + detect, death, horizon)
    aes = []
    if on_drug:
        for ae in therapy.adverse_events:
            stream = ae.stream
            if U(stream, 2 * k) < ae.probability_for(bool(patient["diabetes"])):
                onset = start + ae.onset_months(U(stream, 2 * k + 1))
                aes.append((onset, ae, ae.pick_consequence(U(ae.consequence_stream, k))))
        aes.sort(key=lambda a: a[0])
    level, changes, ae_names, tox_stop = 1.0, [(start, 1.0)], [], math.inf
    for onset, ae, cons in aes:
        if onset >= min(stop, tox_stop):
            break
        ae_names.append(ae.name)
        ev.append((onset, "adverse_event", ae.name, ae.duration_weeks))
        if cons == "dose_reduction":
            level *= ae.reduced_intensity
            changes.append((onset, level))
            ev.append((onset, "dose_change", ae.name, level))
        elif cons == "interruption":
            back = onset + weeks(ae.interruption_weeks)
            changes.append((onset, 0.0))
            ev.append((onset, "interruption", ae.name, 0.0))
            if back < min(stop, tox_stop):
                changes.append((back, level))
                ev.append((back, "dose_change", "resume", level))
        elif cons == "discontinuation":
            tox_stop = onset
            ev.append((onset, "discontinuation", ae.name, math.nan))
    treat_end = min(stop, tox_stop) if on_drug else start

    if on_drug and math.isfinite(therapy.course_months) and start + therapy.course_months <= min(
            start + detect, death, horizon, tox_stop):
        ev.append((start + therapy.course_months, "course_end", therapy.name, float(therapy.doses or 0)))

    # how the line ends: first of toxicity stop, detection, death, horizon
    end = min(tox_stop, start + detect, death, horizon)
    if end == death and death <= horizon:
        reason = "death"
        res.death_time, res.death_cause = death, ("disease" if disease_death <= death_bg else "other")
    elif end == horizon:
        reason = "horizon"
    elif end == tox_stop:
        reason = "toxicity"
    else:
        reason = "progression"
    if not event_is_death and start + t_event <= end:
        ev.append((start + t_event, "progression", "true", t_event))
    if reason == "progression":
        ev.append((end, "progression_detected", "scan", detect))
    if reason == "death":
        ev.append((end, "death", res.death_cause, math.nan))
    if reason == "toxicity":
        ev.append((end, "line_end", "toxicity", math.nan))
    ev.sort(key=lambda e: e[0])

    # relative dose intensity: time-weighted dose level over the time on treatment
    tot = treat_end - start
    if on_drug and tot > 0 and len(changes) == 1:
        rdi = 1.0
    elif on_drug and tot > 0:
        pts = sorted(changes) + [(treat_end, None)]
        rdi = sum(lvl * (min(t1, treat_end) - t0) for (t0, lvl), (t1, _) in zip(pts, pts[1:]) if t0 < treat_end) / tot
    else:
        rdi = math.nan
    res.end, res.reason = end, reason
    res.record = dict(
        line=line, therapy=therapy.name, start=start, end=end, reason=reason,
        pfs_true=t_event if not event_is_death else t_event,
        progression_true=start + t_event if not event_is_death else math.nan,
        progression_detected=start + detect if reason == "progression" else math.nan,
        pfs_months=(end - start) if reason in ("progression", "death") else math.nan,
        on_treatment_months=tot if on_drug else 0.0, dose_intensity=rdi, response=bool(responded),
        n_ae=len(ae_names), ae_types=";".join(ae_names), n_scans=n_scans if reason == "progression" else int((end - start) // dt),
        time_ratio=tr,
    )
    return res
