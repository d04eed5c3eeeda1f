"""Therapy definitions (efficacy, toxicity, schedule, eligibility) and the per-line rules."""

from sim.therapies.definition import AdverseEvent, Rechallenge, Therapy
from sim.therapies.line import ModelRules
from sim.therapies.registry import build_therapies

__all__ = ["AdverseEvent", "ModelRules", "Rechallenge", "Therapy", "build_therapies"]
