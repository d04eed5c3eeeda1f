"""Virtual pNET cohorts: generated with correlated covariates, or loaded from a file."""

from sim.patients.cohort import CohortSpec, generate_cohort
from sim.patients.io import check_prior_therapies, load_cohort, validate_cohort
from sim.patients.schema import COLUMNS

__all__ = ["COLUMNS", "CohortSpec", "check_prior_therapies", "generate_cohort", "load_cohort", "validate_cohort"]
