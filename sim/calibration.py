"""Overall-survival calibration of the parameters that no trial reports directly.

Trials report OS after crossover and later lines; the model must reproduce it through its
own pathway. Three parameters are not reported by any trial and are calibrated so that the
simulated trial arms (``configs/trial/``, with their crossover shares) reproduce the
published median OS of RADIANT-3, SUN1111 and E2211 (issue 3):

* ``model.pre_progression_death_share`` ``d``: share of PFS events that are deaths;
* ``therapies.bsc.pfs.median`` ``b``: median survival after the last active line (the
  terminal best-supportive-care line; it also carries the effect of later lines that the
  trials do not report);
* ``model.frailty_rho`` ``rho``: correlation of the latent PFS (and BSC) times of one patient.

Method. Each parameter ``x_j`` is searched inside its range ``[lo_j, hi_j]`` (the ``low`` /
``high`` of its row in ``data/evidence/assumptions.csv``) through the unbounded coordinate
``z_j = logit((x_j - lo_j) / (hi_j - lo_j))``. The objective is the weighted squared error of
log medians

``f(x) = sum_k w_k (log m_k(x) - log M_k)^2``,  ``w_k = n_k / sum_i n_i``

over the targets ``k`` (published median ``M_k``, arm size ``n_k``, simulated Kaplan-Meier
median ``m_k`` over ``n`` simulated patients per arm). Every evaluation simulates the *same*
patients with the *same* uniforms (common random numbers: fixed seed, cohort built once),
so ``f`` changes only through the parameters and Nelder-Mead (scipy) sees a nearly smooth
surface. The PFS curves are fitted so that their *detected* medians are the published ones
(``sim.fitting.detection``: deaths are seen at once, progressions at a scan or clinically), which
depends on ``d``; each evaluation therefore redoes the PFS fits of ``configs/fit/pfs.yaml`` at its
``d`` (``refit_pfs``), so the calibrated OS and the shipped PFS curves are consistent. The result (estimates, targets, achieved values, objective, method, date, seed, n)
is written to ``data/calibration/os_calibration.yaml`` by ``experiments/calibrate.py``, which
also sets the rounded estimates in ``configs/model/default.yaml``, ``configs/therapy/bsc.yaml``
and their rows of ``assumptions.csv``.
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

from sim.errors import check
from sim.validation import PreparedTrial, km_median, load_designs, prepare_trial, set_path, simulate_trial

REPO = Path(__file__).resolve().parents[1]
CALIBRATION_FILE = REPO / "data" / "calibration" / "os_calibration.yaml"
ASSUMPTIONS = REPO / "data" / "evidence" / "assumptions.csv"


@dataclass(frozen=True)
class Parameter:
    """A calibrated parameter: config path, assumption row (range, shipped value), printed decimals."""

    path: str
    assumption: str
    decimals: int
    config_file: str
    key: str            # the key as written in config_file (regex-replaced when applying)


PARAMETERS = (
    Parameter("model.pre_progression_death_share", "pre_progression_death_share", 3, "configs/model/default.yaml",
              "pre_progression_death_share"),
    Parameter("therapies.bsc.pfs.median", "bsc_median_survival", 1, "configs/therapy/bsc.yaml", "median"),
    Parameter("model.frailty_rho", "frailty_rho", 3, "configs/model/default.yaml", "frailty_rho"),
)
DEATH_SHARE = "model.pre_progression_death_share"
#: trials whose arms' median OS are the targets
TRIALS = ("radiant3", "sun1111", "e2211")


def assumption_rows(path: Path = ASSUMPTIONS) -> dict[str, dict]:
    with open(path, newline="") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


def bounds(params=PARAMETERS) -> np.ndarray:
    """``(k, 2)`` search ranges from the parameters' assumption rows (low, high)."""
    rows = assumption_rows()
    return np.array([[float(rows[p.assumption]["low"]), float(rows[p.assumption]["high"])] for p in params])


def to_unbounded(x, b) -> np.ndarray:
    """``z = logit((x - lo) / (hi - lo))`` (clipped inside the open range)."""
    u = np.clip((np.asarray(x, float) - b[:, 0]) / (b[:, 1] - b[:, 0]), 1e-6, 1 - 1e-6)
    return np.log(u / (1 - u))


def to_bounded(z, b) -> np.ndarray:
    """Inverse of :func:`to_unbounded`: ``x = lo + (hi - lo) / (1 + exp(-z))``."""
    return b[:, 0] + (b[:, 1] - b[:, 0]) / (1.0 + np.exp(-np.asarray(z, float)))


def objective_value(simulated, published, weights) -> float:
    """``sum_k w_k (log m_k - log M_k)^2`` (weights normalised to sum 1)."""
    s, p, w = (np.asarray(a, float) for a in (simulated, published, weights))
    w = w / w.sum()
    return float(np.sum(w * (np.log(s) - np.log(p)) ** 2))


class OSObjective:
    """Callable ``f(x)`` over the calibrated parameters with common random numbers.

    ``plain`` is a composed config holding the trials (``experiment=validation``); ``n`` the
    simulated patients per arm (rounded up to whole replicate blocks of the trial's size).
    """

    def __init__(self, plain: Mapping, n: int = 1500, trials=TRIALS, params=PARAMETERS, refit_pfs: bool = True):
        check(isinstance(n, int) and n >= 1, "calibration.n", n, "must be a whole number >= 1")
        self.plain, self.params = plain, tuple(params)
        self.refit_pfs = refit_pfs and any(p.path == DEATH_SHARE for p in self.params)
        self._pfs_cache: dict[float, dict] = {}
        self.preps: list[PreparedTrial] = []
        rows = []
        for d in load_designs(plain, trials):
            self.preps.append(prepare_trial(plain, d, math.ceil(n / d.block)))
            t = d.targets()
            t = t[t["metric"] == "median_os"]
            for r in t.itertuples():
                rows.append(dict(trial=r.trial, arm=r.arm, evidence_id=r.evidence_id, published=r.published,
                                 weight=next(a.n for a in d.arms if a.name == r.arm)))
        self.targets = pd.DataFrame(rows)
        self.targets["weight"] = self.targets["weight"] / self.targets["weight"].sum()
        self.history: list[tuple[np.ndarray, float]] = []

    def pfs_blocks(self, death_share: float) -> dict:
        """``{therapy: pfs block}`` of the PFS fits (``pnetsim-fit``) redone with the candidate
        pre-progression death share: the fits put the published PFS on the detected scale, where
        a death is seen at once and a progression at the next scan, so they depend on it."""
        key = round(float(death_share), 12)
        if key not in self._pfs_cache:
            from sim.fitting.evidence_fits import fit_all, load_spec
            rules = {k: self.plain["model"][k] for k in ("imaging_interval_weeks", "clinical_detection_months")
                     if k in self.plain["model"]}
            fits = fit_all(load_spec(), model_values={**rules, "pre_progression_death_share": float(death_share)},
                           compare=False)
            self._pfs_cache = {key: {name: f["record"]["pfs"] for name, f in fits.items()}}
        return self._pfs_cache[key]

    def configured(self, x) -> dict:
        """The composed config with the parameters ``x`` (and, with ``refit_pfs``, the PFS refitted)."""
        plain = self.plain
        for p, v in zip(self.params, x):
            plain = set_path(plain, p.path, float(v))
        if self.refit_pfs:
            share = float(next(v for p, v in zip(self.params, x) if p.path == DEATH_SHARE))
            for name, block in self.pfs_blocks(share).items():
                if name in plain["therapies"]:
                    plain = set_path(plain, f"therapies.{name}.pfs", dict(block))
        return plain

    def used_pfs(self, x) -> dict:
        """The refitted pfs blocks at ``x`` of the therapies the calibration trials' arms give."""
        share = float(next(v for p, v in zip(self.params, x) if p.path == DEATH_SHARE))
        used = {t for prep in self.preps for a in prep.design.arms for t in a.lines}
        return {name: dict(b) for name, b in self.pfs_blocks(share).items() if name in used}

    def simulated(self, x) -> np.ndarray:
        """Simulated median OS per target (pooled over all simulated patients of the arm)."""
        plain = self.configured(x)
        out = {}
        for prep in self.preps:
            patients, _ = simulate_trial(plain, prep)
            for arm, g in patients.groupby("arm"):
                out[(prep.design.key, arm)] = km_median(g["os_months"])
        return np.array([out[(r.trial, r.arm)] for r in self.targets.itertuples()])

    def __call__(self, x) -> float:
        f = objective_value(self.simulated(x), self.targets["published"], self.targets["weight"])
        self.history.append((np.asarray(x, float), f))
        return f


def calibrate(plain: Mapping, n: int = 1500, maxfev: int = 150, start=None, step: float = 0.6, restarts: int = 2,
              progress=None, refit_pfs: bool = True) -> dict:
    """Nelder-Mead on the bounded-logit coordinates, restarted ``restarts`` times from the last
    optimum with a fresh simplex (Nelder-Mead can stall on a ridge); returns the result record
    (see module doc). ``maxfev`` bounds the evaluations of each run."""
    from scipy.optimize import minimize

    t0 = time.perf_counter()
    obj = OSObjective(plain, n, refit_pfs=refit_pfs)
    b = bounds(obj.params)
    if start is None:
        start = []
        for p in obj.params:
            node = plain
            for part in p.path.split("."):
                node = node[part]
            start.append(float(node))
    start = np.asarray(start, float)
    z0 = to_unbounded(start, b)

    def f(z):
        v = obj(to_bounded(z, b))
        if progress is not None:
            progress(len(obj.history), to_bounded(z, b), v)
        return v

    f_start = f(z0)
    z, runs = z0, []
    for _ in range(1 + max(0, int(restarts))):
        simplex = np.vstack([z] + [z + step * np.eye(len(z))[i] for i in range(len(z))])
        res = minimize(f, z, method="Nelder-Mead",
                       options={"initial_simplex": simplex, "maxfev": maxfev, "xatol": 1e-3, "fatol": 1e-6})
        runs.append(dict(evaluations=int(res.nfev), objective=float(res.fun), converged=bool(res.success)))
        z = res.x
    x_hat = to_bounded(res.x, b)
    rounded = np.array([round(float(v), p.decimals) for v, p in zip(x_hat, obj.params)])
    achieved = obj.simulated(rounded)
    f_rounded = objective_value(achieved, obj.targets["published"], obj.targets["weight"])
    tg = obj.targets.assign(simulated=achieved, relative_error=achieved / obj.targets["published"] - 1)
    return {
        "method": ("Nelder-Mead (scipy.optimize.minimize) on z = logit((x - low) / (high - low)); objective "
                   "sum_k w_k (log simulated_median_os_k - log published_median_os_k)^2, w_k = arm size / total; "
                   "common random numbers (fixed seed and patients) across evaluations; restarted from the optimum "
                   "with a fresh simplex (initial step 0.6 in z)"
                   + ("; the PFS fits (pnetsim-fit, detected scale) are redone at each candidate pre-progression "
                      "death share" if obj.refit_pfs else "")),
        "engine": str(plain.get("engine", "auto")),
        "pfs_refit": obj.used_pfs(rounded) if obj.refit_pfs else None,
        "date": _dt.date.today().isoformat(),
        "seed": int(plain["seed"]),
        "n_per_arm": int(min(p.replicates * p.design.block for p in obj.preps)),
        "evaluations": int(len(obj.history)),
        "converged": bool(res.success),
        "runs": runs,
        "seconds": round(time.perf_counter() - t0, 1),
        "objective": {"start": float(f_start), "optimum": float(res.fun), "shipped": float(f_rounded)},
        "parameters": {p.path: {"estimate": float(r), "unrounded": float(v), "start": float(s),
                                "low": float(lo), "high": float(hi), "assumption": p.assumption}
                       for p, r, v, s, (lo, hi) in zip(obj.params, rounded, x_hat, start, b)},
        "targets": [dict(trial=r.trial, arm=r.arm, evidence_id=r.evidence_id, published=float(r.published),
                         simulated=round(float(r.simulated), 2), relative_error=round(float(r.relative_error), 4),
                         weight=round(float(r.weight), 4)) for r in tg.itertuples()],
    }


# ---------------------------------------------------------------- files

def write_result(result: Mapping, path: Path = CALIBRATION_FILE) -> Path:
    from omegaconf import OmegaConf
    path.parent.mkdir(parents=True, exist_ok=True)
    head = ("# Overall-survival calibration (sim/calibration.py, written by experiments/calibrate.py).\n"
            "# The estimates are shipped in configs/model/default.yaml and configs/therapy/bsc.yaml\n"
            "# (tests/test_calibration.py checks that they are equal).\n")
    path.write_text(head + OmegaConf.to_yaml(OmegaConf.create(dict(result))))
    return path


def read_result(path: Path = CALIBRATION_FILE) -> dict:
    from omegaconf import OmegaConf
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def _fmt(v: float, decimals: int) -> str:
    return f"{v:.{decimals}f}"


def apply_result(result: Mapping, repo: Path = REPO, params=PARAMETERS) -> None:
    """Set the rounded estimates in the configs and in their assumption rows (value, range,
    rationale pointing at the calibration file)."""
    rows = assumption_rows(repo / "data" / "evidence" / "assumptions.csv")
    for p in params:
        est = result["parameters"][p.path]
        text = _fmt(est["estimate"], p.decimals)
        cfg = repo / p.config_file
        s = cfg.read_text()
        pat = re.compile(rf"(?m)^(\s*{p.key}:\s*)([-+0-9.eE]+)( *)" if p.key != "median"
                         else r"(median:\s*)([-+0-9.eE]+)( *)")
        # keep the column of a trailing comment: pad to the old number's width
        s, k = pat.subn(lambda m: m.group(1) + text + " " * max(1 if m.group(3) else 0,
                                                                 len(m.group(2)) + len(m.group(3)) - len(text)), s, count=1)
        check(k == 1, p.config_file, p.key, "must contain the calibrated key once")
        cfg.write_text(s)
        r = rows[p.assumption]
        r["value"], r["low"], r["high"] = text, f"{est['low']:g}", f"{est['high']:g}"
        base = re.split(r";? [Cc]alibrated to the published", r["rationale"])[0].rstrip(" .;")
        r["rationale"] = (f"{base}; calibrated to the published median OS of RADIANT-3, SUN1111 and E2211 "
                          f"(sim/calibration.py; see data/calibration/os_calibration.yaml); low/high = search range")
    with open(repo / "data" / "evidence" / "assumptions.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["id", "parameter", "value", "low", "high", "unit", "rationale"],
                           lineterminator="\n")
        w.writeheader()
        w.writerows(rows.values())
