"""Classifier: label text, unlabeled documents and (later) examples, combined into ranked suggestions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .context import domain_words
from .encoders import Encoder, get_encoder
from .labels import LabelSet
from .scorers import Batch
from .scorers.hierarchy import HierarchyScorer
from .scorers.label_text import LabelTextScorer
from .scorers.prior import PriorScorer, softmax_rows
from .scorers.propagation import PropagationScorer
from .sparse import csr_top_k, to_csr

# Auto context embeds each bare label once per context word: skip it when that would be too many texts.
AUTO_CONTEXT_WORDS = 10
AUTO_CONTEXT_MAX_TEXTS = 30_000


@dataclass(frozen=True)
class Suggestion:
    label_id: str
    name: str
    score: float


class Classifier:
    """Ranks labels for documents from the labels' texts alone, improved by unlabeled documents.

    Unlabeled documents (given to `fit`, or else the batch being classified) teach three things: the
    domain that bare label names live in (`context`), how common each label is (`prior_*`), and which
    documents are neighbours whose labels should agree (`propagation_*`).
    """

    def __init__(
        self,
        labels: LabelSet,
        *,
        encoder: str | Encoder = "default",
        views: tuple[str, ...] = ("description", "path", "aliases"),
        context: str = "auto",
        shortlist: int = 100,
        temperature: float = 0.05,
        prior_iterations: int = 1,
        prior_strength: float = 1.0,
        hierarchy: bool = True,
        propagation_neighbours: int = 10,
        propagation_alpha: float = 0.5,
        adapt: bool = True,
        show_progress: bool = False,
    ) -> None:
        self.labels = labels
        self.encoder = encoder
        self.views = views
        self.context = context
        self.shortlist = shortlist
        self.temperature = temperature
        self.prior_iterations = prior_iterations
        self.prior_strength = prior_strength
        self.hierarchy = hierarchy
        self.propagation_neighbours = propagation_neighbours
        self.propagation_alpha = propagation_alpha
        self.adapt = adapt
        self.show_progress = show_progress

    # ------------------------------------------------------------------ fitting
    def fit(self, unlabeled: Sequence[str] | None = None) -> "Classifier":
        """Embed the labels; with unlabeled texts, also learn context, priors and the neighbour graph."""
        self.encoder_ = get_encoder(self.encoder) if isinstance(self.encoder, str) else self.encoder
        pool = self._encode(unlabeled) if unlabeled else None
        self.contexts_ = self._contexts(unlabeled, pool)
        self.label_text_ = LabelTextScorer(self.views, self.contexts_).fit(
            self.labels, self.encoder_, show_progress=self.show_progress
        )
        self.hierarchy_ = HierarchyScorer().fit(self.labels) if self.hierarchy and self.labels.is_hierarchical else None
        self.pool_ = None if pool is None else self._adapt(Batch(list(unlabeled), pool))
        return self

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder_.encode(list(texts), show_progress=self.show_progress)

    def _contexts(self, texts: Sequence[str] | None, vectors: np.ndarray | None) -> tuple[str, ...]:
        if self.context != "auto":
            return tuple(c.strip() for c in self.context.split(",") if c.strip())
        bare = sum(not label.description for label in self.labels)
        if not texts or not bare or bare * len(self.views) * AUTO_CONTEXT_WORDS > AUTO_CONTEXT_MAX_TEXTS:
            return ()
        return tuple(domain_words(texts, vectors, self.encoder_, AUTO_CONTEXT_WORDS))

    def _adapt(self, pool: Batch) -> tuple[PriorScorer | None, PropagationScorer | None]:
        """Priors and the neighbour graph from a pool of unlabeled documents."""
        candidates, sims = self._candidates(pool)
        prior = None
        if self.prior_iterations > 0:
            prior = PriorScorer(self.temperature, self.prior_iterations, self.prior_strength)
            prior.fit(candidates, sims, len(self.labels))
        propagation = None
        if self.propagation_alpha > 0 and self.propagation_neighbours > 0 and len(pool.texts) > 1:
            posteriors = softmax_rows(self._logits(pool, candidates, sims, prior))
            propagation = PropagationScorer(self.propagation_neighbours, self.propagation_alpha).fit(
                pool.vectors, to_csr(candidates, posteriors, len(self.labels))
            )
        return prior, propagation

    # ------------------------------------------------------------------ scoring
    def _candidates(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """Shortlist by label text (plus ancestors in a hierarchy) and exact per-view similarities."""
        candidates, _ = self.label_text_.shortlist(batch, self.shortlist)
        if self.hierarchy_ is not None:
            candidates = self.hierarchy_.expand(candidates)
        sims = self.label_text_.score(batch, candidates)
        if self.hierarchy_ is not None:
            sims = self.hierarchy_.score(candidates, sims)
        return candidates, sims

    def _logits(self, batch: Batch, candidates: np.ndarray, sims: np.ndarray, prior: PriorScorer | None) -> np.ndarray:
        logits = sims / self.temperature
        return logits + prior.score(batch, candidates) if prior is not None else logits

    def rank(self, texts: Sequence[str], k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """Top-k label positions and scores (posterior-like, in [0, 1]) per text, best first; -1 pads."""
        vectors = self._encode(texts)
        batch = Batch(list(texts), vectors)
        prior, propagation = self.pool_ if self.pool_ is not None else (None, None)
        if self.pool_ is None and self.adapt and len(texts) > 1:
            prior, propagation = self._adapt(batch)
        candidates, sims = self._candidates(batch)
        posteriors = to_csr(candidates, softmax_rows(self._logits(batch, candidates, sims, prior)), len(self.labels))
        if propagation is not None:
            posteriors = propagation.smooth(vectors, posteriors)
        return csr_top_k(posteriors, k)

    def suggest(self, texts: Sequence[str], k: int = 5) -> list[list[Suggestion]]:
        positions, scores = self.rank(texts, k)
        ids, names = self.labels.ids, self.labels.names
        return [
            [Suggestion(ids[p], names[p], float(s)) for p, s in zip(row_p, row_s) if p >= 0]
            for row_p, row_s in zip(positions, scores)
        ]
