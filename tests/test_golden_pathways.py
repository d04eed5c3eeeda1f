"""Stored pathways of every shipped strategy: the model gives, for its seed, the per-patient results
it gave when they were stored (``tests/data/golden/``), every frame equal to round-off.

This is the reference a re-implementation of the clinical kernel (e.g. a compiled one) must
reproduce: "same seed, same pathways". A change of the model itself (a parameter, a rule) changes
them on purpose; then regenerate with ``python tests/test_golden_pathways.py --write`` and say in the
commit why the pathways changed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import CONFIG_DIR, compose_config  # noqa: E402
from sim.config import build_model  # noqa: E402
from sim.run.executors import simulate  # noqa: E402

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
STRATEGIES = sorted(p.stem for p in (CONFIG_DIR / "strategy").glob("*.yaml"))
N = 400
FRAMES = ("patients", "lines", "events")


def frames() -> dict[str, pd.DataFrame]:
    """The three frames of every shipped strategy on ``N`` patients (vectorised executor, the default seed)."""
    m = build_model(compose_config([f"cohort.n={N}", f"experiment.strategies=[{','.join(STRATEGIES)}]"]))
    rec = simulate(m.cohort, m.strategies, m.therapies, m.rules, m.lifetable, m.seed, engine="vectorised")
    return dict(zip(FRAMES, rec.frames()))


@pytest.fixture(scope="module")
def current():
    return frames()


@pytest.mark.parametrize("name", FRAMES)
def test_every_shipped_strategy_gives_the_stored_pathways(name, current):
    stored = pd.read_parquet(GOLDEN / f"{name}.parquet")
    got = current[name]
    assert list(got.columns) == list(stored.columns), f"{name}: columns differ from the stored ones"
    assert set(stored["strategy"]) == set(STRATEGIES), "a shipped strategy was added or removed: regenerate"
    pd.testing.assert_frame_equal(got.reset_index(drop=True), stored.reset_index(drop=True), check_dtype=False,
                                  check_exact=False, rtol=1e-12, atol=1e-12, obj=name)


if __name__ == "__main__" and "--write" in sys.argv:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name, df in frames().items():
        df.to_parquet(GOLDEN / f"{name}.parquet", index=False, compression="zstd")
        print(name, len(df), "rows")
