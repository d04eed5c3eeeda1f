"""Strategies are data: an ordered list of lines (therapy names) plus rules.

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
  patient's stream ``uptake`` at slot = number of lines already given; default 1.

The last line must be a ``terminal`` therapy (best supportive care until death).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sim.errors import UserError, check
from sim.rng import WIDTH
from sim.therapies.definition import Therapy

MAX_LINES = WIDTH // 2


@dataclass(frozen=True)
class Strategy:
    name: str
    label: str
    lines: tuple[str, ...]
    skip_ineligible: bool
    after_toxicity: str
    max_active_lines: int | None
    holiday_months: Mapping[str, float]
    uptake: Mapping[str, float] = None

    @property
    def terminal_index(self) -> int:
        return len(self.lines) - 1

    @classmethod
    def from_config(cls, name: str, cfg: Mapping, therapies: Mapping[str, Therapy]) -> "Strategy":
        key = f"strategies.{name}"
        lines = cfg.get("lines")
        check(lines is not None and len(lines) >= 1, f"{key}.lines", lines, "must list at least one therapy")
        lines = tuple(str(x) for x in lines)
        check(len(lines) <= MAX_LINES, f"{key}.lines", list(lines), f"may have at most {MAX_LINES} lines")
        for i, t in enumerate(lines):
            if t not in therapies:
                raise UserError(f"{key}.lines[{i}] names an unknown therapy {t!r}; known therapies: {sorted(therapies)}")
        for i, t in enumerate(lines[:-1]):
            check(therapies[t].kind != "terminal", f"{key}.lines[{i}]", t, "is a terminal therapy and may only be the last line")
        check(therapies[lines[-1]].kind == "terminal", f"{key}.lines", list(lines),
              "must end with a terminal therapy (best supportive care until death), e.g. bsc")
        rules = cfg.get("rules") or {}
        after = rules.get("after_toxicity", "next_line")
        check(after in ("next_line", "terminal"), f"{key}.rules.after_toxicity", after, "must be next_line or terminal")
        cap = rules.get("max_active_lines")
        check(cap is None or (isinstance(cap, int) and cap >= 0), f"{key}.rules.max_active_lines", cap,
              "must be null or a whole number >= 0")
        hol = dict(rules.get("holiday_months") or {})
        for t, m in hol.items():
            check(t in lines, f"{key}.rules.holiday_months", t, "must name a line of this strategy")
            check(isinstance(m, (int, float)) and m >= 0, f"{key}.rules.holiday_months.{t}", m, "must be >= 0 months")
        uptake = dict(rules.get("uptake") or {})
        for t, p in uptake.items():
            check(t in lines, f"{key}.rules.uptake", t, "must name a line of this strategy")
            check(isinstance(p, (int, float)) and 0 <= p <= 1, f"{key}.rules.uptake.{t}", p, "must be a probability in [0, 1]")
        skip = rules.get("skip_ineligible", True)
        check(isinstance(skip, bool), f"{key}.rules.skip_ineligible", skip, "must be true or false")
        return cls(name=name, label=str(cfg.get("label", name)), lines=lines, skip_ineligible=skip,
                   after_toxicity=after, max_active_lines=cap, holiday_months={k: float(v) for k, v in hol.items()},
                   uptake={k: float(v) for k, v in uptake.items()})


def build_strategies(cfg: Mapping, therapies: Mapping[str, Therapy], names=None) -> dict[str, Strategy]:
    """``{name: Strategy}`` for ``names`` (default: all configured strategies)."""
    names = list(cfg) if names is None else list(names)
    check(len(names) >= 1, "experiment.strategies", names, "must name at least one strategy")
    for n in names:
        if n not in cfg:
            raise UserError(f"experiment.strategies names an unknown strategy {n!r}; known strategies: {sorted(cfg)}")
    return {n: Strategy.from_config(n, cfg[n], therapies) for n in names}
