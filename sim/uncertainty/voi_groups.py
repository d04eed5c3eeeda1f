"""Row labels of the value-of-information tables (:mod:`sim.uncertainty.psa_analysis`): the EVPI row and
the EVPPI row of all parameters together. Kept apart from the estimators so that the report
(:mod:`sim.report.html`) reads them without importing the VOI regression machinery."""

EVPI_GROUP, ALL_GROUP = "ALL (EVPI)", "all parameters (EVPPI)"
