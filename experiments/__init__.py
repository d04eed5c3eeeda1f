"""Entry points (thin Hydra apps). ``pnetsim`` = :func:`experiments.run.main`."""
