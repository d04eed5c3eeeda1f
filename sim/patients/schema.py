"""Cohort table schema: one row per patient, the same columns whether generated or loaded.

=================== ======== =======================================================
column              type     meaning
=================== ======== =======================================================
patient_id          int      0-based identifier; keys the patient's random streams
age                 float    age in years at the start of the first simulated line
sex                 category ``male`` / ``female`` (background mortality)
ecog                int      ECOG performance status, 0-4
grade               category WHO grade ``G1`` / ``G2`` / ``G3`` (well-differentiated)
ki67                float    Ki-67 labelling index, percent (0-100)
functional_status   category ``non_functioning``, ``insulinoma``, ``gastrinoma``,
                             ``glucagonoma``, ``vipoma``
sstr_positive       bool     somatostatin-receptor positive on functional imaging
hepatic_burden      category hepatic tumour burden ``le25`` (<=25 %), ``25to50``, ``gt50``
tempo               category disease tempo ``indolent`` / ``rapid`` (rapidly progressive)
symptomatic_bulk    bool     symptomatic from tumour bulk
diabetes            bool     diabetes mellitus or baseline hyperglycaemia
mgmt_low            bool     low MGMT expression (IHC)
prior_therapies     str      semicolon-separated therapy names given before the model
                             starts (e.g. ``ssa;sunitinib``); empty string for none
=================== ======== =======================================================

A cohort file (``cohort.source``, CSV or Parquet) must hold every column above; extra columns
are accepted and ignored; :mod:`sim.patients.io` lists the other rules (unique ``patient_id``,
each column named once, at least one row).
"""

from __future__ import annotations

SEXES = ("male", "female")
GRADES = ("G1", "G2", "G3")
FUNCTIONAL = ("non_functioning", "insulinoma", "gastrinoma", "glucagonoma", "vipoma")
HEPATIC = ("le25", "25to50", "gt50")
TEMPI = ("indolent", "rapid")

#: column -> (kind, allowed values or (low, high) range)
COLUMNS: dict[str, tuple[str, object]] = {
    "patient_id": ("int", (0, None)),
    "age": ("float", (18.0, 100.0)),
    "sex": ("category", SEXES),
    "ecog": ("int", (0, 4)),
    "grade": ("category", GRADES),
    "ki67": ("float", (0.0, 100.0)),
    "functional_status": ("category", FUNCTIONAL),
    "sstr_positive": ("bool", None),
    "hepatic_burden": ("category", HEPATIC),
    "tempo": ("category", TEMPI),
    "symptomatic_bulk": ("bool", None),
    "diabetes": ("bool", None),
    "mgmt_low": ("bool", None),
    "prior_therapies": ("str", None),
}


def normalise_prior(value: str) -> str:
    """``prior_therapies`` in canonical form: names stripped of spaces, empty names dropped,
    joined by ``;`` (so ``" ssa ; sunitinib;"`` is ``"ssa;sunitinib"``)."""
    return ";".join(x.strip() for x in str(value).split(";") if x.strip())


def prior_names(value: str) -> list[str]:
    """The therapy names of one ``prior_therapies`` value."""
    return [x for x in normalise_prior(value).split(";") if x]
