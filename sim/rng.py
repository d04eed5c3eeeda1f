"""Named random streams with random access by patient and slot: common random numbers by design.

Every random quantity in the model is an inverse transform of a uniform taken from a
*named stream* (e.g. ``"pfs"``, ``"ae/neutropenia"``) at a *slot* (e.g. the line number)
for a given patient. Each (stream, slot) pair is its own counter-based Philox generator,
keyed by ``SeedSequence(master_seed, spawn_key=(crc32(name), slot, sample))``; patient ``i``
owns the ``i``-th double of that generator. Consequences:

* adding a stream or a slot never shifts another (keys are names and slots, not positions);
* the same patient meets the same uniform for the same purpose in every strategy
  (common random numbers), whatever the other patients or strategies are;
* draws for patients ``[a, b)`` are identical whether generated alone or inside a larger
  batch, so results do not depend on chunking, worker count or job order;
* only the (stream, slot) columns that a run reads are ever generated: the cost is
  proportional to what the model uses, not to a fixed width per patient.

Philox4x64 turns one 256-bit counter into four 64-bit words; NumPy's generator starting at
counter ``c`` first produces the words of counter ``c + 1``. Patient ``i`` is therefore word
``i mod 4`` of counter ``i // 4 + 1``, and a block starting at patient ``a`` starts the
generator at counter ``a // 4`` and drops the first ``a mod 4`` doubles.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

#: default number of slots returned by :func:`uniforms` (slots themselves are unbounded)
WIDTH = 32
_TINY = np.finfo(float).tiny


@lru_cache(maxsize=4096)
def stream_key(master_seed: int, name: str, slot: int = 0, sample: int = 0) -> np.ndarray:
    """Philox key of stream ``name`` at ``slot`` (and PSA ``sample``) under ``master_seed``."""
    ss = np.random.SeedSequence(int(master_seed), spawn_key=(zlib.crc32(name.encode()), int(slot), int(sample)))
    key = ss.generate_state(2, dtype=np.uint64)
    key.flags.writeable = False
    return key


def column(master_seed: int, name: str, slot: int, first: int, count: int, sample: int = 0) -> np.ndarray:
    """Uniforms on (0, 1) of stream ``name`` at ``slot`` for patients ``first .. first+count-1``.

    Returns an array of shape ``(count,)``; element ``j`` belongs to patient ``first + j``.
    Exact zeros are lifted to the smallest positive double so that ``-log(u)`` is finite.
    """
    if first < 0 or count < 0 or slot < 0:
        raise ValueError("first, count and slot must be non-negative")
    c0, skip = divmod(int(first), 4)
    bitgen = np.random.Philox(key=stream_key(master_seed, name, int(slot), int(sample)),
                              counter=np.array([c0, 0, 0, 0], dtype=np.uint64))
    u = np.random.Generator(bitgen).random(count + skip)[skip:]
    # draws are multiples of 2^-53, so this only lifts exact zeros
    return np.maximum(u, _TINY, out=u)


def uniforms(master_seed: int, name: str, first: int, count: int, sample: int = 0, width: int = WIDTH) -> np.ndarray:
    """Slots ``0 .. width-1`` of stream ``name`` for patients ``first .. first+count-1``:
    an array of shape ``(count, width)`` whose column ``s`` is :func:`column` at slot ``s``."""
    out = np.empty((count, width))
    for s in range(width):
        out[:, s] = column(master_seed, name, s, first, count, sample)
    return out


def _runs(ids: np.ndarray) -> list[tuple[int, int, int]]:
    """Maximal runs of consecutive ids as ``(position in ids, first id, length)``."""
    if ids.size == 0:
        return []
    cut = np.flatnonzero(np.diff(ids) != 1) + 1
    starts = np.concatenate([[0], cut])
    ends = np.concatenate([cut, [ids.size]])
    return [(int(a), int(ids[a]), int(b - a)) for a, b in zip(starts, ends)]


class Stream:
    """One named stream for a block of patients, indexed like an ``(n, slots)`` array.

    ``stream[rows, k]`` gives the uniforms of chunk rows ``rows`` (an index array or ``:``) at
    slot ``k`` (an int, or an int array with one slot per row). Slots ``0 .. max used`` are
    generated on first use and kept as the columns of one ``(n, slots)`` matrix, so a gather
    with a different slot per row is one fancy index.
    """

    __slots__ = ("draws", "name", "_mat")

    def __init__(self, draws: "Draws", name: str):
        self.draws, self.name = draws, name
        self._mat = np.empty((draws.count, 0))

    def _ensure(self, top: int) -> np.ndarray:
        have = self._mat.shape[1]
        if top >= have:
            mat = np.empty((self.draws.count, top + 1))
            mat[:, :have] = self._mat
            for s in range(have, top + 1):
                mat[:, s] = self.draws._generate(self.name, s)
            self._mat = mat
        return self._mat

    def col(self, slot: int) -> np.ndarray:
        """Uniforms of every patient of the block at ``slot``."""
        return self._ensure(int(slot))[:, int(slot)]

    def __getitem__(self, idx):
        rows, k = idx
        if np.ndim(k) == 0:
            return self.col(int(k))[rows]
        k = np.asarray(k)
        if k.size == 0:
            return np.empty(k.shape)
        return self._ensure(int(k.max()))[rows, k]


@dataclass
class Draws:
    """Lazily generated named streams for a block of patients (one chunk of a cohort).

    ``draws["pfs"][rows, k]`` are the uniforms of stream ``"pfs"`` at slot ``k`` for chunk rows
    ``rows``. ``ids`` (optional) gives the patient id of each chunk row when they are not the
    contiguous range ``first .. first+count-1`` (e.g. a subset of a cohort).
    """

    master_seed: int
    first: int
    count: int
    sample: int = 0
    ids: np.ndarray | None = None
    _streams: dict[str, Stream] = field(default_factory=dict, repr=False)

    @classmethod
    def for_ids(cls, master_seed: int, ids, sample: int = 0) -> "Draws":
        """Draws for the patient ids ``ids`` (any order; contiguous ids take the block form)."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size and np.array_equal(ids, np.arange(ids[0], ids[0] + ids.size)):
            return cls(master_seed, int(ids[0]), int(ids.size), sample)
        return cls(master_seed, -1, int(ids.size), sample, ids=ids)

    def __getitem__(self, name: str) -> Stream:
        s = self._streams.get(name)
        if s is None:
            s = self._streams[name] = Stream(self, name)
        return s

    def _generate(self, name: str, slot: int) -> np.ndarray:
        if self.ids is None:
            return column(self.master_seed, name, slot, self.first, self.count, self.sample)
        out = np.empty(self.count)
        order = np.argsort(self.ids, kind="stable")
        sorted_ids = self.ids[order]
        for pos, first, length in _runs(sorted_ids):
            out[order[pos:pos + length]] = column(self.master_seed, name, slot, first, length, self.sample)
        return out
