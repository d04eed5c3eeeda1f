"""What happens to patients on one line of therapy: the clinical rules, written once, over arrays.

:func:`plan_lines` turns the uniforms of a *batch* of patients starting the same therapy
into the line's dated events (start, grade 3/4 toxicities and their consequences, end of a
fixed course, true progression, progression detected at a scan, death) and the line's
summary columns, all as NumPy arrays with no Python loop over patients. Both executors call
it: the vectorised executor (:mod:`sim.run.vectorised`) with every patient who reaches the line
at once, the SimPy engine (:mod:`sim.run.engine`) with a batch of one patient when its process
reaches the line. Nothing here knows about SimPy.

Randomness, all by inverse transform of the patient's named streams. Streams are keyed by
purpose *and therapy*, ``"<purpose>@<therapy>"``, at slot ``e`` = the number of earlier
exposures to that therapy in the pathway (0 the first time), so a patient meets the same
numbers for, say, CAPTEM whether CAPTEM is the third or the fifth line of a strategy
(common random numbers across strategies that order the same agents differently):

* ``pfs@<therapy>``: progression uniform, tied across lines by the patient's frailty
  (Gaussian copula: ``u = Phi(sqrt(rho) z + sqrt(1 - rho) Phi^{-1}(u_raw))``, ``z = Phi^{-1}``
  of stream ``frailty`` slot 0), so progression times on successive lines are rank-correlated
  while each line keeps its fitted marginal (:func:`frailty_uniforms`);
* ``disease_death`` (slot 0, once per patient): the threshold ``E = -log u`` of the
  patient's disease-death clock (competing risk without progression, below);
* ``detection@<therapy>``: a progression at ``T`` becomes clinically apparent at ``T + D``,
  ``D = -c log(u)`` (exponential, mean ``c = model.clinical_detection_months``; not drawn when
  ``c`` is infinite); it is detected at ``min(next scheduled scan, T + D)`` (an off-schedule
  detection is one unscheduled scan);
* ``response@<therapy>``: objective response when ``u < p_response``;
* ``symptom_control@<therapy>``: a functional syndrome is controlled on the line when
  ``u < symptom_control[functional status]`` (drawn only on therapies with ``symptom_control``);
* ``ae/<name>@<therapy>``: occurrence (slot ``2e``, ``u < p``) and onset (slot ``2e + 1``);
  ``ae_consequence/<name>@<therapy>`` (slot e): the consequence;
* ``procedure_death@<therapy>`` (only for a therapy with ``procedure_death``): death from the
  procedure when ``u < p``, at ``start + w u / p`` (``u / p`` is uniform given ``u < p``: one
  draw gives occurrence and time, uniform over the window ``w``, e.g. 30 days); it competes
  with progression, disease and other-cause death like a death without progression (cause
  ``treatment``);
* ``late/<name>@<therapy>`` (a therapy's ``late_toxicity``, e.g. myeloid neoplasms after PRRT):
  occurrence (slot ``3e``, ``u < p``), onset uniform over the configured window after the line's
  start (slot ``3e + 1``), fatal when ``u < f`` and then death an exponential time after the onset
  (slot ``3e + 2``, ``-(median / log 2) log(u / f)``). The draw is made on the exposing line and kept
  in the pathway's :class:`History`: the onset is an ``adverse_event`` on whatever line the patient is
  on then (cost, disutility), and the death (cause ``treatment``) competes on every later line, the
  terminal one included (its earliest onset per patient is kept; a second late toxicity's death
  still competes).

Competing risks on a non-terminal line. Progression and death without progression are
separate cause-specific hazards. Progression: ``T = TR H^{-1}(-log(u) / HR_i)``, ``H`` the
therapy's fitted cumulative hazard, ``TR`` the rechallenge time ratio (1 otherwise) and

``HR_i = prod_c hr_c^(x_ic - ref_c) * h_line^(n_i - n_ref) * prod_k hr_k^[prior class k]``:

covariate effects centred on the reference population of the fit (a cohort like the trials'
keeps the fitted PFS on average; ``hr_c`` is the product of the prognostic hazard ratio of every
non-terminal line, ``model.prognostic_hr``, and the therapy's own ``covariate_hr``; ``ref_c`` is
``model.covariate_reference`` unless the therapy's ``covariate_reference`` gives its source
population's), a line effect per active line given beyond the typical
number ``n_ref`` of the therapy's source trial (``model.line_effect.hr_per_prior_line``), and
hazard ratios for prior exposure classes (``prior_exposure_hr``). Death without progression
depends on the patient and the disease, never on the line's drug: a disease-death hazard

``lambda_i = lambda_0 prod_c hr_c^(x_ic - ref_c) g^(n_i)``

(``model.disease_death``) runs as one clock over all non-terminal lines: the patient dies of
disease without progression when the accumulated hazard reaches ``E``, so the remaining time
at the start of a line is ``(E - used) / lambda_i``. Other-cause death is the life table's
(absolute time, set by the executor). After the last active line the terminal line's own
distribution gives the time to death of refractory disease (with its covariate hazard
ratios).

Dose level while on treatment (relative dose intensity = its time average over the time on
treatment): ``level(t) = prod_{reductions with onset <= t} r_j`` times 0 inside any
interruption window ``[onset_i, onset_i + w_i)``. A reduction that happens during an
interruption therefore applies from the resumption on.

Dose intensity and efficacy (``model.dose_intensity_effect.beta``, default 0: none). After the ``j``-th
counted dose reduction (onset ``a_j``) the dose level is ``L_j = prod_{i <= j} r_i`` and the progression
hazard is multiplied by ``M_j = L_j^(-beta)`` from then on, to the progression (also after a fixed course
ends): the cumulative progression hazard becomes ``sum_j M_j [HR H(min(t, a_{j+1}) / TR) - HR H(a_j / TR)]^+``
(``a_0 = 0``, ``M_0 = 1``) and the progression ``T*`` is where it reaches ``-log u``
(:func:`dose_adjusted_progression`; ``T* <= T``, equal when no reduction comes before ``T``). Interruptions
do not count (the level is the product of the reductions; the zero level inside an interruption window
enters the RDI only: a few weeks off drug, and ``0^(-beta)`` would be infinite). A reduction counts only
before the progression it would change. The AEs are drawn against a treatment end that depends on the
detection, so the kernel resolves the line once without the effect, re-solves the progression of the rows
with a counted reduction before ``T``, then recomputes the detection, the end of treatment and the counted
AEs (same uniforms). One pass is exact: the reductions before ``T*`` are before the new detection
(``T* <= detection``) and before every other bound of the old treatment end (course end, death, horizon, an
earlier discontinuation), so they are counted again and give the same ``T*``; an AE between the new and the
old detection (after ``T*``) is dropped and cannot act on ``T*``. The fitted PFS curves are the trials'
observed PFS, reductions included; with ``beta > 0`` they are read as the full-dose curves (not refitted).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from sim.events import EVENT_CODE, VOCAB
from sim.therapies.definition import CONSEQUENCES, Therapy
from sim.units import weeks

#: line end reasons (codes are indices)
REASONS = ("progression", "death", "toxicity", "horizon")
PROGRESSION, DEATH, TOXICITY, HORIZON = range(4)
#: functional syndrome on a line (``lines.parquet`` column ``syndrome``): none (non-functioning tumour),
#: controlled by the line's therapy, uncontrolled
SYNDROME = ("none", "controlled", "uncontrolled")
NO_SYNDROME, CONTROLLED, UNCONTROLLED = range(3)
#: cause of death codes (0: alive)
CAUSES = ("", "disease", "other", "treatment")
NO_DEATH, DISEASE, OTHER, TREATMENT = range(4)
_CONS = {c: i for i, c in enumerate(CONSEQUENCES)}
_NONE, _RED, _INT, _DISC = (_CONS[c] for c in ("none", "dose_reduction", "interruption", "discontinuation"))
_E = EVENT_CODE


@dataclass(frozen=True)
class ModelRules:
    """Model-level settings that apply to every line (``configs/model``)."""

    imaging_interval_months: float
    frailty_rho: float
    covariate_reference: dict
    horizon_months: float
    #: mean of the exponential delay after which a progression becomes clinically apparent
    #: between scans (months); ``inf`` = scans only
    clinical_detection_months: float = math.inf
    #: disease-death hazard without progression at the reference covariates (per month)
    disease_death_rate: float = 0.0
    #: hazard ratios of the disease-death hazard by binary covariate (centred like PFS)
    disease_death_hr: Mapping = field(default_factory=dict)
    #: disease-death hazard ratio per active line already given
    disease_death_hr_per_line: float = 1.0
    #: progression hazard ratio per active line given beyond a therapy's reference number
    line_hr_per_prior_line: float = 1.0
    #: prognostic progression hazard ratios by binary covariate on every non-terminal line (centred)
    prognostic_hr: Mapping = field(default_factory=dict)
    #: exponent ``beta`` of the dose-intensity effect on progression: after the dose level drops to ``L``
    #: the progression hazard is multiplied by ``L^(-beta)`` (0: no effect; module docstring)
    dose_intensity_beta: float = 0.0

    def __post_init__(self):
        if not (self.dose_intensity_beta >= 0.0 and math.isfinite(self.dose_intensity_beta)):
            raise ValueError(f"dose_intensity_beta must be a finite number >= 0, got {self.dose_intensity_beta!r}")


# ------------------------------------------------------------------ patients as arrays
def covariates(p) -> dict:
    """Binary covariates that modify PFS hazards or response, from cohort columns.

    ``p`` is a cohort row (mapping of scalars) or a frame / mapping of column arrays; the
    values are booleans or boolean arrays accordingly.
    """
    return {
        "rapid_tempo": np.asarray(p["tempo"]) == "rapid",
        "ki67_ge10": np.asarray(p["ki67"], dtype=float) >= 10.0,
        "hepatic_gt25": np.asarray(p["hepatic_burden"]) != "le25",
        "hepatic_gt50": np.asarray(p["hepatic_burden"]) == "gt50",
        "grade_ge2": np.asarray(p["grade"]) != "G1",
        "grade_g3": np.asarray(p["grade"]) == "G3",
        "ecog_ge2": np.asarray(p["ecog"], dtype=float) >= 2,
        "mgmt_low": np.asarray(p["mgmt_low"]).astype(bool),
    }


def hazard_multiplier(therapy: Therapy, cov: dict, reference: dict, prognostic: Mapping | None = None):
    """``prod_c hr_c^(x_c - ref_c)`` over the therapy's covariate hazard ratios times the prognostic
    ones of every non-terminal line (:meth:`~sim.therapies.definition.Therapy.log_hazard_multiplier`)."""
    return np.exp(therapy.log_hazard_multiplier(cov, reference, prognostic))


def response_probability(therapy: Therapy, cov: dict, n: int) -> np.ndarray:
    """Objective response probability per patient (``response_by`` overrides the flat one)."""
    for c, (p_true, p_false) in therapy.response_by.items():
        return np.where(np.broadcast_to(cov[c], (n,)), p_true, p_false).astype(float)
    return np.full(n, therapy.response_probability)


class Patients:
    """The baseline of a chunk of patients as arrays, with per-therapy constants cached.

    Attributes: ``n``, ``patient_id``, ``sstr_positive``, ``diabetes`` (bool), ``functional``
    (vocabulary codes), ``cov`` (covariate arrays), ``prior`` (``{therapy: mask of the patients
    reporting it as prior therapy}``), ``n_prior`` (number of prior therapies reported),
    ``disease_rate`` (disease-death hazard without progression before any line, per month:
    ``lambda_0 prod_c hr_c^(x_c - ref_c)``), and, set by the executor, ``death_bg`` (absolute
    other-cause death time), ``z`` (frailty normal deviate) and ``disease_clock`` (threshold
    ``E ~ Exp(1)`` of the disease-death clock).
    """

    def __init__(self, cohort, rules: ModelRules):
        self.rules = rules
        self.n = n = len(np.asarray(cohort["patient_id"]))
        self.patient_id = np.asarray(cohort["patient_id"], dtype=np.int64).reshape(n)
        self.sstr_positive = np.asarray(cohort["sstr_positive"]).astype(bool).reshape(n)
        self.diabetes = np.asarray(cohort["diabetes"]).astype(bool).reshape(n)
        codes, uniq = pd.factorize(np.asarray(cohort["functional_status"]).reshape(n))
        self.functional = np.array([VOCAB.code(str(f)) for f in uniq], dtype=np.int64)[codes]
        self.cov = {c: np.broadcast_to(v, (n,)) for c, v in covariates(cohort).items()}
        codes, uniq = pd.factorize(np.asarray(cohort["prior_therapies"]).reshape(n))
        self.prior: dict[str, np.ndarray] = {}
        for c, s in enumerate(uniq):
            for t in (x for x in str(s).split(";") if x):
                self.prior[t] = self.prior.get(t, np.zeros(n, bool)) | (codes == c)
        self.n_prior = np.zeros(n, np.int64)
        for mask in self.prior.values():
            self.n_prior += mask
        log_hr = 0.0
        for c, h in rules.disease_death_hr.items():
            log_hr = log_hr + math.log(h) * (self.cov[c].astype(float) - rules.covariate_reference.get(c, 0.0))
        self.disease_rate = np.broadcast_to(rules.disease_death_rate * np.exp(log_hr), (n,)).astype(float)
        self._cohort = cohort
        self._columns: dict[str, np.ndarray] = {}
        self.death_bg = np.full(n, math.inf)
        self.z = np.zeros(n)
        self.disease_clock = np.full(n, math.inf)
        self._hr: dict[str, np.ndarray] = {}
        self._resp: dict[str, np.ndarray] = {}

    def column(self, name: str) -> np.ndarray:
        """The baseline cohort column ``name`` as an array over the chunk (choice-line conditions)."""
        v = self._columns.get(name)
        if v is None:
            v = self._columns[name] = np.asarray(self._cohort[name]).reshape(self.n)
        return v

    def hr(self, therapy: Therapy) -> np.ndarray:
        """PFS hazard multiplier of every patient on ``therapy``."""
        v = self._hr.get(therapy.name)
        if v is None:
            v = self._hr[therapy.name] = np.broadcast_to(
                hazard_multiplier(therapy, self.cov, self.rules.covariate_reference, self.rules.prognostic_hr),
                (self.n,)).astype(float)
        return v

    def response(self, therapy: Therapy) -> np.ndarray:
        """Objective response probability of every patient on ``therapy``."""
        v = self._resp.get(therapy.name)
        if v is None:
            v = self._resp[therapy.name] = response_probability(therapy, self.cov, self.n)
        return v


class History:
    """What later lines need to know about earlier ones, over a chunk.

    Per therapy name: ``progressed`` (ever progressed on it, or reported as prior therapy),
    ``exposed`` (ever given), ``prior`` (the most recent exposure is a prior therapy),
    ``count`` (exposures in this pathway: the slot of its streams), ``end``, ``pfs`` and
    ``responded`` (end, detected PFS and objective response of the most recent exposure;
    NaN / False for prior therapy or when it did not end by progression or death) and
    ``lines_before`` (active lines given before its most recent exposure started). Per patient:
    ``n_active`` (active lines given, prior therapies included) and ``disease_used`` (disease-death
    hazard accumulated on earlier lines) and the late toxicity drawn on earlier lines
    (``late_onset``, ``late_code``, ``late_weeks``, ``late_death``).
    """

    def __init__(self, n: int, prior: dict[str, np.ndarray] | None = None):
        self.n = n
        self.progressed: dict[str, np.ndarray] = {}
        self.exposed: dict[str, np.ndarray] = {}
        self.prior: dict[str, np.ndarray] = {}
        self.count: dict[str, np.ndarray] = {}
        self.end: dict[str, np.ndarray] = {}
        self.pfs: dict[str, np.ndarray] = {}
        self.responded: dict[str, np.ndarray] = {}
        self.lines_before: dict[str, np.ndarray] = {}
        self.n_active = np.zeros(n, np.int64)
        self.disease_used = np.zeros(n)
        # late toxicity drawn on earlier lines: earliest onset (absolute), its AE code and duration
        # (weeks), and the earliest death from a late toxicity (absolute; inf: none)
        self.late_onset = np.full(n, math.inf)
        self.late_code = np.zeros(n, np.int64)
        self.late_weeks = np.zeros(n)
        self.late_death = np.full(n, math.inf)
        for t, mask in (prior or {}).items():
            self._ensure(t)
            self.progressed[t][mask] = self.exposed[t][mask] = self.prior[t][mask] = True
            self.end[t][mask] = 0.0
            self.n_active += mask

    def _ensure(self, name: str) -> None:
        if name not in self.exposed:
            n = self.n
            self.progressed[name], self.exposed[name], self.prior[name], self.responded[name] = (
                np.zeros(n, bool) for _ in range(4))
            self.end[name], self.pfs[name] = np.full(n, math.nan), np.full(n, math.nan)
            self.count[name], self.lines_before[name] = np.zeros(n, np.int64), np.zeros(n, np.int64)

    def get(self, attr: str, name: str, rows) -> np.ndarray:
        self._ensure(name)
        return getattr(self, attr)[name][rows]

    def exposed_to_class(self, klass: str, therapies: Mapping, rows) -> np.ndarray:
        """Whether each patient ``rows`` was given (or reports) a therapy of exposure class ``klass``."""
        out = np.zeros(np.size(rows), bool)
        for name, mask in self.exposed.items():
            t = therapies.get(name)
            if t is not None and t.exposure_class == klass:
                out |= mask[rows]
        return out

    def record(self, therapy, rows, lb: "LineBatch", sel) -> None:
        """Append the line ``lb`` (its batch rows ``sel``) of ``therapy`` given to chunk rows ``rows``."""
        name = therapy.name
        self._ensure(name)
        reason = lb.reason[sel]
        self.exposed[name][rows] = True
        self.prior[name][rows] = False
        self.progressed[name][rows] |= reason == PROGRESSION
        self.end[name][rows], self.pfs[name][rows] = lb.end[sel], lb.pfs_months[sel]
        self.responded[name][rows] = lb.response[sel]
        self.lines_before[name][rows] = self.n_active[rows]
        self.count[name][rows] += 1
        self.n_active[rows] += therapy.kind == "active"
        self.disease_used[rows] += lb.disease_hazard[sel]
        if lb.late_onset is not None:
            onset = lb.late_onset[sel]
            first = onset < self.late_onset[rows]
            self.late_onset[rows] = np.where(first, onset, self.late_onset[rows])
            self.late_code[rows] = np.where(first, lb.late_code[sel], self.late_code[rows])
            self.late_weeks[rows] = np.where(first, lb.late_weeks[sel], self.late_weeks[rows])
            self.late_death[rows] = np.minimum(self.late_death[rows], lb.late_death[sel])


def eligibility(therapy: Therapy, pat: Patients, rows: np.ndarray, history: History) -> np.ndarray:
    """Vocabulary code of ``"<therapy>:<reason>"`` why each patient may not receive ``therapy``
    now (0 where eligible). Reasons by priority: ``sstr_negative``, ``excluded_<functional
    status>``, ``no_prior_progression_on_<therapy>`` (a progression on it, or prior therapy)."""
    why = np.zeros(rows.size, dtype=np.int64)
    need = therapy.requires_prior_progression_on
    if need:
        why[~history.get("progressed", need, rows)] = VOCAB.code(f"{therapy.name}:no_prior_progression_on_{need}")
    for f in therapy.exclude_functional:
        why[pat.functional[rows] == VOCAB.code(f)] = VOCAB.code(f"{therapy.name}:excluded_{f}")
    if therapy.requires_sstr_positive:
        why[~pat.sstr_positive[rows]] = VOCAB.code(f"{therapy.name}:sstr_negative")
    return why


def frailty_uniforms(u_raw, z, rho: float):
    """Gaussian-copula mixing of PFS uniforms with the patient frailty ``z`` (elementwise).

    ``u = Phi(sqrt(rho) z + sqrt(1 - rho) Phi^{-1}(u_raw))``: exactly uniform for each line,
    with correlation ``rho`` between the latent normals of any two lines of a patient.
    ``u_raw`` and ``z`` broadcast (e.g. shapes (n, slots) and (n, 1), or both (n,)).
    """
    u_raw = np.asarray(u_raw, float)
    if rho <= 0.0:
        return u_raw
    x = math.sqrt(rho) * np.asarray(z, float) + math.sqrt(1.0 - rho) * ndtri(u_raw)
    return np.clip(ndtr(x), 1e-300, 1.0 - 1e-16)


def frailty_z(u_frailty) -> np.ndarray:
    """The patient frailty ``z = Phi^{-1}(u)`` from stream ``frailty`` slot 0."""
    return ndtri(np.asarray(u_frailty, float))


def stream(purpose: str, therapy: str) -> str:
    """Name of the random stream of ``purpose`` on lines of ``therapy``: ``"<purpose>@<therapy>"``."""
    return f"{purpose}@{therapy}"


def line_pfs_uniform(draws, therapy: str, rows: np.ndarray, slot: np.ndarray, z: np.ndarray,
                     rho: float) -> np.ndarray:
    """Frailty-mixed progression uniform of ``therapy`` at exposure ``slot`` for chunk rows ``rows``."""
    return frailty_uniforms(draws[stream("pfs", therapy)][rows, slot], z, rho)


def time_ratio(rc, pfs_first, time_off, responded=None) -> np.ndarray:
    """Vectorised :meth:`~sim.therapies.definition.Rechallenge.time_ratio_for`:
    ``TR = time_ratio (pfs_first / ref_pfs)^beta_prior_pfs (time_off / ref_off)^beta_time_off
    m^(r - r_ref)`` with ``r`` = 1 for a response at first exposure (both times floored at
    1e-6 months; ``responded`` None: ``r = r_ref``)."""
    tr = np.full(np.shape(pfs_first), rc.time_ratio)
    if rc.beta_prior_pfs:
        tr = tr * (np.maximum(pfs_first, 1e-6) / rc.reference_pfs_first) ** rc.beta_prior_pfs
    if rc.beta_time_off:
        tr = tr * (np.maximum(time_off, 1e-6) / rc.reference_time_off) ** rc.beta_time_off
    if responded is not None and rc.response_time_ratio != 1.0:
        tr = tr * rc.response_time_ratio ** (np.asarray(responded, float) - rc.reference_response_share)
    return tr


def progression_hr(therapy: Therapy, therapies: Mapping, pat: "Patients", rows: np.ndarray, history: "History",
                   rules: ModelRules) -> np.ndarray:
    """Progression hazard multiplier ``HR_i`` of the patients ``rows`` starting ``therapy`` now:
    covariates x line effect x prior exposure classes (module docstring).

    Line effect: ``h^(n - n_ref)`` with ``n`` the active lines already given and ``n_ref`` the
    therapy's ``line_effect.reference_prior_lines``; for a rechallenge, ``n`` counts the active
    lines given since the first exposure ended and ``n_ref`` the rechallenge's
    ``reference_intervening_lines`` (its time ratio was measured after that many). Observation
    and terminal lines have no line effect."""
    hr = pat.hr(therapy)[rows]
    if therapy.kind != "active":
        return hr
    h = rules.line_hr_per_prior_line
    if h != 1.0:
        n = history.n_active[rows]
        rc = therapy.rechallenge
        if rc is not None:
            real = history.get("exposed", rc.of, rows) & ~history.get("prior", rc.of, rows)
            between = n - history.get("lines_before", rc.of, rows) - 1
            expo = np.where(real, between - rc.reference_intervening_lines, 0.0)
        else:
            expo = n - therapy.reference_prior_lines
        hr = hr * h ** expo
    for klass, k_hr in therapy.prior_exposure_hr.items():
        hr = hr * np.where(history.exposed_to_class(klass, therapies, rows), k_hr, 1.0)
    return hr


# ------------------------------------------------------------------ one line, a batch of patients
@dataclass
class LineBatch:
    """A line resolved for a batch of ``m`` patients (arrays of length ``m``).

    ``reason`` and ``cause`` are codes into :data:`REASONS` and :data:`CAUSES`;
    ``ae_types`` holds vocabulary codes of the ``;``-joined AE names in onset order. The events are
    flat arrays: batch row ``ev_row``, rank ``ev_pos`` within the row's line (its output
    order: by time, ties in the fixed candidate order line_start, then per AE in onset order
    adverse_event, its consequence, resume; then course_end, progression,
    progression_detected / death / line_end), time, event code, detail code and value. They
    are grouped but not necessarily sorted by row.
    """

    therapy: str
    line: np.ndarray
    start: np.ndarray
    end: np.ndarray
    reason: np.ndarray
    death: np.ndarray          # absolute time of death ending the line (inf if none)
    cause: np.ndarray
    pfs_true: np.ndarray
    progression_true: np.ndarray
    progression_detected: np.ndarray
    pfs_months: np.ndarray
    on_treatment_months: np.ndarray
    dose_intensity: np.ndarray
    response: np.ndarray
    n_ae: np.ndarray
    ae_types: np.ndarray
    n_scans: np.ndarray
    unscheduled_scans: np.ndarray
    time_ratio: np.ndarray
    disease_hazard: np.ndarray     # disease-death hazard accumulated on the line (rate x duration)
    syndrome: np.ndarray           # code into SYNDROME: functional syndrome none / controlled / uncontrolled
    ev_row: np.ndarray
    ev_pos: np.ndarray
    ev_time: np.ndarray
    ev_code: np.ndarray
    ev_detail: np.ndarray
    ev_value: np.ndarray
    #: late toxicity drawn on this line (absolute onset and death, AE code, weeks); None if the therapy has none
    late_onset: np.ndarray | None = None
    late_death: np.ndarray | None = None
    late_code: np.ndarray | None = None
    late_weeks: np.ndarray | None = None

    def row_record(self, j: int) -> dict:
        """Record (``lines.parquet`` columns except patient and strategy) of batch row ``j``."""
        return dict(
            line=int(self.line[j]), therapy=self.therapy, start=float(self.start[j]), end=float(self.end[j]),
            reason=REASONS[self.reason[j]], pfs_true=float(self.pfs_true[j]),
            progression_true=float(self.progression_true[j]),
            progression_detected=float(self.progression_detected[j]), pfs_months=float(self.pfs_months[j]),
            on_treatment_months=float(self.on_treatment_months[j]), dose_intensity=float(self.dose_intensity[j]),
            response=bool(self.response[j]), n_ae=int(self.n_ae[j]), ae_types=VOCAB.string(int(self.ae_types[j])),
            n_scans=int(self.n_scans[j]), unscheduled_scans=int(self.unscheduled_scans[j]),
            time_ratio=float(self.time_ratio[j]), syndrome=int(self.syndrome[j]))

    def row_events(self, j: int) -> list[tuple[float, str, str, float]]:
        """Events ``(time, event, detail, value)`` of batch row ``j``, in output order."""
        sel = np.flatnonzero(self.ev_row == j)
        sel = sel[np.argsort(self.ev_pos[sel], kind="stable")]
        return [(float(t), _EVENT_NAMES[c], VOCAB.string(d), float(v)) for t, c, d, v in
                zip(self.ev_time[sel].tolist(), self.ev_code[sel].tolist(), self.ev_detail[sel].tolist(),
                    self.ev_value[sel].tolist())]


_EVENT_NAMES = list(EVENT_CODE)


@dataclass(frozen=True)
class _TherapyArrays:
    """Per-therapy constants precomputed once (AE parameters as arrays over AE types)."""

    name_code: int
    ae_codes: np.ndarray          # vocabulary codes of AE names
    ae_duration: np.ndarray
    ae_onset_scale: np.ndarray    # months: onset = -scale * log(u)
    ae_p: np.ndarray
    ae_p_diab: np.ndarray
    ae_cum: np.ndarray            # (A, 4) cumulative consequence probabilities
    ae_cons: np.ndarray           # (A, 4) consequence codes in config order
    ae_reduced: np.ndarray
    ae_interrupt: np.ndarray      # months
    ae_names: tuple[str, ...]
    ae_functional: np.ndarray     # vocabulary code of the functional status an AE is restricted to (-1: none)
    ae_types_memo: dict = field(default_factory=dict)   # AE-set code -> vocabulary code of "a;b;..."

    def ae_types(self, code: np.ndarray) -> np.ndarray:
        """Vocabulary codes of the ``;``-joined AE names of each AE-set ``code`` (see
        :func:`_toxicity`: the sum over onset positions ``p`` of ``(index + 1) (A + 1)^p``)."""
        uniq, inv = np.unique(code, return_inverse=True)
        a = len(self.ae_names)
        out = np.empty(uniq.size, dtype=np.int64)
        for i, c in enumerate(uniq.tolist()):
            v = self.ae_types_memo.get(c)
            if v is None:
                parts, rest = [], c
                for _ in range(a):
                    rest, d = divmod(rest, a + 1)
                    if d:
                        parts.append(self.ae_names[d - 1])
                v = self.ae_types_memo[c] = VOCAB.code(";".join(parts))
            out[i] = v
        return out[inv.reshape(-1)]


#: per-process cache of :class:`_TherapyArrays` by therapy object (bounded: PSA builds many)
_CACHE: dict[int, tuple] = {}
_CACHE_MAX = 512


def _arrays(therapy: Therapy) -> _TherapyArrays:
    key = id(therapy)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is therapy:
        return hit[1]
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    aes = therapy.adverse_events
    a = len(aes)
    cum = np.ones((a, 4))
    cons = np.zeros((a, 4), dtype=np.int64)
    for i, ae in enumerate(aes):
        names = [c for c, _ in ae.consequence]
        acc = np.cumsum([p for _, p in ae.consequence])
        cum[i, :len(names)] = acc
        cum[i, len(names) - 1:] = np.inf  # the last consequence takes the rest (u >= sum of the others)
        cons[i, :len(names)] = [_CONS[c] for c in names]
        cons[i, len(names):] = _CONS[names[-1]]
    arr = _TherapyArrays(
        name_code=VOCAB.code(therapy.name),
        ae_codes=np.array([VOCAB.code(ae.name) for ae in aes], dtype=np.int64),
        ae_duration=np.array([ae.duration_weeks for ae in aes], dtype=float),
        ae_onset_scale=np.array([weeks(ae.onset_median_weeks) / math.log(2) for ae in aes], dtype=float),
        ae_p=np.array([ae.probability for ae in aes], dtype=float),
        ae_p_diab=np.array([ae.probability_for(True) for ae in aes], dtype=float),
        ae_cum=cum, ae_cons=cons,
        ae_reduced=np.array([ae.reduced_intensity for ae in aes], dtype=float),
        ae_interrupt=np.array([weeks(ae.interruption_weeks) for ae in aes], dtype=float),
        ae_names=tuple(ae.name for ae in aes),
        ae_functional=np.array([VOCAB.code(ae.functional) if ae.functional else -1 for ae in aes], dtype=np.int64),
    )
    _CACHE[key] = (therapy, arr)
    return arr


def plan_lines(therapy: Therapy, therapies: dict, pat: Patients, rows: np.ndarray, line: np.ndarray,
               start: np.ndarray, history: History, draws, u_pfs: np.ndarray | None, rules: ModelRules) -> LineBatch:
    """Resolve line ``line`` (1-based, per patient) of ``therapy`` for chunk rows ``rows``.

    Parameters
    ----------
    therapy, therapies
        The line's therapy, and all therapies by name (for rechallenge).
    pat : Patients
        Baseline arrays of the chunk (``pat.death_bg``: absolute other-cause death time).
    rows : int array (m,)
        Chunk rows of the batch (index into ``pat`` arrays, ``history`` and ``draws``).
    line, start : arrays (m,)
        Line number and start time (months) per patient.
    history : History
        Earlier lines of the chunk's patients (rechallenge time ratio).
    draws
        ``draws[stream][rows, slot]`` are the chunk's uniforms of ``stream`` (:class:`sim.rng.Stream`).
    u_pfs : array (m,) or None
        Frailty-mixed progression uniforms; None: from stream ``pfs@<therapy>`` at the exposure
        slot (:func:`line_pfs_uniform`), as both executors use it.
    rules : ModelRules

    Returns
    -------
    LineBatch
        Progression at ``T = TR H^{-1}(-log u_pfs / HR_i)`` (:func:`progression_hr`) competes with
        death without progression at the disease-death clock's time and with other-cause death;
        a progression is detected at the first scheduled scan at or after it,
        ``start + ceil(T / dt) dt``, or earlier at ``start + T + D`` when it becomes clinically
        apparent first (``D ~ Exp(mean rules.clinical_detection_months)``, stream ``detection``;
        then ``n_scans`` counts the scheduled scans before it and ``unscheduled_scans = 1``); AEs
        count in onset order while on treatment (before course end, detection, death, horizon and
        any discontinuation); the line ends
        at the first of toxicity discontinuation, detection, death and the horizon.
    """
    m = rows.size
    line = np.asarray(line, dtype=np.int64)
    name = therapy.name
    e = history.get("count", name, rows)          # slot: earlier exposures to this therapy
    start = np.asarray(start, dtype=float).reshape(m)
    death_bg = pat.death_bg[rows]
    ta = _arrays(therapy)
    if u_pfs is None:
        u_pfs = line_pfs_uniform(draws, name, rows, e, pat.z[rows], rules.frailty_rho)
    hr = progression_hr(therapy, therapies, pat, rows, history, rules)
    tr = np.ones(m)
    p_resp = pat.response(therapy)[rows]
    if therapy.rechallenge is not None:
        rc = therapy.rechallenge
        real = history.get("exposed", rc.of, rows) & ~history.get("prior", rc.of, rows)
        pf = history.get("pfs", rc.of, rows)
        pfs_first = np.where(real & np.isfinite(pf), pf, rc.reference_pfs_first)
        with np.errstate(invalid="ignore"):
            time_off = np.where(real, start - history.get("end", rc.of, rows), rc.reference_time_off)
        resp_first = np.where(real, history.get("responded", rc.of, rows), rc.reference_response_share)
        tr = time_ratio(rc, pfs_first, time_off, resp_first)
        p_resp = np.minimum(1.0, pat.response(therapies[rc.of])[rows] * rc.response_ratio)
    t_prog = tr * np.asarray(therapy.pfs.sample(u_pfs, hr), dtype=float).reshape(m)
    syndrome = syndrome_state(therapy, pat, rows, e, draws)
    horizon = rules.horizon_months
    nan = np.full(m, math.nan)
    zeros = np.zeros(m)

    own_late = _late_toxicity(therapy, draws, rows, e, start)
    late_onset, late_code, late_weeks, late_death = _late_now(history, rows, own_late)

    if therapy.kind == "terminal":
        dis = start + t_prog
        death = np.minimum(np.minimum(dis, death_bg), late_death)
        end = np.minimum(death, horizon)
        dies = death <= horizon
        cause = np.where(dies, np.where(late_death < np.minimum(dis, death_bg), TREATMENT,
                                        np.where(dis <= death_bg, DISEASE, OTHER)), NO_DEATH)
        r = np.arange(m)
        nd = int(dies.sum())
        ev = (np.concatenate([r, r[dies]]), np.concatenate([np.zeros(m, np.int64), np.ones(nd, np.int64)]),
              np.concatenate([start, end[dies]]),
              np.concatenate([np.full(m, _E["line_start"]), np.full(nd, _E["death"])]),
              np.concatenate([np.full(m, ta.name_code), _CAUSE_CODES()[cause[dies]]]),
              np.concatenate([line.astype(float), np.full(nd, math.nan)]))
        ev = _with_late_events(ev, start, end, late_onset, late_code, late_weeks)
        return LineBatch(
            therapy.name, line, start, end, np.where(dies, DEATH, HORIZON), np.where(dies, death, math.inf), cause,
            nan, nan, nan, nan, zeros, nan, np.zeros(m, bool), np.zeros(m, np.int64),
            np.zeros(m, np.int64), np.zeros(m, np.int64), np.zeros(m, np.int64), tr, zeros, syndrome, *ev, *own_late)

    # death without progression: the patient's disease-death clock (threshold E, hazard used so far)
    rate = disease_rate_now(pat, rows, history, rules)
    left = np.maximum(pat.disease_clock[rows] - history.disease_used[rows], 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t_dd = np.where(rate > 0, left / rate, math.inf)
    disease_death = start + t_dd
    # death from the procedure (e.g. 30-day mortality of an embolisation): u < p, at start + w u / p
    t_pd = np.full(m, math.inf)
    p_pd = therapy.procedure_death_probability
    if p_pd > 0:
        u_pd = draws[stream("procedure_death", name)][rows, e]
        t_pd = np.where(u_pd < p_pd, therapy.procedure_death_window_months * u_pd / p_pd, math.inf)
    t_pd = np.minimum(t_pd, late_death - start)   # a late toxicity's death (earlier exposure) acts alike
    procedure_death = start + t_pd
    t_dnp = np.minimum(t_dd, t_pd)          # death without progression: disease or treatment
    dt = rules.imaging_interval_months
    # progression seen at the next scheduled scan, or earlier when it becomes clinically apparent
    # after D ~ Exp(mean c) (stream ``detection@<therapy>``, slot e); then one unscheduled scan confirms it
    c_mean = rules.clinical_detection_months
    u_detect = draws[stream("detection", name)][rows, e] if math.isfinite(c_mean) else None
    n_scans_prog, detect, clinical = _detection(t_prog, dt, c_mean, u_detect)
    death = np.minimum(np.minimum(death_bg, disease_death), procedure_death)
    responded = draws[stream("response", name)][rows, e] < p_resp
    on_drug = therapy.kind == "active"
    course_stop = np.minimum(start + therapy.course_months, np.minimum(death, horizon))
    stop = np.minimum(course_stop, start + detect)

    # ---- toxicity, in onset order, while on treatment (AE types are columns)
    tox = _toxicity(therapy, ta, pat, rows, e, start, stop, draws) if on_drug and therapy.adverse_events else None
    beta = rules.dose_intensity_beta
    if tox is not None and beta > 0.0 and tox.hit.size:
        # dose-intensity effect: progression re-solved from the first counted reduction before it, then its
        # detection, the end of treatment and the AEs counted (module docstring: exact, one pass)
        changed, t_new = dose_adjusted_progression(therapy.pfs, tox.red_onset, tox.red_factor, start[tox.hit],
                                                   t_prog[tox.hit], tr[tox.hit], u_pfs[tox.hit], hr[tox.hit], beta)
        if changed.any():
            t_prog = t_prog.copy()
            t_prog[tox.hit[changed]] = t_new[changed]
            n_scans_prog, detect, clinical = _detection(t_prog, dt, c_mean, u_detect)
            stop = np.minimum(course_stop, start + detect)
            tox = _toxicity(therapy, ta, pat, rows, e, start, stop, draws)
    event_is_death = t_dnp < t_prog         # no progression before that death
    t_event = np.minimum(t_prog, t_dnp)     # true time of the PFS event (progression or death)
    if tox is not None:
        tox_stop, treat_end = tox.tox_stop, tox.treat_end
    else:
        tox_stop = np.full(m, math.inf)
        treat_end = stop if on_drug else start
    tot = treat_end - start
    if not on_drug:
        rdi = nan
    elif tox is not None:
        rdi = tox.rdi
    else:
        rdi = np.where(tot > 0, 1.0, math.nan)

    course_end = start + therapy.course_months
    course_ok = np.zeros(m, bool)
    if on_drug and math.isfinite(therapy.course_months):
        course_ok = course_end <= np.minimum(np.minimum(start + detect, death), np.minimum(horizon, tox_stop))

    # ---- how the line ends: first of toxicity stop, detection, death, horizon
    end = np.minimum(np.minimum(tox_stop, start + detect), np.minimum(death, horizon))
    is_death = (end == death) & (death <= horizon)
    is_hor = ~is_death & (end == horizon)
    is_tox = ~is_death & ~is_hor & (end == tox_stop)
    reason = np.where(is_death, DEATH, np.where(is_hor, HORIZON, np.where(is_tox, TOXICITY, PROGRESSION)))
    cause = np.where(is_death, np.where(procedure_death < np.minimum(disease_death, death_bg), TREATMENT,
                                        np.where(disease_death <= death_bg, DISEASE, OTHER)), NO_DEATH)
    is_prog = reason == PROGRESSION
    true_prog = start + t_prog
    prog_ok = ~event_is_death & (true_prog <= end)

    # ---- the line's events: (time, ok, event code, detail code, value) candidates in tie order
    cause_code = _CAUSE_CODES()[cause]
    end_code = np.where(is_prog, _E["progression_detected"], np.where(is_death, _E["death"], _E["line_end"]))
    end_detail = np.where(is_prog, np.where(clinical, VOCAB.code("clinical"), VOCAB.code("scan")),
                          np.where(is_death, cause_code, VOCAB.code("toxicity")))
    end_value = np.where(is_prog, detect, math.nan)
    head = [(start, True, _E["line_start"], ta.name_code, line.astype(float))]
    tail = [(course_end, course_ok, _E["course_end"], ta.name_code, float(therapy.doses or 0)),
            (true_prog, prog_ok, _E["progression"], VOCAB.code("true"), t_prog),
            (end, is_prog | is_death | is_tox, end_code, end_detail, end_value)]
    hit = tox.hit if tox is not None else np.zeros(0, np.int64)
    plain = np.ones(m, bool)
    plain[hit] = False
    groups = [_plain_events(np.flatnonzero(plain) if hit.size else None, head, tail)]
    if hit.size:
        sub = [(_take(t, hit), _take(ok, hit), _take(c, hit), _take(d, hit), _take(v, hit)) for t, ok, c, d, v in head]
        sub += tox.events
        sub += [(_take(t, hit), _take(ok, hit), _take(c, hit), _take(d, hit), _take(v, hit)) for t, ok, c, d, v in tail]
        groups.append(_sorted_events(hit, sub))
    ev = [np.concatenate(x) for x in zip(*groups)] if len(groups) > 1 else groups[0]
    ev = _with_late_events(ev, start, end, late_onset, late_code, late_weeks)

    n_scans = np.where(is_prog, n_scans_prog, np.floor_divide(end - start, dt)).astype(np.int64)
    unscheduled = (is_prog & clinical).astype(np.int64)
    return LineBatch(
        therapy.name, line, start, end, reason, np.where(is_death, death, math.inf), cause,
        t_event, np.where(event_is_death, math.nan, true_prog), np.where(is_prog, start + detect, math.nan),
        np.where(is_prog | is_death, end - start, math.nan), tot if on_drug else np.zeros(m),
        rdi, responded, tox.n_ae if tox is not None else np.zeros(m, np.int64),
        tox.ae_types if tox is not None else np.zeros(m, np.int64), n_scans, unscheduled, tr,
        rate * (end - start), syndrome, *ev, *own_late)


def disease_rate_now(pat: Patients, rows: np.ndarray, history: History, rules: ModelRules) -> np.ndarray:
    """Disease-death hazard without progression (per month) of the patients ``rows`` now:
    ``lambda_i g^(n_i)``, ``n_i`` the active lines already given (module docstring)."""
    return pat.disease_rate[rows] * rules.disease_death_hr_per_line ** history.n_active[rows]


def _detection(t_prog: np.ndarray, dt: float, c_mean: float, u_detect: np.ndarray | None) -> tuple:
    """Detection of a progression at ``t_prog`` months into the line (module docstring).

    Returns ``(n_scans, detect, clinical)``: the scheduled scans up to the detection, the months from the
    line start to it, ``min(ceil(T / dt) dt, T + D)`` with ``D = -c log(u_detect)`` (scans only when
    ``c`` is infinite), and whether it is the clinical one (then one scheduled scan fewer)."""
    n_scans = np.maximum(1.0, np.ceil(t_prog / dt - 1e-12))
    detect = n_scans * dt
    clinical = np.zeros(t_prog.size, bool)
    if u_detect is not None:
        apparent = t_prog - c_mean * np.log(u_detect)
        clinical = apparent < detect
        detect = np.where(clinical, apparent, detect)
        n_scans = n_scans - clinical
    return n_scans, detect, clinical


def dose_adjusted_progression(pfs, red_onset: np.ndarray, red_factor: np.ndarray, start: np.ndarray,
                              t_prog: np.ndarray, tr: np.ndarray, u_pfs: np.ndarray, hr: np.ndarray,
                              beta: float) -> tuple[np.ndarray, np.ndarray]:
    """Progression time under the dose-intensity effect (``model.dose_intensity_effect.beta``).

    After the dose level drops to ``L_j = prod_{i <= j} r_i`` at the ``j``-th counted dose reduction
    (line time ``a_j``) the progression hazard is multiplied by ``M_j = L_j^(-beta)`` (``M_0 = 1``). With
    ``H`` the fitted cumulative hazard on the rechallenge-scaled clock ``s = t / TR`` and
    ``E = -log(u) / HR`` the patient's threshold (:meth:`~sim.distributions.SurvivalDistribution.sample`),
    the progression ``T*`` solves

    ``sum_j M_j [H(min(T*, a_{j+1}) / TR) - H(a_j / TR)]^+ = E``  (``a_0 = 0``),

    i.e. segment by segment ``T* = TR H^{-1}(H(a_j / TR) + (E - used_j) / M_j)`` in the segment where the
    hazard used reaches ``E``. Reductions at or after the original ``T`` cannot matter (``T* <= T``
    because every ``M_j >= 1``), nor can one after ``T*`` (the walk stops there).

    Parameters
    ----------
    pfs : SurvivalDistribution
        The therapy's fitted progression curve ``H``.
    red_onset, red_factor : arrays (k, a)
        Per row and onset position: absolute onset of a counted dose reduction (inf: none) and its factor.
    start, t_prog, tr, u_pfs, hr : arrays (k,)
        Line start, progression time drawn without the effect (months from the start), rechallenge time
        ratio, progression uniform and hazard multiplier.
    beta : float
        Exponent (> 0).

    Returns
    -------
    changed : bool array (k,)
        Rows with a reduction before the original progression (the others keep ``t_prog`` exactly).
    t_new : array (k,)
        ``T*`` where changed, else ``t_prog``.
    """
    k, a = red_onset.shape
    with np.errstate(divide="ignore"):
        target = -np.log(u_pfs) / hr
    used, h_prev, mult = np.zeros(k), np.zeros(k), np.ones(k)
    found = np.zeros(k, bool)
    changed = np.zeros(k, bool)
    t_new = np.asarray(t_prog, float).copy()
    with np.errstate(invalid="ignore", over="ignore"):
        for p in range(a):
            at = red_onset[:, p] - start
            live = ~found & (at < t_prog)          # a reduction before the progression so far
            h_a = np.where(live, np.asarray(pfs.cumhazard(np.where(live, at, 0.0) / tr), float), h_prev)
            seg = mult * (h_a - h_prev)
            ends = live & (used + seg >= target)   # reached before this reduction (only after an earlier one)
            if ends.any():
                t_new[ends] = tr[ends] * np.asarray(
                    pfs.inverse_cumhazard(h_prev[ends] + (target[ends] - used[ends]) / mult[ends]), float)
            found |= ends
            go = live & ~ends
            changed |= go
            used = np.where(go, used + seg, used)
            h_prev = np.where(go, h_a, h_prev)
            mult = np.where(go, mult * red_factor[:, p] ** (-beta), mult)
        rest = changed & ~found
        if rest.any():
            t_new[rest] = tr[rest] * np.asarray(
                pfs.inverse_cumhazard(h_prev[rest] + (target[rest] - used[rest]) / mult[rest]), float)
    t_new = np.where(changed, np.minimum(t_new, t_prog), t_prog)
    return changed, t_new


def syndrome_state(therapy: Therapy, pat: Patients, rows: np.ndarray, slot: np.ndarray, draws) -> np.ndarray:
    """Functional syndrome of each patient ``rows`` on a line of ``therapy`` (codes into :data:`SYNDROME`).

    Parameters
    ----------
    therapy : Therapy
        The line's therapy; ``therapy.symptom_control`` maps functional statuses to the probability
        that the line controls the syndrome.
    pat : Patients
        The chunk's baselines (``pat.functional``: vocabulary codes of the functional status).
    rows, slot : int arrays (m,)
        Chunk rows and the exposure slot of the therapy's streams.
    draws
        The chunk's uniforms; stream ``symptom_control@<therapy>`` is read only when the therapy
        controls some syndrome.

    Returns
    -------
    ndarray of int64 (m,)
        ``NO_SYNDROME`` for a non-functioning tumour; ``CONTROLLED`` when ``u < symptom_control[status]``;
        ``UNCONTROLLED`` otherwise (every line of a therapy without ``symptom_control``, the terminal one
        included).
    """
    func = pat.functional[rows]
    out = np.where(func == VOCAB.code("non_functioning"), NO_SYNDROME, UNCONTROLLED).astype(np.int64)
    if therapy.symptom_control:
        p = np.zeros(rows.size)
        for status, q in therapy.symptom_control.items():
            p = np.where(func == VOCAB.code(status), q, p)
        u = draws[stream("symptom_control", therapy.name)][rows, slot]
        out = np.where((out == UNCONTROLLED) & (u < p), CONTROLLED, out)
    return out


def _late_toxicity(therapy: Therapy, draws, rows: np.ndarray, e: np.ndarray, start: np.ndarray) -> tuple:
    """The late toxicity this line's exposure draws (module docstring): per row the absolute onset
    (inf: none), death (inf: none or not fatal), AE code and weeks of the earliest onset; all None
    when the therapy has none."""
    if not therapy.late_toxicity:
        return (None, None, None, None)
    m = rows.size
    onset, death = np.full(m, math.inf), np.full(m, math.inf)
    code, weeks_ = np.zeros(m, np.int64), np.zeros(m)
    for lt in therapy.late_toxicity:
        u = draws[stream(f"late/{lt.name}", therapy.name)]
        occurs = u[rows, 3 * e] < lt.probability
        t_on = start + lt.onset_min_months + (lt.onset_max_months - lt.onset_min_months) * u[rows, 3 * e + 1]
        u_f = u[rows, 3 * e + 2]
        fatal = occurs & (u_f < lt.fatal_share)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_death = t_on - lt.survival_median_months / math.log(2) * np.log(u_f / lt.fatal_share)
        death = np.minimum(death, np.where(fatal, t_death, math.inf))
        first = occurs & (t_on < onset)
        onset = np.where(first, t_on, onset)
        code = np.where(first, VOCAB.code(lt.name), code)
        weeks_ = np.where(first, lt.duration_weeks, weeks_)
    return onset, death, code, weeks_


def _late_now(history: History, rows: np.ndarray, own: tuple) -> tuple:
    """Late toxicity in force on this line: the history's (earlier exposures) and this line's own
    draw, the earlier onset (with its code and weeks) and the earlier death."""
    onset, code, weeks_, death = (history.late_onset[rows], history.late_code[rows], history.late_weeks[rows],
                                  history.late_death[rows])
    if own[0] is None:
        return onset, code, weeks_, death
    first = own[0] < onset
    return (np.where(first, own[0], onset), np.where(first, own[2], code), np.where(first, own[3], weeks_),
            np.minimum(death, own[1]))


def _with_late_events(ev, start, end, onset, code, weeks_):
    """The line's flat event arrays ``ev`` with an ``adverse_event`` at the late-toxicity onset of
    each row whose onset falls in ``[start, end)``, ranked after the row's events at or before it
    (the later events move one rank down)."""
    inside = (onset >= start) & (onset < end)
    if not inside.any():
        return ev
    row, pos, time, ecode, detail, value = ev
    lr = np.flatnonzero(inside)
    t_row = np.full(start.size, math.inf)
    t_row[lr] = onset[lr]
    after = time > t_row[row]
    rank = np.bincount(row[~after & np.isfinite(t_row[row])], minlength=start.size)[lr]
    return (np.concatenate([row, lr]), np.concatenate([pos + after, rank]), np.concatenate([time, onset[lr]]),
            np.concatenate([ecode, np.full(lr.size, _E["adverse_event"])]), np.concatenate([detail, code[lr]]),
            np.concatenate([value, weeks_[lr]]))


def _CAUSE_CODES() -> np.ndarray:
    return np.array([0] + [VOCAB.code(c) for c in CAUSES[1:]])


def _take(x, idx):
    return x[idx] if isinstance(x, np.ndarray) and x.ndim else x


def _plain_events(sel, head, tail):
    """Events of rows without a counted AE (all rows if ``sel`` is None), ordered without a sort:
    line_start; course_end and the true progression by time (course_end first on ties); the
    line's end event (at ``end``, not before either)."""
    (t0, _, c0, d0, v0), = head
    (tc, okc, cc, dc, vc), (tp, okp, cp, dp, vp), (te, oke, ce, de, ve) = tail
    if sel is not None:
        t0, v0, tc, okc, tp, okp, vp, te, oke, ce, de, ve = (
            _take(x, sel) for x in (t0, v0, tc, okc, tp, okp, vp, te, oke, ce, de, ve))
    m = t0.size
    r = np.arange(m) if sel is None else sel
    pos_c = 1 + (okp & (tp < tc))
    pos_p = 1 + (okc & (tc <= tp))
    pos_e = 1 + okc.astype(np.int64) + okp
    rows = np.concatenate([r, r[okc], r[okp], r[oke]])
    pos = np.concatenate([np.zeros(m, np.int64), pos_c[okc], pos_p[okp], pos_e[oke]])
    n_c, n_p = int(okc.sum()), int(okp.sum())
    time = np.concatenate([t0, tc[okc] if tc.ndim else np.full(n_c, tc), tp[okp], te[oke]])
    code = np.concatenate([np.full(m, c0), np.full(n_c, cc), np.full(n_p, cp), ce[oke]])
    detail = np.concatenate([np.full(m, d0), np.full(n_c, dc), np.full(n_p, dp), de[oke]])
    value = np.concatenate([v0, np.full(n_c, vc), vp[okp], ve[oke]])
    return rows, pos, time, code, detail, value


def _sorted_events(rows_g, cols):
    """Events of the rows ``rows_g`` from candidate columns ``(time, ok, code, detail, value)``
    (arrays over the rows or scalars): per row, valid candidates sorted by time, ties in column
    order. Returns flat arrays (row, position within the row, time, code, detail, value)."""
    m, c = rows_g.size, len(cols)
    T, OK = np.empty((c, m)), np.empty((c, m), bool)
    CODE, DET, VAL = np.empty((c, m), np.int64), np.empty((c, m), np.int64), np.empty((c, m))
    for j, (t, ok, code, det, val) in enumerate(cols):
        T[j], OK[j], CODE[j], DET[j], VAL[j] = t, ok, code, det, val
    order = np.argsort(np.where(OK, T, math.inf).T, axis=1, kind="stable")
    flat = order * m + np.arange(m)[:, None]
    rr, pp = np.nonzero(OK.ravel()[flat])
    sel = flat[rr, pp]
    return rows_g[rr], pp, T.ravel()[sel], CODE.ravel()[sel], DET.ravel()[sel], VAL.ravel()[sel]


@dataclass
class _Toxicity:
    """Grade 3/4 AEs of a line for a batch: per row ``tox_stop``, ``treat_end``, ``rdi``,
    ``n_ae``, ``ae_types``; ``hit`` (rows with a counted AE) and ``events`` (candidate event
    columns over the ``hit`` rows, in tie order)."""

    tox_stop: np.ndarray
    treat_end: np.ndarray
    rdi: np.ndarray
    n_ae: np.ndarray
    ae_types: np.ndarray
    hit: np.ndarray
    events: list
    #: over the ``hit`` rows, per onset position: absolute onset of a counted dose reduction (inf: none)
    #: and its factor ``r_j`` (1: none)
    red_onset: np.ndarray | None = None
    red_factor: np.ndarray | None = None


def _toxicity(therapy, ta, pat, rows, k, start, stop, draws) -> _Toxicity:
    # ``k``: the slot (earlier exposures to the therapy); streams ``ae/<name>@<therapy>``
    """AEs in onset order while on treatment (see :func:`plan_lines`), computed only for rows
    where some AE occurs; the dose level and RDI follow the module docstring."""
    m, a = rows.size, len(therapy.adverse_events)
    occ = np.empty((m, a), bool)
    diab = pat.diabetes[rows]
    for i, ae in enumerate(therapy.adverse_events):
        p = np.where(diab, ta.ae_p_diab[i], ta.ae_p[i])
        if ta.ae_functional[i] >= 0:                  # e.g. hypoglycaemia: insulinoma only
            p = np.where(pat.functional[rows] == ta.ae_functional[i], p, 0.0)
        occ[:, i] = draws[stream(ae.stream, therapy.name)][rows, 2 * k] < p
    tox_stop = np.full(m, math.inf)
    treat_end = stop.copy()
    rdi = np.where(stop - start > 0, 1.0, math.nan)
    n_ae = np.zeros(m, np.int64)
    ae_types = np.zeros(m, np.int64)
    h = np.flatnonzero(occ.any(axis=1))
    if h.size == 0:
        return _Toxicity(tox_stop, treat_end, rdi, n_ae, ae_types, h, [])
    rh, kh, s0, st_h = rows[h], k[h], start[h], stop[h]
    nh = h.size
    onset = np.empty((nh, a))
    cons = np.empty((nh, a), np.int64)
    for i, ae in enumerate(therapy.adverse_events):
        onset[:, i] = s0 - ta.ae_onset_scale[i] * np.log(draws[stream(ae.stream, therapy.name)][rh, 2 * kh + 1])
        uc = draws[stream(ae.consequence_stream, therapy.name)][rh, kh]
        cons[:, i] = ta.ae_cons[i][(uc[:, None] >= ta.ae_cum[i][None, :]).sum(axis=1)]
    onset = np.where(occ[h], onset, math.inf)
    order = np.argsort(onset, axis=1, kind="stable") if a > 1 else np.zeros((nh, 1), np.int64)
    ar = np.arange(nh)[:, None]
    so, sc = onset[ar, order], cons[ar, order]
    counted = np.empty((nh, a), bool)
    ts = np.full(nh, math.inf)
    for p in range(a):  # sequential over onset positions (few), vectorised over patients
        c = so[:, p] < np.minimum(st_h, ts)
        counted[:, p] = c
        ts = np.where(c & (sc[:, p] == _DISC), so[:, p], ts)
    te = np.minimum(st_h, ts)
    red = counted & (sc == _RED)
    intr = counted & (sc == _INT)
    factor = np.where(red, ta.ae_reduced[order], 1.0)
    back = so + ta.ae_interrupt[order]
    # resumption: before the end of treatment and not inside another interruption window
    inside_other = np.zeros((nh, a), bool)
    for q in range(a):
        w = intr[:, q:q + 1] & (so[:, q:q + 1] <= back) & (back < back[:, q:q + 1])
        w[:, q] = False
        inside_other |= w
    resume_ok = intr & (back < te[:, None]) & ~inside_other
    # dose level at resumption: product of the reductions with onset <= resumption
    resume_level = np.prod(np.where(red[:, None, :] & (so[:, None, :] <= back[:, :, None]), factor[:, None, :], 1.0),
                           axis=2)
    # relative dose intensity: integral of level(t) over [start, treat_end] / time on treatment
    tot = te - s0
    r_h = np.where(tot > 0, 1.0, math.nan)
    ch = np.flatnonzero((red | intr).any(axis=1) & (tot > 0))
    if ch.size:
        s1, e1, so1, bk1, rd1, in1, f1 = s0[ch], te[ch], so[ch], back[ch], red[ch], intr[ch], factor[ch]
        pts = np.concatenate([s1[:, None], e1[:, None], np.where(rd1 | in1, so1, e1[:, None]),
                              np.where(in1, bk1, e1[:, None])], axis=1)
        pts = np.sort(np.clip(pts, s1[:, None], e1[:, None]), axis=1)
        t0 = pts[:, :-1, None]
        lvl = np.prod(np.where(rd1[:, None, :] & (so1[:, None, :] <= t0), f1[:, None, :], 1.0), axis=2)
        off = (in1[:, None, :] & (so1[:, None, :] <= t0) & (t0 < bk1[:, None, :])).any(axis=2)
        r_h[ch] = (np.where(off, 0.0, lvl) * np.diff(pts, axis=1)).sum(axis=1) / tot[ch]
    code = ((order + 1) * counted * (a + 1) ** np.arange(a)).sum(axis=1)
    tox_stop[h], treat_end[h], rdi[h] = ts, te, r_h
    n_ae[h] = counted.sum(axis=1)
    ae_types[h] = ta.ae_types(code)
    # event columns over the rows with a counted AE
    keep = counted[:, 0]  # counted AEs are a prefix of the onset order
    hit = h[keep]
    so, sc, order, counted, back, resume_ok, resume_level, factor = (
        x[keep] for x in (so, sc, order, counted, back, resume_ok, resume_level, factor))
    level_after = np.cumprod(factor, axis=1)
    ae_name = ta.ae_codes[order]
    cons_code = np.where(sc == _RED, _E["dose_change"], np.where(sc == _INT, _E["interruption"], _E["discontinuation"]))
    cons_value = np.where(sc == _RED, level_after, np.where(sc == _INT, 0.0, math.nan))
    resume = VOCAB.code("resume")
    events = []
    for p in range(a):
        events += [
            (so[:, p], counted[:, p], _E["adverse_event"], ae_name[:, p], ta.ae_duration[order[:, p]]),
            (so[:, p], counted[:, p] & (sc[:, p] != _NONE), cons_code[:, p], ae_name[:, p], cons_value[:, p]),
            (back[:, p], resume_ok[:, p], _E["dose_change"], resume, resume_level[:, p]),
        ]
    is_red = counted & (sc == _RED)
    return _Toxicity(tox_stop, treat_end, rdi, n_ae, ae_types, hit, events,
                     np.where(is_red, so, math.inf), np.where(is_red, factor, 1.0))

