"""Overall-survival calibration of the parameters that no source reports: a grid posterior.

Trials report OS after crossover and later lines; the model reproduces it by simulating what
the trial patients received (the reported crossover, then the post-trial lines of
``experiment.post_trial``, :class:`sim.validation.PostTrial`). Two parameters are reported by no
source and are calibrated to the published median OS of RADIANT-3, SUN1111 and E2211:

* ``experiment.post_trial.uptake`` ``q``: probability that a trial patient alive after a line
  takes the next post-trial agent (prior uniform on its range);
* ``model.disease_death.rate_per_year`` ``lambda``: hazard of death without progression at the
  reference covariates (prior log-normal, median 3 % a year, SD of log 0.55: 95 % in about
  1-9 % a year, the range of its assumption row).

Survival after the last active line is not calibrated: it is seed 002's 12 months for
refractory disease (``therapies.bsc``), never inflated to carry unreported later lines.

Method (Bayesian, on a grid). For every grid point ``theta = (q, lambda)`` the trial arms are
simulated on the *same* patients with the *same* uniforms (common random numbers), so the
simulated medians change only through the parameters. The PFS fits are redone at each
``lambda`` (they put the published PFS on the detected scale with deaths competing, so the
progression component depends on it; ``pnetsim-fit``). Likelihood of the published medians
``M_k``:

``log M_k ~ N(log m_k(theta), s_k^2)``,  ``s_k^2 = 1 / (e n_k) + delta^2``

with ``n_k`` the arm size, ``e`` the share of patients with an observed death at the OS
analysis (``1 / (e n)`` approximates the variance of a log median; ``experiment.calibration.event_share``)
and ``delta`` a model-discrepancy SD on the log scale (``experiment.calibration.discrepancy_sd_log``:
one structure for trials of different eras cannot fit each exactly).
Posterior weights ``w_j ∝ prior(theta_j) L(theta_j)`` over the grid (the grid is uniform in
``q`` and in ``log lambda``, so the prior density is taken in those coordinates). The result
(grid, weights, posterior mean, SDs and covariance of ``(q, log lambda)``, effective number of
grid points, targets at the posterior estimate) is written to ``data/calibration/os_calibration.yaml``
by ``pnetsim-calibrate``, which also sets the estimates in the configs and assumption rows; the
PSA samples ``lambda`` from its posterior (``configs/psa/default.yaml``).
"""

from __future__ import annotations

import csv
import datetime as _dt
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from sim.errors import check, is_number, mapping
from sim.fitting.evidence_fits import fit_all, load_spec
from sim.target_roles import CALIBRATION_TRIALS
from sim.validation import PreparedTrial, km_median, load_designs, prepare_trial, set_path, simulate_trial

REPO = Path(__file__).resolve().parents[1]
CALIBRATION_FILE = REPO / "data" / "calibration" / "os_calibration.yaml"
ASSUMPTIONS = REPO / "data" / "evidence" / "assumptions.csv"


@dataclass(frozen=True)
class Parameter:
    """A calibrated parameter: config path, assumption row (range, shipped value), printed
    decimals, the file and key it is shipped in, its grid scale and prior.

    ``scale``: ``linear`` (grid and prior uniform on ``[low, high]``) or ``log`` (grid uniform in
    ``log x``; prior normal in ``log x`` with median ``prior_median`` and SD ``prior_sd_log``)."""

    path: str
    assumption: str
    decimals: int
    config_file: str
    key: str
    scale: str
    points: int
    prior_median: float = math.nan
    prior_sd_log: float = math.nan


PARAMETERS = (
    Parameter("experiment.post_trial.uptake", "post_trial_uptake", 2, "configs/experiment/validation.yaml", "uptake",
              "linear", 10),
    Parameter("model.disease_death.rate_per_year", "disease_death_rate", 4, "configs/model/default.yaml",
              "rate_per_year", "log", 7, prior_median=0.03, prior_sd_log=0.55),
)
DEATH_RATE = "model.disease_death.rate_per_year"
#: trials whose arms' median OS are the targets (declared in :mod:`sim.target_roles`, which the validation
#: imports, so that it needs nothing of this module)
TRIALS = CALIBRATION_TRIALS


def assumption_rows(path: Path = ASSUMPTIONS) -> dict[str, dict]:
    with open(path, newline="") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


def bounds(params=PARAMETERS) -> np.ndarray:
    """``(k, 2)`` ranges from the parameters' assumption rows (low, high)."""
    rows = assumption_rows()
    return np.array([[float(rows[p.assumption]["low"]), float(rows[p.assumption]["high"])] for p in params])


def grid_axes(params=PARAMETERS) -> list[np.ndarray]:
    """Grid values of each parameter: ``points`` values spanning its range, evenly in ``x``
    (``linear``) or in ``log x`` (``log``), cell centres (the ends of the range are not used)."""
    out = []
    for p, (lo, hi) in zip(params, bounds(params)):
        u = (np.arange(p.points) + 0.5) / p.points
        out.append(lo + (hi - lo) * u if p.scale == "linear" else np.exp(np.log(lo) + (np.log(hi) - np.log(lo)) * u))
    return out


def log_prior(x: np.ndarray, params=PARAMETERS) -> float:
    """Log prior density of ``x`` in the grid coordinates (``x`` or ``log x``), up to a constant."""
    lp = 0.0
    for p, v in zip(params, x):
        if p.scale == "log":
            lp += -0.5 * ((math.log(v) - math.log(p.prior_median)) / p.prior_sd_log) ** 2
    return lp


def log_likelihood(simulated, published, sd) -> float:
    """``sum_k log N(log M_k; log m_k, s_k^2)`` up to a constant."""
    s, m, sd = (np.asarray(a, float) for a in (simulated, published, sd))
    return float(-0.5 * np.sum(((np.log(m) - np.log(s)) / sd) ** 2))


class OSCalibration:
    """Simulated median OS of the calibration targets as a function of the calibrated parameters,
    with common random numbers.

    ``plain`` is a composed config holding the trials (``experiment=validation``); ``n`` the
    simulated patients per arm (rounded up to whole replicate blocks of the trial's size).
    """

    def __init__(self, plain: Mapping, n: int = 1500, trials=TRIALS, params=PARAMETERS, refit_pfs: bool = True):
        check(isinstance(n, int) and n >= 1, "calibration.n", n, "must be a whole number >= 1")
        self.plain, self.params = plain, tuple(params)
        self.refit_pfs = refit_pfs and any(p.path == DEATH_RATE for p in self.params)
        self._pfs_cache: dict[float, dict] = {}
        self.preps: list[PreparedTrial] = []
        rows = []
        for d in load_designs(plain, trials):
            self.preps.append(prepare_trial(plain, d, math.ceil(n / d.block)))
            t = d.targets()
            t = t[t["metric"] == "median_os"]
            for r in t.itertuples():
                rows.append(dict(trial=r.trial, arm=r.arm, evidence_id=r.evidence_id, published=r.published,
                                 n=next(a.n for a in d.arms if a.name == r.arm)))
        self.targets = pd.DataFrame(rows)

    def target_sd(self, event_share: float, discrepancy: float) -> np.ndarray:
        """``s_k = sqrt(1 / (e n_k) + delta^2)`` per target (module docstring)."""
        return np.sqrt(1.0 / (event_share * self.targets["n"].to_numpy(float)) + discrepancy ** 2)

    def pfs_blocks(self, rate: float) -> dict:
        """``{therapy: pfs block}`` of the PFS fits (``pnetsim-fit``) redone at the disease-death
        rate ``rate`` (per year): the fits put the published PFS on the detected scale with deaths
        competing, so the progression component depends on it."""
        key = round(float(rate), 12)
        if key not in self._pfs_cache:
            fits = fit_all(load_spec(), model_values={DEATH_RATE.split(".", 1)[1]: float(rate)}, compare=False)
            self._pfs_cache[key] = {name: f["record"]["pfs"] for name, f in fits.items()}
        return self._pfs_cache[key]

    def configured(self, x) -> dict:
        """The composed config with the parameters ``x`` (and, with ``refit_pfs``, the PFS refitted)."""
        plain = self.plain
        for p, v in zip(self.params, x):
            plain = set_path(plain, p.path, float(v))
        if self.refit_pfs:
            for name, block in self.pfs_blocks(self._rate(x)).items():
                if name in plain["therapies"]:
                    plain = set_path(plain, f"therapies.{name}.pfs", dict(block))
        return plain

    def _rate(self, x) -> float:
        return float(next(v for p, v in zip(self.params, x) if p.path == DEATH_RATE))

    def used_pfs(self, x) -> dict:
        """The refitted pfs blocks at ``x`` of the therapies the calibration trials' arms give."""
        used = {t for prep in self.preps for a in prep.design.arms for t in a.lines}
        return {name: dict(b) for name, b in self.pfs_blocks(self._rate(x)).items() if name in used}

    def simulated(self, x) -> np.ndarray:
        """Simulated median OS per target (pooled over all simulated patients of the arm)."""
        plain = self.configured(x)
        out = {}
        for prep in self.preps:
            patients, _ = simulate_trial(plain, prep)
            for arm, g in patients.groupby("arm"):
                out[(prep.design.key, arm)] = km_median(g["os_months"])
        return np.array([out[(r.trial, r.arm)] for r in self.targets.itertuples()])


def calibrate(plain: Mapping, n: int = 1500, progress=None, refit_pfs: bool = True, params=PARAMETERS) -> dict:
    """Grid posterior of the calibrated parameters (module docstring); returns the result record."""
    t0 = time.perf_counter()
    obj = OSCalibration(plain, n, params=params, refit_pfs=refit_pfs)
    cal = mapping("experiment.calibration", mapping("experiment", plain.get("experiment")).get("calibration"))
    e = cal.get("event_share")
    check(is_number(e) and 0 < e <= 1, "experiment.calibration.event_share",
          e, "must be a share in (0, 1]")
    delta = cal.get("discrepancy_sd_log")
    check(is_number(delta) and delta >= 0, "experiment.calibration.discrepancy_sd_log", delta, "must be a number >= 0")
    sd = obj.target_sd(float(e), float(delta))
    axes = grid_axes(obj.params)
    mesh = np.array(np.meshgrid(*axes, indexing="ij")).reshape(len(axes), -1).T
    sims, logpost = [], []
    for i, x in enumerate(mesh):
        m = obj.simulated(x)
        sims.append(m)
        logpost.append(log_prior(x, obj.params) + log_likelihood(m, obj.targets["published"], sd))
        if progress is not None:
            progress(i + 1, len(mesh), x, logpost[-1])
    logpost = np.array(logpost)
    w = np.exp(logpost - logpost.max())
    w /= w.sum()
    coords = np.column_stack([np.log(mesh[:, j]) if p.scale == "log" else mesh[:, j] for j, p in enumerate(obj.params)])
    mean_c = w @ coords
    cov = (coords - mean_c).T @ ((coords - mean_c) * w[:, None])
    estimate = np.array([math.exp(c) if p.scale == "log" else c for c, p in zip(mean_c, obj.params)])
    rounded = np.array([round(float(v), p.decimals) for v, p in zip(estimate, obj.params)])
    achieved = obj.simulated(rounded)
    sims = np.array(sims)
    post_pred = w @ sims
    tg = obj.targets.assign(simulated=achieved, relative_error=achieved / obj.targets["published"] - 1,
                            posterior_predictive=post_pred, sd_log=sd)
    b = bounds(obj.params)
    return {
        "method": ("grid posterior: prior x likelihood of the published median OS, log M_k ~ N(log m_k, 1/(e n_k) "
                   "+ delta^2); common random numbers (fixed seed and patients) at every grid point; the PFS fits "
                   "(pnetsim-fit, detected scale, deaths competing) redone at each disease-death rate"),
        "engine": str(plain.get("engine", "auto")),
        "pfs_refit": obj.used_pfs(rounded) if obj.refit_pfs else None,
        "date": _dt.date.today().isoformat(),
        "seed": int(plain["seed"]),
        "n_per_arm": int(min(p.replicates * p.design.block for p in obj.preps)),
        "evaluations": int(len(mesh)),
        "seconds": round(time.perf_counter() - t0, 1),
        "likelihood": {"event_share": e, "discrepancy_sd_log": delta},
        "effective_grid_points": float(1.0 / np.sum(w ** 2)),
        "parameters": {p.path: {"estimate": float(r), "unrounded": float(v), "low": float(lo), "high": float(hi),
                                "assumption": p.assumption, "scale": p.scale,
                                "posterior_mean": float(mc), "posterior_sd": float(math.sqrt(cov[j, j])),
                                "coordinate": "log" if p.scale == "log" else "natural"}
                       for j, (p, r, v, mc, (lo, hi)) in enumerate(zip(obj.params, rounded, estimate, mean_c, b))},
        "posterior_covariance": cov.tolist(),
        "posterior_correlation": float(cov[0, 1] / math.sqrt(cov[0, 0] * cov[1, 1])) if len(axes) == 2 else None,
        "grid": {"points": [[float(v) for v in x] for x in mesh], "weights": [float(v) for v in w]},
        "targets": [dict(trial=r.trial, arm=r.arm, evidence_id=r.evidence_id, published=float(r.published),
                         simulated=round(float(r.simulated), 2), relative_error=round(float(r.relative_error), 4),
                         posterior_predictive=round(float(r.posterior_predictive), 2), sd_log=round(float(r.sd_log), 4))
                    for r in tg.itertuples()],
    }


# ---------------------------------------------------------------- files

def write_result(result: Mapping, path: Path = CALIBRATION_FILE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    head = ("# Overall-survival calibration (sim/calibration.py, written by pnetsim-calibrate).\n"
            "# The estimates are shipped in configs/experiment/validation.yaml and configs/model/default.yaml\n"
            "# (tests/test_calibration.py checks that they are equal); the PSA samples the disease-death\n"
            "# rate from its posterior (configs/psa/default.yaml).\n")
    path.write_text(head + OmegaConf.to_yaml(OmegaConf.create(dict(result))))
    return path


def read_result(path: Path = CALIBRATION_FILE) -> dict:
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def apply_result(result: Mapping, repo: Path = REPO, params=PARAMETERS) -> None:
    """Set the rounded estimates in the configs and in their assumption rows (value, rationale
    pointing at the calibration file), and the posterior SD of the log disease-death rate in the
    PSA distribution of ``configs/psa/default.yaml``."""
    rows = assumption_rows(repo / "data" / "evidence" / "assumptions.csv")
    for p in params:
        est = result["parameters"][p.path]
        text = f"{est['estimate']:.{p.decimals}f}"
        cfg = repo / p.config_file
        s = cfg.read_text()
        pat = re.compile(rf"(?m)^(\s*{p.key}:\s*)([-+0-9.eE]+)( *)")
        # keep the column of a trailing comment: pad to the old number's width
        s, k = pat.subn(lambda m: m.group(1) + text + " " * max(1 if m.group(3) else 0,
                                                                 len(m.group(2)) + len(m.group(3)) - len(text)), s, count=1)
        check(k == 1, p.config_file, p.key, "must contain the calibrated key once")
        cfg.write_text(s)
        r = rows[p.assumption]
        r["value"] = text
        base = re.split(r";? [Cc]alibrated", r["rationale"])[0].rstrip(" .;")
        r["rationale"] = (f"{base}; calibrated (posterior mean, grid posterior) to the published median OS of "
                          f"RADIANT-3, SUN1111 and E2211 (sim/calibration.py; data/calibration/os_calibration.yaml)")
    with open(repo / "data" / "evidence" / "assumptions.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["id", "parameter", "value", "low", "high", "unit", "rationale"],
                           lineterminator="\n")
        w.writeheader()
        w.writerows(rows.values())
    sd = result["parameters"][DEATH_RATE]["posterior_sd"]
    psa = repo / "configs" / "psa" / "default.yaml"
    s, k = re.subn(r"(?m)^(  model\.disease_death\.rate_per_year: \{dist: lognormal, se_log: )([0-9.]+)",
                   lambda m: m.group(1) + f"{sd:.3f}", psa.read_text(), count=1)
    check(k == 1, "configs/psa/default.yaml", DEATH_RATE, "must have a lognormal entry with se_log")
    psa.write_text(s)
