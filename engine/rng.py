"""Seeding: one place turns user seeds and partition keys into numpy Generators."""

from __future__ import annotations

import hashlib

import numpy as np

from engine.types import SeedLike


def as_generator(seed: SeedLike) -> np.random.Generator:
    """Normalise ``seed`` (int, SeedSequence, Generator or None) to a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def seed_sequence_for(seed: int, *keys: str) -> np.random.SeedSequence:
    """A SeedSequence derived from a run seed and string keys (e.g. a scenario name).

    The keys are hashed with SHA-256 (stable across processes, unlike ``hash()``) and
    fed as extra entropy, so ``(seed, "bear")`` always gives the same stream and
    different keys give independent streams.
    """
    words = [int(seed)]
    for key in keys:
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        words.extend(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))
    return np.random.SeedSequence(words)
