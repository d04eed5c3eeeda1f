"""Build every configured therapy; cross-check references between them."""

from __future__ import annotations

from collections.abc import Mapping

from sim.errors import UserError, check
from sim.therapies.definition import Therapy


def build_therapies(cfg: Mapping) -> dict[str, Therapy]:
    """``{name: Therapy}`` from the ``therapies`` config mapping."""
    check(isinstance(cfg, Mapping) and len(cfg) > 0, "therapies", cfg, "must define at least one therapy")
    out = {name: Therapy.from_config(name, spec) for name, spec in cfg.items()}
    for t in out.values():
        if t.rechallenge is not None and t.rechallenge.of not in out:
            raise UserError(f"therapies.{t.name}.rechallenge.of names an unknown therapy {t.rechallenge.of!r}; "
                            f"known therapies: {sorted(out)}")
        need = t.requires_prior_progression_on
        if need is not None and need not in out:
            raise UserError(f"therapies.{t.name}.eligibility.requires_prior_progression_on names an unknown "
                            f"therapy {need!r}; known therapies: {sorted(out)}")
    return out
