"""Uncertainty: parameters and their distributions (:mod:`~sim.uncertainty.params`), the
probabilistic (:mod:`~sim.uncertainty.psa`, :mod:`~sim.uncertainty.psa_analysis`) and deterministic
(:mod:`~sim.uncertainty.dsa`, :mod:`~sim.uncertainty.dsa_twoway`) sensitivity analyses, value of
information (:mod:`~sim.uncertainty.voi`, :mod:`~sim.uncertainty.evsi`) and the Monte Carlo share of
the PSA variance (:mod:`~sim.uncertainty.mc_variance`). The economics they evaluate is
:mod:`sim.economics` (costs, QALYs, discounting, incremental analysis)."""
