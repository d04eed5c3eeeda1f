"""Therapy definitions (efficacy, toxicity, schedule, eligibility); what happens on a line is in :mod:`sim.kernel.line`."""

from sim.therapies.definition import AdverseEvent, Rechallenge, Therapy
from sim.therapies.registry import build_therapies

__all__ = ["AdverseEvent", "Rechallenge", "Therapy", "build_therapies"]
