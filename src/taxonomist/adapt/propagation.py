"""Label propagation on a nearest-neighbour graph of documents (ZLaP-style smoothing).

A document's zero-shot posteriors are noisy; its nearest neighbours among the unlabeled documents
usually share its labels. Mixing in the neighbours' posteriors follows the geometry of the corpus
rather than straight-line similarity to the label text alone.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ..index import LabelIndex
from ..sparse import to_csr
from ..state import from_params, params_of, read_state, write_state

SELF_SIMILARITY = 0.9999  # a neighbour this close is the document itself (or an exact duplicate)


@dataclass
class Propagation:
    name: ClassVar[str] = "propagation"

    neighbours: int = 10
    alpha: float = 0.5

    def fit(self, vectors: np.ndarray, posteriors: sp.csr_matrix) -> "Propagation":
        """Unlabeled documents (vectors) and their posteriors over labels (CSR, rows sum to 1)."""
        self.index_ = LabelIndex(vectors)
        self.posteriors_ = posteriors.tocsr()
        return self

    def neighbour_weights(self, vectors: np.ndarray) -> sp.csr_matrix:
        """Row-normalised weights over the k nearest pool documents, the document itself excluded."""
        k = min(self.neighbours + 1, len(self.index_))
        nn, sims = self.index_.search(vectors, k)
        keep = sims < SELF_SIMILARITY
        # Keep at most `neighbours` per row after dropping self-matches.
        keep &= np.cumsum(keep, axis=1) <= self.neighbours
        weights = to_csr(np.where(keep, nn, -1), np.ones_like(sims), len(self.index_))
        counts = np.maximum(np.asarray(weights.sum(axis=1)).ravel(), 1)
        return sp.diags(1.0 / counts) @ weights

    def smooth(self, vectors: np.ndarray, posteriors: sp.csr_matrix) -> sp.csr_matrix:
        """(1 − α)·own posteriors + α·mean of the neighbours' posteriors (own alone where none is left)."""
        weights = self.neighbour_weights(vectors)
        alone = np.asarray(weights.sum(axis=1)).ravel() == 0
        own = sp.diags(np.where(alone, 1.0, 1 - self.alpha)) @ posteriors
        return (own + self.alpha * (weights @ self.posteriors_)).tocsr()

    def add_labels(self, n_new: int) -> "Propagation":
        grown = copy.copy(self)
        grown.posteriors_ = sp.hstack([self.posteriors_, sp.csr_matrix((self.posteriors_.shape[0], n_new))]).tocsr()
        return grown

    def save(self, folder: Path) -> None:
        write_state(folder, params=params_of(self), vectors=self.index_.vectors, posteriors=self.posteriors_)

    @classmethod
    def load(cls, folder: Path) -> "Propagation":
        state = read_state(folder)
        return from_params(cls, state["params"]).fit(state["vectors"], state["posteriors"])
