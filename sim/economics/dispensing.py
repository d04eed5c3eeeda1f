"""Pack-level drug costs: whole packs dispensed at each dose level, with waste at a dose change.

Used for the daily oral drugs that have an ``economics.dispensing.<drug>`` entry when
``economics.drug_costing: packs`` (default ``continuous``: the price per mg times the dose
received, :mod:`sim.economics.costs`). An entry gives the products (strength in mg, units per
pack, pack price; ``pack_price: null`` = the drug's ``drugs.<drug>.pack_price``, allowed for the
product of the drug's own strength and pack size, i.e. the NICE TA449 list price), the
dispensing interval ``Delta`` (days) and the dose levels, each ``{mg, product}``: ``mg / strength``
units a day of that product (a whole number). Sunitinib 37.5 mg is 3 x 12.5 mg capsules a day; the
first reduction, 25 mg, is 2 capsules a day of the same packs (NICE TA449: 28 x 12.5 mg per pack).

**Dose level to dose.** The line's relative dose level ``L(t)`` (:func:`sim.economics.costs.dose_segments`:
reductions and interruptions of the event log) gives ``L * daily_dose_mg``; the dose level with the
nearest ``mg`` is dispensed; ``L = 0`` (interrupted) takes nothing.

**Dispensing rule** (stock ``S_p`` of product ``p`` at home, in units; regimen ``u_p`` units/day).
Steps are the scheduled dispensings ``start + k Delta`` (``k = 0, 1, ...`` while on treatment) and
every dose change, in time order; at a step at time ``t``:

1. consumption since the previous step ``t'``: ``S_p -= u'_p (t - t')`` (days);
2. a change to a non-empty regimen wastes the stock of every product it does not use (the unused
   part of a dispensed pack: e.g. 10 mg tablets after a reduction to 5 mg); an interruption keeps
   the stock (the patient resumes from it);
3. top-up to the next scheduled dispensing ``t_next``: ``need_p = u_p (t_next - t)``;
   ``n_p = ceil((need_p - S_p) / pack_size_p)`` packs when ``need_p > S_p`` (else 0), bought at ``t``
   (a one-off cost ``n_p * pack_price_p``, discounted at ``t``); ``S_p += n_p pack_size_p``.

At the end of treatment (progression, toxicity, death) the remaining stock is wasted. The cost of
waste, ``sum_p waste_p * pack_price_p / pack_size_p``, is part of the packs' cost (reported
separately by :func:`simulate_dispensing`). Without dose changes, with a regimen that uses whole
packs per interval (3 x 28 capsules per 28 days), the undiscounted cost is the continuous cost plus
the unused part of the last dispensing; it is never below the continuous cost of the same doses at
the same price per unit, because every unit taken was bought before it was taken.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sim.errors import check, mapping, number_at_least, whole
from sim.units import DAYS_PER_MONTH

KEY = "economics"
COSTINGS = ("continuous", "packs")


@dataclass(frozen=True)
class DispensingPlan:
    """Validated ``economics.dispensing.<drug>``.

    Attributes
    ----------
    drug : str
    interval_days : float
        ``Delta``, days between scheduled dispensings.
    products : tuple of str
    strength_mg, pack_size, pack_price : ndarray
        Per product.
    dose_mg : ndarray
        Per dose level.
    units : ndarray
        Units per day, dose levels x products.
    full_dose_mg : float
        ``drugs.<drug>.daily_dose_mg`` (relative dose level 1).
    """

    drug: str
    interval_days: float
    products: tuple[str, ...]
    strength_mg: np.ndarray
    pack_size: np.ndarray
    pack_price: np.ndarray
    dose_mg: np.ndarray
    units: np.ndarray
    full_dose_mg: float

    def regimen(self, level: np.ndarray) -> np.ndarray:
        """Units per day of each product (rows of ``units``; zeros while ``level <= 0``)."""
        level = np.asarray(level, float)
        idx = np.argmin(np.abs(level[:, None] * self.full_dose_mg - self.dose_mg[None, :]), axis=1)
        return np.where((level > 1e-12)[:, None], self.units[idx], 0.0)


def parse_plan(drug: str, cfg: Mapping, drug_cfg: Mapping) -> DispensingPlan:
    """:class:`DispensingPlan` of ``economics.dispensing.<drug>`` (``drug_cfg``: ``economics.drugs.<drug>``);
    every problem is a :class:`~sim.errors.UserError` naming the key and the value."""
    k = f"{KEY}.dispensing.{drug}"
    cfg = mapping(k, cfg)
    check(isinstance(drug_cfg, Mapping) and drug_cfg.get("schedule") == "daily", k, drug,
          "must name a daily drug of economics.drugs")
    interval = number_at_least(f"{k}.interval_days", cfg.get("interval_days"), 0.0, lo_open=True)
    prods = mapping(f"{k}.products", cfg.get("products"))
    check(len(prods) > 0, f"{k}.products", dict(prods), "must list at least one product")
    names, strength, size, price = [], [], [], []
    for name, p in prods.items():
        kp = f"{k}.products.{name}"
        p = mapping(kp, p)
        s = number_at_least(f"{kp}.strength_mg", p.get("strength_mg"), 0.0, lo_open=True)
        n = whole(f"{kp}.pack_size", p.get("pack_size"), 1)
        pr = p.get("pack_price")
        if pr is None:
            check(math.isclose(s, float(drug_cfg.get("unit_mg", math.nan))) and n == drug_cfg.get("pack_size"),
                  f"{kp}.pack_price", pr, f"may be null (= economics.drugs.{drug}.pack_price) only for the "
                                          f"drug's own strength and pack size")
            pr = drug_cfg.get("pack_price")
            key_p = f"{KEY}.drugs.{drug}.pack_price"
        else:
            key_p = f"{kp}.pack_price"
        names.append(str(name))
        strength.append(s)
        size.append(n)
        price.append(number_at_least(key_p, pr, 0.0))
    doses = cfg.get("doses")
    check(isinstance(doses, (list, tuple)) and len(doses) > 0, f"{k}.doses", doses,
          "must list the dose levels, e.g. [{mg: 37.5, product: caps_12_5mg}]")
    full = number_at_least(f"{KEY}.drugs.{drug}.daily_dose_mg", drug_cfg.get("daily_dose_mg"), 0.0, lo_open=True)
    dose_mg, units = [], np.zeros((len(doses), len(names)))
    for i, d in enumerate(doses):
        kd = f"{k}.doses[{i}]"
        d = mapping(kd, d)
        mg = number_at_least(f"{kd}.mg", d.get("mg"), 0.0, lo_open=True)
        prod = d.get("product")
        check(prod in names, f"{kd}.product", prod, f"must be one of the products {names}")
        j = names.index(prod)
        n_units = mg / strength[j]
        check(abs(n_units - round(n_units)) < 1e-9, f"{kd}.mg", mg,
              f"must be a whole number of {strength[j]:g} mg units of {prod}")
        dose_mg.append(mg)
        units[i, j] = round(n_units)
    check(any(math.isclose(m, full) for m in dose_mg), f"{k}.doses", [float(m) for m in dose_mg],
          f"must include the full dose economics.drugs.{drug}.daily_dose_mg = {full:g} mg")
    return DispensingPlan(drug, interval, tuple(names), np.array(strength), np.array(size, float), np.array(price),
                          np.array(dose_mg), units, full)


def parse_dispensing(econ: Mapping) -> tuple[str, dict[str, DispensingPlan]]:
    """``(drug_costing, {drug: plan})`` of the plain ``economics`` mapping, validated (the plans of the
    priced drugs are validated whichever costing is chosen, so a switch to ``packs`` cannot fail later;
    entries for drugs absent from ``economics.drugs`` are ignored unless ``drug_costing`` is ``packs``)."""
    mode = econ.get("drug_costing", "continuous")
    check(isinstance(mode, str) and mode in COSTINGS, f"{KEY}.drug_costing", mode, f"must be one of {list(COSTINGS)}")
    disp = mapping(f"{KEY}.dispensing", econ.get("dispensing"), allow_none=True)
    drugs = econ.get("drugs") or {}
    plans = {}
    for drug, c in disp.items():
        if drug not in drugs and mode == "continuous":
            continue                    # an entry for a drug this config does not price (unused)
        check(drug in drugs, f"{KEY}.dispensing", drug, f"must name a drug of economics.drugs {sorted(drugs)}")
        plans[str(drug)] = parse_plan(str(drug), c, drugs[drug])
    return mode, plans


def dispensing_plans(econ: Mapping, therapy_names, spec) -> dict[int, DispensingPlan]:
    """``{therapy code: plan}`` for the therapies whose drug is dispensed by packs (empty with
    ``drug_costing: continuous``)."""
    mode, plans = parse_dispensing(econ)
    if mode != "packs":
        return {}
    out = {}
    for code, name in enumerate(therapy_names):
        td = spec.therapy_drugs.get(str(name))
        if td is not None and td in plans:
            out[code] = plans[td]
    return out


@dataclass
class Dispensed:
    """Result of :func:`simulate_dispensing` for ``m`` treatment courses.

    ``purchase_row, purchase_time, purchase_cost``: one entry per dispensing that bought packs;
    ``packs`` (m x products), ``cost`` (undiscounted, per course), ``waste_units`` (m x products)
    and ``waste_cost`` (per course, at the price per unit of each product).
    """

    purchase_row: np.ndarray
    purchase_time: np.ndarray
    purchase_cost: np.ndarray
    packs: np.ndarray
    cost: np.ndarray
    waste_units: np.ndarray
    waste_cost: np.ndarray


def simulate_dispensing(plan: DispensingPlan, start: np.ndarray, end: np.ndarray, ch_row: np.ndarray,
                        ch_time: np.ndarray, ch_level: np.ndarray) -> Dispensed:
    """The dispensing rule of the module docstring for ``m`` courses at once.

    Parameters
    ----------
    plan : DispensingPlan
    start, end : ndarray
        Start and end of treatment of each course (months).
    ch_row, ch_time, ch_level : ndarray
        Dose-level change points (course index, time in months, relative level from then on),
        sorted by (course, time); each course's first point is at its start.
    """
    m, P = len(start), len(plan.products)
    delta = plan.interval_days / DAYS_PER_MONTH
    dur = np.maximum(end - start, 0.0)
    n_sched = np.where(dur > 0, np.ceil(dur / delta - 1e-9), 0).astype(np.int64)
    s_row = np.repeat(np.arange(m), n_sched)
    s_k = np.arange(s_row.size) - np.repeat(np.cumsum(n_sched) - n_sched, n_sched)
    s_time = start[s_row] + s_k * delta
    keep = ch_time < end[ch_row]
    row = np.concatenate([ch_row[keep], s_row])
    time = np.concatenate([ch_time[keep], s_time])
    kind = np.concatenate([np.zeros(int(keep.sum()), np.int64), np.ones(s_row.size, np.int64)])
    lvl = np.concatenate([ch_level[keep], np.full(s_row.size, np.nan)])
    o = np.lexsort((kind, time, row))
    row, time, kind, lvl = row[o], time[o], kind[o], lvl[o]
    idx = np.arange(row.size)
    lvl = lvl[np.maximum.accumulate(np.where(np.isnan(lvl), 0, idx))]       # each course starts with a change
    counts = np.bincount(row, minlength=m)
    pos = idx - np.repeat(np.cumsum(counts) - counts, counts)
    M = int(counts.max()) if m else 0
    T = np.full((m, M), np.nan)
    L = np.zeros((m, M))
    T[row, pos], L[row, pos] = time, lvl
    S = np.zeros((m, P))
    U_prev = np.zeros((m, P))
    t_prev = start.astype(float).copy()
    packs = np.zeros((m, P))
    waste = np.zeros((m, P))
    buys_r, buys_t, buys_c = [], [], []
    for j in range(M):
        r = np.flatnonzero(~np.isnan(T[:, j]))
        t = T[r, j]
        S[r] = np.maximum(S[r] - U_prev[r] * ((t - t_prev[r]) * DAYS_PER_MONTH)[:, None], 0.0)
        U = plan.regimen(L[r, j])
        drop = (U.sum(1) > 0)[:, None] & (U == 0) & (S[r] > 0)
        waste[r] += np.where(drop, S[r], 0.0)
        S[r] = np.where(drop, 0.0, S[r])
        t_next = start[r] + (np.floor((t - start[r]) / delta + 1e-9) + 1.0) * delta
        need = U * ((t_next - t) * DAYS_PER_MONTH)[:, None]
        n = np.where(need > S[r] + 1e-9, np.ceil((need - S[r]) / plan.pack_size - 1e-9), 0.0)
        S[r] += n * plan.pack_size
        packs[r] += n
        c = n @ plan.pack_price
        b = c > 0
        buys_r.append(r[b])
        buys_t.append(t[b])
        buys_c.append(c[b])
        U_prev[r], t_prev[r] = U, t
    S = np.maximum(S - U_prev * ((end - t_prev) * DAYS_PER_MONTH)[:, None], 0.0)
    waste += np.where(dur[:, None] > 0, S, 0.0)
    cat = (lambda xs, dt: np.concatenate(xs) if xs else np.zeros(0, dt))    # noqa: E731
    unit_price = plan.pack_price / plan.pack_size
    return Dispensed(cat(buys_r, np.int64), cat(buys_t, float), cat(buys_c, float), packs,
                     packs @ plan.pack_price, waste, waste @ unit_price)


def pack_costs(ra, rows: np.ndarray, owner: np.ndarray, plans: Mapping[int, DispensingPlan], segments: tuple,
               horizon: float, acc) -> dict[int, Dispensed]:
    """Add the pack purchases of the daily-drug line rows ``rows`` (therapy codes in ``plans``) to ``acc``
    as one-offs at their times (dropped after ``horizon``); ``segments`` are the rows' dose segments
    ``(row, t0, t1, level)`` (:func:`sim.economics.costs.dose_segments`). Returns the
    :class:`Dispensed` per therapy code."""
    out = {}
    seg_row, t0, _, level = segments
    for code, plan in plans.items():
        r = rows[ra.therapy[rows] == code]
        if r.size == 0:
            continue
        local = np.full(ra.line.size, -1)
        local[r] = np.arange(r.size)
        sel = local[seg_row] >= 0
        d = simulate_dispensing(plan, ra.start[r], ra.start[r] + ra.on_treatment[r], local[seg_row[sel]], t0[sel],
                                level[sel])
        ok = d.purchase_time <= horizon
        acc.one_off(owner[r[d.purchase_row[ok]]], d.purchase_time[ok], d.purchase_cost[ok])
        out[code] = d
    return out
