"""Nearest-examples scorer: the labels of the most similar training documents, voted by similarity.

Strong where a label's documents are varied (a mean vector blurs them) and for labels with a handful of
examples; adding examples is appending rows. It keeps each example's id and opening words, so that an
explanation can show which training documents a suggestion came from.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ..index import GraphIndex, LabelIndex
from ..labels import LabelSet
from ..sparse import csr_lookup, csr_top_k, to_csr
from ..state import from_params, params_of, read_state, write_state
from .base import EXAMPLES, Batch, FitInput

# From this many examples on, neighbours are found through a graph (GraphIndex, approximately): measured on
# wordnet-taxonomy, its search is 2.7× faster than the exact one at 20k examples (4.5× at 65k), recall@20 0.94
# (0.91), and building it costs 3 s (11 s) of CPU, about 8k (14k) exact queries.
GRAPH_FROM = 20_000


def snippet(text: str, chars: int) -> str | None:
    """The text's first `chars` characters, whitespace collapsed, "…" where cut (None when none are kept)."""
    if chars <= 0:
        return None
    flat = " ".join(text.split())
    return flat if len(flat) <= chars else flat[: chars - 1].rstrip() + "…"


@dataclass
class NeighbourScorer:
    """`graph_from`: the number of examples from which they are searched through a graph (None: always exactly).
    A held-out fold's scorer searches exactly: it ranks one fold only, too few queries to pay for a graph.
    `snippet_chars`: how much of each example's text the model keeps to show in explanations (0: none, for
    training texts that must not leave the training machine)."""

    name: ClassVar[str] = "neighbours"
    needs: ClassVar[frozenset[str]] = frozenset({EXAMPLES})
    proposes: ClassVar[bool] = True
    fusion_only: ClassVar[bool] = False
    retrieval: ClassVar[int | None] = None

    neighbours: int = 20
    graph_from: int | None = GRAPH_FROM
    snippet_chars: int = 160

    def fit(self, data: FitInput) -> "NeighbourScorer":
        graph = self.graph_from is not None and not data.fold and len(data.vectors) >= self.graph_from
        self.index_ = GraphIndex(data.vectors) if graph else LabelIndex(data.vectors)
        self.targets_ = sp.csr_matrix(data.targets, dtype=np.float32)
        self.example_ids_, self.snippets_ = self._described(data)
        return self

    def _described(self, data: FitInput) -> tuple[list[str | None], list[str | None]]:
        """Each example's id and snippet, in row order (None where not known or not kept)."""
        n = len(data.vectors)
        ids = list(data.ids) if data.ids else [None] * n
        texts = data.texts if len(data.texts) == n else [""] * n
        return ids, [snippet(t, self.snippet_chars) if t else None for t in texts]

    def update(self, data: FitInput) -> "NeighbourScorer":
        grown = copy.copy(self)
        grown.index_ = self.index_.copy()
        grown.index_.add(data.vectors)
        grown.targets_ = sp.vstack([self.targets_, sp.csr_matrix(data.targets, dtype=np.float32)]).tocsr()
        ids, snippets = self._described(data)
        grown.example_ids_, grown.snippets_ = self.example_ids_ + ids, self.snippets_ + snippets
        return grown

    def add_labels(self, data: FitInput, start: int) -> "NeighbourScorer":
        grown = copy.copy(self)
        new = len(data.labels) - start
        grown.targets_ = sp.hstack([self.targets_, sp.csr_matrix((self.targets_.shape[0], new))]).tocsr()
        return grown

    def predict(self, vectors: np.ndarray) -> sp.csr_matrix:
        """(n, L) mean over the k nearest examples of similarity × has-label, in [0, 1]: not normalised by
        the neighbours' total, so distant neighbours are weak evidence rather than a full vote."""
        nn, sims = self.index_.search(vectors, self.neighbours)
        weights = np.maximum(sims, 0) / self.neighbours
        return (to_csr(nn, weights, len(self.index_)) @ self.targets_).tocsr()

    def _votes(self, batch: Batch) -> sp.csr_matrix:
        return batch.cached((id(self), "votes"), lambda: self.predict(batch.vectors))

    def shortlist(self, batch: Batch, size: int) -> tuple[np.ndarray, np.ndarray]:
        return csr_top_k(self._votes(batch), size)

    def score(self, batch: Batch, candidates: np.ndarray) -> np.ndarray:
        return csr_lookup(self._votes(batch), candidates)

    def save(self, folder: Path) -> None:
        graph = isinstance(self.index_, GraphIndex)
        write_state(folder, params=params_of(self), targets=self.targets_, graph=graph,
                    index=self.index_.to_bytes() if graph else self.index_.vectors,
                    example_ids=self.example_ids_, snippets=self.snippets_)

    @classmethod
    def load(cls, folder: Path, labels: LabelSet) -> "NeighbourScorer":
        state = read_state(folder)
        scorer = from_params(cls, state["params"])
        scorer.index_ = GraphIndex.from_bytes(state["index"]) if state["graph"] else LabelIndex(state["index"])
        scorer.targets_ = state["targets"]
        unknown = [None] * scorer.targets_.shape[0]  # a model saved before examples were described
        scorer.example_ids_ = state.get("example_ids", unknown)
        scorer.snippets_ = state.get("snippets", unknown)
        return scorer
