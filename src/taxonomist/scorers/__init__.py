"""Scorers: each a way of knowing that a label fits a document, all scoring (document, candidate) pairs.

A scorer's `score(batch, candidates)` takes the documents of one batch and, per document, the label
positions to score (int64 (n, C), -1 = padding) and returns float32 (n, C) with -inf at padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass
class Batch:
    """Documents as the scorers see them: texts for lexical scorers, vectors for dense ones."""

    texts: list[str]
    vectors: np.ndarray  # float32 (n, d), L2-normalised


class Scorer(Protocol):
    def score(self, batch: Batch, candidates: np.ndarray) -> np.ndarray: ...


def gather(per_label: np.ndarray, candidates: np.ndarray, fill: float = -np.inf) -> np.ndarray:
    """Per-label values at candidate positions, `fill` at padding (-1)."""
    out = per_label[np.maximum(candidates, 0)].astype(np.float32)
    out[candidates < 0] = fill
    return out
