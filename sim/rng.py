"""Named random streams with random access by patient: common random numbers by design.

Every random quantity in the model is an inverse-transform of a uniform taken from a
*named stream* (e.g. ``"pfs"``, ``"tox/neutropenia"``) at a *slot* (e.g. the line number)
for a given patient. A stream is a counter-based Philox generator keyed by
``SeedSequence(master_seed, spawn_key=(crc32(name),))``; patient ``i`` owns the block of
``WIDTH`` consecutive uniforms starting at position ``i * WIDTH``. Consequences:

* adding a stream never shifts another stream (streams are keyed by name, not position);
* the same patient meets the same uniform for the same purpose in every strategy
  (common random numbers), whatever the other patients or strategies are;
* draws for patients ``[a, b)`` are identical whether generated alone or inside a larger
  batch, so results do not depend on chunking, worker count or job order.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

#: Uniforms per patient per stream. Slots ``0..WIDTH-1``; must be a multiple of 4
#: (Philox4x64 produces four 64-bit words per counter step).
WIDTH = 32


def stream_key(master_seed: int, name: str, sample: int = 0) -> np.ndarray:
    """Philox key for stream ``name`` (and PSA ``sample``) under ``master_seed``."""
    ss = np.random.SeedSequence(int(master_seed), spawn_key=(zlib.crc32(name.encode()), int(sample)))
    return ss.generate_state(2, dtype=np.uint64)


def uniforms(master_seed: int, name: str, first: int, count: int, sample: int = 0) -> np.ndarray:
    """Uniforms on (0, 1) of stream ``name`` for patients ``first .. first+count-1``.

    Returns an array of shape ``(count, WIDTH)``; row ``j`` belongs to patient ``first + j``.
    Exact zeros are mapped to the smallest positive double so that ``-log(u)`` is finite.
    """
    if first < 0 or count < 0:
        raise ValueError("first and count must be non-negative")
    counter = np.array([first * (WIDTH // 4), 0, 0, 0], dtype=np.uint64)
    gen = np.random.Generator(np.random.Philox(key=stream_key(master_seed, name, sample), counter=counter))
    u = gen.random((count, WIDTH))
    # draws are multiples of 2^-53, so this only lifts exact zeros (one pass, no mask)
    return np.maximum(u, np.finfo(float).tiny, out=u)


@dataclass
class Draws:
    """Lazily generated named streams for a block of patients (one chunk of a cohort).

    ``draws["pfs"]`` is the ``(n, WIDTH)`` array of stream ``"pfs"`` for this block.
    """

    master_seed: int
    first: int
    count: int
    sample: int = 0
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __getitem__(self, name: str) -> np.ndarray:
        arr = self._cache.get(name)
        if arr is None:
            arr = self._generate(name)
            self._cache[name] = arr
        return arr

    def _generate(self, name: str) -> np.ndarray:
        return uniforms(self.master_seed, name, self.first, self.count, self.sample)

    def derive(self, name: str, values: np.ndarray) -> None:
        """Register a stream computed from others (e.g. frailty-mixed PFS uniforms)."""
        self._cache[name] = np.asarray(values, dtype=float)
