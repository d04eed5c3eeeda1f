"""Therapy definitions (efficacy, toxicity, schedule, eligibility) and the per-line rules."""

from sim.therapies.definition import AdverseEvent, Rechallenge, Therapy
from sim.therapies.line import LineHistory, LineResult, ModelRules, eligible, plan_line
from sim.therapies.registry import build_therapies

__all__ = ["AdverseEvent", "LineHistory", "LineResult", "ModelRules", "Rechallenge", "Therapy",
           "build_therapies", "eligible", "plan_line"]
