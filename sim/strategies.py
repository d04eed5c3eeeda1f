"""Strategies are data: an ordered list of lines plus rules.

A line is a therapy name or a **choice line** chosen by patient, as clinicians do::

    - name: first_line
      choose:
        - {give: captem, when: {grade: G3}, source: {document: ..., section: ..., quote: ...}}
        - {give: ssa, when: {sstr_positive: true, ki67: {lt: 10}}, source: {...}}
        - {give: everolimus, source: {...}}          # no ``when``: otherwise

The patient gets the first rule whose conditions all hold and whose therapy they are eligible
for; when none fits the line is skipped (``<name>:no_option``). Conditions (:func:`parse_condition`)
test cohort columns -- a category value or list of values, ``{not: [values]}``, ``true``/``false``,
numeric ``{lt|le|gt|ge: x}`` -- and the treatment history, prior therapy included: ``given``,
``not_given``, ``progressed_on`` (therapy names), ``given_class``, ``not_given_class`` (exposure
classes) and ``active_lines`` (numeric). Every rule cites its document, section and an exact quote.
Everything is validated when the config is read. The shipped ``guideline`` strategy
(``configs/strategy/guideline.yaml``) encodes the sources' algorithm.

Rules (``configs/strategy/<name>.yaml``):

* ``skip_ineligible`` (default true): a line the patient cannot receive (e.g. PRRT for
  SSTR-negative disease) is skipped; if false the patient goes to the terminal line;
* ``after_toxicity``: ``next_line`` (default) or ``terminal`` after a discontinuation for
  toxicity;
* ``max_active_lines``: stop active treatment after this many lines given (null: no cap);
* ``holiday_months``: ``{therapy: months}`` off anticancer therapy before that line starts
  (e.g. a holiday before sunitinib rechallenge);
* ``uptake``: ``{therapy: probability}`` that an eligible patient actually receives that
  line (e.g. the 85 % crossover from placebo to everolimus in RADIANT-3); drawn from the
  patient's stream ``uptake@<therapy>`` at slot = earlier exposures to it; default 1;
* ``after_decline``: ``next_line`` (default) or ``terminal``, or ``{therapy: next_line |
  terminal}``: where a patient who declines a line (``uptake``) goes -- ``terminal`` makes a run
  of optional later lines stop at the first one not taken, so the number given is geometric.

The last line must be a ``terminal`` therapy (best supportive care until death).

Stepping through a strategy is written once, over arrays, in :mod:`sim.kernel.pathway`
(:class:`~sim.kernel.pathway.Pathways`, ``pick``, ``gate``, ``holiday``, ``after_line``,
``outcomes``), and shared by both executors. A patient's position in the strategy only moves
forward (to the next line, or to the terminal line), so the vectorised executor handles every
patient in one pass over the positions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sim.errors import UserError, check, is_number, mapping, number, probability, sequence_of_str
from sim.patients.schema import COLUMNS
from sim.therapies.definition import EXPOSURE_CLASSES, Therapy


@dataclass(frozen=True)
class Strategy:
    """A strategy: ``lines`` are therapy names or :class:`Choice` lines (the last a terminal
    therapy's name) and the rules of the module docstring."""

    name: str
    label: str
    lines: tuple
    skip_ineligible: bool
    after_toxicity: str
    max_active_lines: int | None
    holiday_months: Mapping[str, float]
    uptake: Mapping[str, float] = None
    after_decline: Mapping[str, str] = None

    @property
    def terminal_index(self) -> int:
        return len(self.lines) - 1

    @property
    def therapy_names(self) -> tuple[str, ...]:
        """Every therapy a line of the strategy can give, in line order (a choice line's options in
        rule order), each once; the terminal therapy last."""
        out = []
        for ln in self.lines:
            out += list(ln.options) if isinstance(ln, Choice) else [ln]
        return tuple(dict.fromkeys(out))

    @property
    def has_choices(self) -> bool:
        return any(isinstance(ln, Choice) for ln in self.lines)

    @classmethod
    def from_config(cls, name: str, cfg: Mapping, therapies: Mapping[str, Therapy],
                    key: str | None = None) -> "Strategy":
        """The strategy ``name`` from its config mapping; every problem is a :class:`UserError`
        naming ``key`` (default ``strategies.<name>``; a trial arm passes its own) and the value."""
        key = f"strategies.{name}" if key is None else key
        cfg = mapping(key, cfg)
        raw = cfg.get("lines")
        check(isinstance(raw, (list, tuple)), f"{key}.lines", raw, "must be a list of therapy names or choice lines")
        check(len(raw) >= 1, f"{key}.lines", list(raw), "must list at least one therapy")
        lines = []
        for i, t in enumerate(raw):
            if isinstance(t, Mapping):
                check(i < len(raw) - 1, f"{key}.lines[{i}]", "choose", "is a choice line: the last line must be a "
                      "terminal therapy (best supportive care until death), e.g. bsc")
                lines.append(parse_choice(f"{key}.lines[{i}]", t, therapies, f"line{i + 1}"))
                continue
            check(isinstance(t, str), f"{key}.lines[{i}]", t, "must be a therapy name or a choice line {choose: [...]}")
            if t not in therapies:
                raise UserError(f"{key}.lines[{i}] names an unknown therapy {t!r}; known therapies: {sorted(therapies)}")
            lines.append(t)
        lines = tuple(lines)
        names = [ln.name for ln in lines if isinstance(ln, Choice)]
        check(len(names) == len(set(names)), f"{key}.lines", names, "choice lines must have different names")
        for i, t in enumerate(lines[:-1]):
            check(isinstance(t, Choice) or therapies[t].kind != "terminal", f"{key}.lines[{i}]", t,
                  "is a terminal therapy and may only be the last line")
        check(therapies[lines[-1]].kind == "terminal", f"{key}.lines", list(raw),
              "must end with a terminal therapy (best supportive care until death), e.g. bsc")
        given = set()
        for ln in lines:
            given |= set(ln.options) if isinstance(ln, Choice) else {ln}
        rules = mapping(f"{key}.rules", cfg.get("rules"), allow_none=True)
        after = rules.get("after_toxicity", "next_line")
        check(isinstance(after, str) and after in ("next_line", "terminal"), f"{key}.rules.after_toxicity", after,
              "must be next_line or terminal")
        cap = rules.get("max_active_lines")
        check(cap is None or (isinstance(cap, int) and not isinstance(cap, bool) and cap >= 0),
              f"{key}.rules.max_active_lines", cap, "must be null or a whole number >= 0")
        hol = dict(mapping(f"{key}.rules.holiday_months", rules.get("holiday_months"), allow_none=True))
        for t, m in hol.items():
            check(t in given, f"{key}.rules.holiday_months", t, "must name a line of this strategy")
            check(is_number(m) and m >= 0, f"{key}.rules.holiday_months.{t}", m, "must be >= 0 months")
        uptake = dict(mapping(f"{key}.rules.uptake", rules.get("uptake"), allow_none=True))
        for t, p in uptake.items():
            check(t in given, f"{key}.rules.uptake", t, "must name a line of this strategy")
            probability(f"{key}.rules.uptake.{t}", p)
        skip = rules.get("skip_ineligible", True)
        check(isinstance(skip, bool), f"{key}.rules.skip_ineligible", skip, "must be true or false")
        decline = rules.get("after_decline", "next_line")
        decline = {t: decline for t in given} if isinstance(decline, str) else dict(
            mapping(f"{key}.rules.after_decline", decline))
        for t, d in decline.items():
            check(t in given, f"{key}.rules.after_decline", t, "must name a line of this strategy")
            check(isinstance(d, str) and d in ("next_line", "terminal"), f"{key}.rules.after_decline.{t}", d,
                  "must be next_line or terminal")
        unknown = sorted(set(rules) - {"skip_ineligible", "after_toxicity", "max_active_lines", "holiday_months",
                                       "uptake", "after_decline"})
        check(not unknown, f"{key}.rules", unknown[0] if unknown else None,
              "is not a strategy rule (skip_ineligible, after_toxicity, max_active_lines, holiday_months, uptake, "
              "after_decline)")
        return cls(name=name, label=str(cfg.get("label", name)), lines=lines, skip_ineligible=skip,
                   after_toxicity=after, max_active_lines=cap, holiday_months={k: float(v) for k, v in hol.items()},
                   uptake={k: float(v) for k, v in uptake.items()},
                   after_decline={t: d for t, d in decline.items() if d == "terminal"})


def build_strategies(cfg: Mapping, therapies: Mapping[str, Therapy], names=None) -> dict[str, Strategy]:
    """``{name: Strategy}`` for ``names`` (default: all configured strategies)."""
    cfg = mapping("strategies", cfg)
    names = list(cfg) if names is None else sequence_of_str("experiment.strategies", names)
    check(len(names) >= 1, "experiment.strategies", names, "must name at least one strategy")
    for n in names:
        if n not in cfg:
            raise UserError(f"experiment.strategies names an unknown strategy {n!r}; known strategies: {sorted(cfg)}")
    return {n: Strategy.from_config(n, cfg[n], therapies) for n in names}


# ------------------------------------------------------------------ choice lines (policies as data)
#: history keys a condition may test (the rest of a ``when`` mapping names cohort columns)
HISTORY_KEYS = ("given", "not_given", "progressed_on", "given_class", "not_given_class", "active_lines")
#: comparison operators of a numeric condition
NUMERIC_OPS = {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal}
#: cohort columns a condition may test (every baseline column but the identifier and prior therapy)
CONDITION_COLUMNS = tuple(c for c in COLUMNS if c not in ("patient_id", "prior_therapies"))


@dataclass(frozen=True)
class Condition:
    """One test of a choice rule on a patient: ``key`` a cohort column or a history key
    (:data:`HISTORY_KEYS`), ``op`` (``in``, ``not_in``, ``is``, a key of :data:`NUMERIC_OPS`, or
    the history key itself) and ``value`` (tuple of allowed values, a bool or a number)."""

    key: str
    op: str
    value: object

    def text(self) -> str:
        """The condition in words, e.g. ``grade in [G3]``, ``ki67 < 10``, ``not_given [ssa]``."""
        sym = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}
        if self.op in sym:
            return f"{self.key} {sym[self.op]} {self.value:g}"
        if self.op == "is":
            return f"{self.key} is {str(self.value).lower()}"
        if self.op in ("in", "not_in"):
            return f"{self.key} {'in' if self.op == 'in' else 'not in'} [{', '.join(map(str, self.value))}]"
        return f"{self.op} [{', '.join(map(str, self.value))}]"


@dataclass(frozen=True)
class Rule:
    """``give`` the therapy when every condition of ``when`` holds (an empty ``when`` always
    holds); ``source`` is the rule's citation (document, section and quote)."""

    give: str
    when: tuple[Condition, ...]
    source: tuple[tuple[str, str], ...]

    def text(self) -> str:
        return (" and ".join(c.text() for c in self.when) or "otherwise") + f" -> {self.give}"


@dataclass(frozen=True)
class Choice:
    """A strategy line chosen by patient: the first rule whose conditions hold and whose therapy
    the patient is eligible for gives its therapy; when none does, the line is skipped (event
    ``line_skipped`` ``<name>:no_option``)."""

    name: str
    label: str
    rules: tuple[Rule, ...]

    @property
    def options(self) -> tuple[str, ...]:
        """The therapies this line can give, in rule order, each once."""
        return tuple(dict.fromkeys(r.give for r in self.rules))


def _names(key: str, value, known, what: str) -> tuple[str, ...]:
    vals = [value] if isinstance(value, str) else value
    check(isinstance(vals, (list, tuple)) and len(vals) >= 1 and all(isinstance(v, str) for v in vals), key, value,
          f"must be a {what} or a list of them")
    for v in vals:
        check(v in known, key, v, f"must be one of {sorted(known)}")
    return tuple(vals)


def _numeric_condition(key: str, col: str, spec, lo, hi) -> list[Condition]:
    spec = mapping(key, spec)
    check(len(spec) >= 1, key, dict(spec), f"must give at least one of {list(NUMERIC_OPS)}")
    out = []
    for op, v in spec.items():
        check(op in NUMERIC_OPS, key, op, f"must be one of {list(NUMERIC_OPS)}")
        number(f"{key}.{op}", v)
        check((lo is None or v >= lo) and (hi is None or v <= hi), f"{key}.{op}", v,
              f"must be within the column's range [{lo}, {hi}]")
        out.append(Condition(col, op, float(v)))
    return out


def parse_condition(key: str, name: str, spec, therapies: Mapping[str, Therapy]) -> list[Condition]:
    """The conditions of ``when.<name>`` (a :class:`UserError` naming ``key`` and the value if invalid)."""
    if name in HISTORY_KEYS:
        if name == "active_lines":
            return _numeric_condition(key, name, spec, 0, None)
        if name.endswith("class"):
            return [Condition(name, name, _names(key, spec, EXPOSURE_CLASSES, "therapy class"))]
        return [Condition(name, name, _names(key, spec, therapies, "therapy name"))]
    check(name in CONDITION_COLUMNS, key, name,
          f"must be a cohort column {list(CONDITION_COLUMNS)} or a history key {list(HISTORY_KEYS)}")
    kind, allowed = COLUMNS[name]
    if kind == "bool":
        check(isinstance(spec, bool), key, spec, "must be true or false")
        return [Condition(name, "is", spec)]
    if kind in ("int", "float"):
        lo, hi = allowed
        return _numeric_condition(key, name, spec, lo, hi)
    if isinstance(spec, Mapping):
        check(set(spec) == {"not"}, key, dict(spec), "must be a value, a list of values or {not: [values]}")
        return [Condition(name, "not_in", _names(f"{key}.not", spec["not"], allowed, "value"))]
    return [Condition(name, "in", _names(key, spec, allowed, "value"))]


def parse_choice(key: str, cfg, therapies: Mapping[str, Therapy], default_name: str) -> Choice:
    """A choice line ``{choose: [rules], name:, label:}``; each rule ``{give: therapy, when:
    {condition: value}, source: {document:, section:, quote:}}``."""
    cfg = mapping(key, cfg)
    unknown = sorted(set(cfg) - {"choose", "name", "label"})
    check(not unknown, key, unknown[0] if unknown else None, "is not a key of a choice line (choose, name, label)")
    name = cfg.get("name", default_name)
    check(isinstance(name, str) and name.isidentifier(), f"{key}.name", name, "must be a name (letters, digits, _)")
    rules_cfg = cfg.get("choose")
    check(isinstance(rules_cfg, (list, tuple)) and len(rules_cfg) >= 1, f"{key}.choose", rules_cfg,
          "must list at least one rule {give: therapy, when: {...}, source: {...}}")
    rules = []
    for j, r in enumerate(rules_cfg):
        k = f"{key}.choose[{j}]"
        r = mapping(k, r)
        bad = sorted(set(r) - {"give", "when", "source"})
        check(not bad, k, bad[0] if bad else None, "is not a key of a choice rule (give, when, source)")
        give = r.get("give")
        check(isinstance(give, str) and give in therapies, f"{k}.give", give,
              f"must name a therapy; known therapies: {sorted(therapies)}")
        check(therapies[give].kind != "terminal", f"{k}.give", give, "is a terminal therapy (only the last line)")
        conds = []
        for c, spec in mapping(f"{k}.when", r.get("when"), allow_none=True).items():
            conds += parse_condition(f"{k}.when.{c}", c, spec, therapies)
        src = mapping(f"{k}.source", r.get("source"))
        for field_ in ("document", "section", "quote"):
            check(isinstance(src.get(field_), str) and src[field_].strip(), f"{k}.source.{field_}", src.get(field_),
                  "must be text (each rule cites its document, section and an exact quote)")
        rules.append(Rule(give, tuple(conds), tuple((f, str(src[f])) for f in ("document", "section", "quote"))))
    return Choice(name, str(cfg.get("label", name)), tuple(rules))
