"""Transforms: what a model learns from an unlabeled pool (label priors, its neighbour graph, a pseudo-label
classifier) and from the label hierarchy, applied to the zero-shot posteriors rather than scoring on their
own. Unlike scorers they work in a fixed order (scoring.py): hierarchy on the shortlist, prior on the
logits, propagation on the posteriors, self-training mixed in last."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ..decision import Decision
from .hierarchy import Hierarchy
from .prior import LabelPrior, softmax_rows
from .propagation import Propagation
from .self_training import SelfTraining

__all__ = ["SAVED", "Adaptation", "Hierarchy", "LabelPrior", "Propagation", "SelfTraining", "softmax_rows"]

# The transforms a model folder keeps, by name (the hierarchy is rebuilt from the labels, self-training is not
# kept: see adapt/self_training.py).
SAVED = {cls.name: cls for cls in (LabelPrior, Propagation)}


@dataclass
class Adaptation:
    """The transforms fitted on one unlabeled pool; each None when switched off or not enough data. Read-only once
    made: growing a model makes a new one (`without_cache`, `with_labels`).

    `posteriors`, `vectors`, `rows`: the pool's own smoothed posteriors and vectors by text (not saved). A batch
    drawn from the pool (the usual case: the pool is the corpus being classified) reuses them instead of encoding
    and ranking its documents again. `decisions`: which of STEPS ran on this pool, and why (decision.py)."""

    STEPS: ClassVar[tuple[str, ...]] = ("label prior", "propagation", "self-training")

    prior: LabelPrior | None = None
    propagation: Propagation | None = None
    self_training: SelfTraining | None = None
    posteriors: sp.csr_matrix | None = None
    vectors: np.ndarray | None = None
    rows: dict[str, int] | None = None
    decisions: tuple[Decision, ...] = ()

    def pool_rows(self, texts: Sequence[str]) -> np.ndarray:
        """Each text's row in the pool's posteriors, -1 where it is not there."""
        if self.rows is None:
            return np.full(len(texts), -1, dtype=np.int64)
        return np.fromiter((self.rows.get(t, -1) for t in texts), dtype=np.int64, count=len(texts))

    def without_cache(self) -> "Adaptation":
        """The same transforms, without the pool's posteriors (stale once the scorers they came from change)."""
        return replace(self, posteriors=None, vectors=None, rows=None)

    def with_labels(self, n_new: int) -> "Adaptation":
        """Labels appended to the label set: unseen in the pool. The self-training classifier knows the old labels
        only and goes."""
        return Adaptation(None if self.prior is None else self.prior.add_labels(n_new),
                          None if self.propagation is None else self.propagation.add_labels(n_new),
                          decisions=self.decisions)
