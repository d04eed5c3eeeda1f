"""Overrides that make each shipped experiment kind finish in seconds, for the tests (test-only data:
they are not configuration a user sets)."""

SMOKE = {
    'default': ['cohort.n=60', 'output.figures=false'],
    'dsa': ['cohort.n=40', 'output.figures=false', 'experiment.select=[economics.drugs.sunitinib.pack_price,therapies.sunitinib_rechallenge.rechallenge.time_ratio]', 'experiment.two_way.n=2', 'experiment.thresholds=[economics.drugs.sunitinib.pack_price]'],
    'emulation': ['cohort.n=300', 'experiment.uncertainty.samples=2', 'experiment.design.sample_sizes=[20,40]', 'output.figures=false'],
    'evsi': ['cohort.n=60', 'psa.samples=8', 'psa.workers=1', 'experiment.trial.n_boot=5', 'experiment.trial.sample_sizes=[10,20]', 'output.figures=false'],
    'optimise': ['cohort.n=40', 'experiment.max_active_lines=2', 'experiment.screen.patients=40', 'experiment.confirm.top=3', 'experiment.confirm.patients=60', 'experiment.psa_top.top=2', 'experiment.psa_top.samples=2', 'experiment.psa_top.patients=30', 'experiment.psa_top.workers=1', 'output.figures=false'],
    'psa': ['cohort.n=30', 'psa.samples=3', 'psa.workers=1', 'psa.evppi.n_boot=10', 'output.figures=false'],
    'validation': ['experiment.replicates=3', 'experiment.trials=[radiant3,e2211]', 'output.figures=false'],
}
