"""Classifier: label text, unlabeled documents and (later) examples, combined into ranked suggestions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import NotFittedError

from .context import domain_words
from .encoders import Encoder, get_encoder
from .labels import LabelSet
from .scorers import Batch
from .scorers.hierarchy import HierarchyScorer
from .scorers.label_text import LabelTextScorer
from .scorers.prior import PriorScorer, softmax_rows
from .scorers.propagation import PropagationScorer
from .scorers.self_training import SelfTrainingScorer
from .sparse import csr_top_k, to_csr

# Auto context embeds each bare label once per context word: skip it when that would be too many texts.
AUTO_CONTEXT_WORDS = 10
AUTO_CONTEXT_MAX_TEXTS = 30_000
# How a parent is scored through its children (see scorers.hierarchy): "broad" when documents are filed
# under broad labels, "specific" when they carry their most specific label.
HIERARCHY_DISCOUNT = {"broad": 1.0, "specific": 0.9, "off": None}
# Self-training needs pseudo-labelled documents for most labels: pool size per label before it switches on.
# It is off with static encoders (no context): measured on foldoc P@1 −3.5 with model2vec, +0.2 with
# wordllama at most of the static path's time; +1.2 to +1.5 with MiniLM.
SELF_TRAINING_DOCS_PER_LABEL = 10
SELF_TRAINING_SHORTLIST = 50


@dataclass
class Adaptation:
    """Scorers fitted on unlabeled documents; each None when switched off or not enough data."""

    prior: PriorScorer | None = None
    propagation: PropagationScorer | None = None
    self_training: SelfTrainingScorer | None = None


@dataclass(frozen=True)
class Suggestion:
    label_id: str
    name: str
    score: float


class Classifier:
    """Ranks labels for documents from the labels' texts alone, improved by unlabeled documents.

    Unlabeled documents (given to `fit`, or else — with `adapt` — the batch being classified) teach four
    things: the domain that bare label names live in (`context`), how common each label is (`prior_*`),
    which documents are neighbours whose labels should agree (`propagation_*`), and, from a large pool,
    what documents of each label share beyond its name (`self_training`, the weight of a classifier
    fitted on the pool's own best labels).
    """

    def __init__(
        self,
        labels: LabelSet,
        *,
        encoder: str | Encoder = "default",
        views: tuple[str, ...] = ("name", "description", "aliases"),
        context: str = "auto",
        shortlist: int = 100,
        temperature: float = 0.05,
        prior_iterations: int = 1,
        prior_strength: float = 0.5,
        hierarchy: str = "broad",
        propagation_neighbours: int = 10,
        propagation_alpha: float = 0.5,
        self_training: float = 0.5,
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
        self.self_training = self_training
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
        self.hierarchy_ = self._hierarchy()
        self.pool_ = None if pool is None else self._adapt(Batch(list(unlabeled), pool))
        return self

    def _hierarchy(self) -> HierarchyScorer | None:
        if self.hierarchy not in HIERARCHY_DISCOUNT:
            raise ValueError(f"hierarchy must be one of {sorted(HIERARCHY_DISCOUNT)}, got {self.hierarchy!r}")
        discount = HIERARCHY_DISCOUNT[self.hierarchy]
        if discount is None or not self.labels.is_hierarchical:
            return None
        return HierarchyScorer(discount).fit(self.labels)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder_.encode(list(texts), show_progress=self.show_progress)

    def _contexts(self, texts: Sequence[str] | None, vectors: np.ndarray | None) -> tuple[str, ...]:
        if self.context != "auto":
            return tuple(c.strip() for c in self.context.split(",") if c.strip())
        bare = sum(not label.description for label in self.labels)
        if not texts or not bare or bare * len(self.views) * AUTO_CONTEXT_WORDS > AUTO_CONTEXT_MAX_TEXTS:
            return ()
        return tuple(domain_words(texts, vectors, self.encoder_, AUTO_CONTEXT_WORDS))

    def _adapt(self, pool: Batch, shortlist: tuple[np.ndarray, np.ndarray] | None = None) -> Adaptation:
        """What the unlabeled pool teaches: label priors, its neighbour graph, a pseudo-label classifier."""
        candidates, sims = shortlist if shortlist is not None else self._candidates(pool)
        adaptation = Adaptation()
        if self.prior_iterations > 0:
            adaptation.prior = PriorScorer(self.temperature, self.prior_iterations, self.prior_strength)
            adaptation.prior.fit(candidates, sims, len(self.labels))
        posteriors = self._posteriors(pool, candidates, sims, adaptation)
        if self.propagation_alpha > 0 and self.propagation_neighbours > 0 and len(pool.texts) > 1:
            adaptation.propagation = PropagationScorer(self.propagation_neighbours, self.propagation_alpha)
            adaptation.propagation.fit(pool.vectors, posteriors)
            posteriors = adaptation.propagation.smooth(pool.vectors, posteriors)
        if (
            self.self_training > 0
            and not getattr(self.encoder_, "static", False)
            and len(pool.texts) >= SELF_TRAINING_DOCS_PER_LABEL * len(self.labels)
        ):
            best = csr_top_k(posteriors, 1)[0][:, 0]
            if len(np.unique(best)) > 1:  # one pseudo-label class teaches nothing (and sklearn refuses it)
                adaptation.self_training = SelfTrainingScorer().fit(pool, best, len(self.labels))
        return adaptation

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

    def _posteriors(self, batch: Batch, candidates: np.ndarray, sims: np.ndarray, adaptation: Adaptation):
        """Softmax over the shortlist of similarity / temperature + log prior, as a sparse (n, L) matrix."""
        logits = sims / self.temperature
        if adaptation.prior is not None:
            logits = logits + adaptation.prior.score(batch, candidates)
        return to_csr(candidates, softmax_rows(logits), len(self.labels))

    def rank(self, texts: Sequence[str], k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """Top-k label positions and scores (posterior-like, in [0, 1]) per text, best first; -1 pads."""
        if not hasattr(self, "label_text_"):
            raise NotFittedError("call fit() before rank() or suggest()")
        batch = Batch(list(texts), self._encode(texts))
        candidates, sims = self._candidates(batch)
        adaptation = self.pool_ if self.pool_ is not None else Adaptation()
        if self.pool_ is None and self.adapt and len(texts) > 1:
            adaptation = self._adapt(batch, (candidates, sims))
        posteriors = self._posteriors(batch, candidates, sims, adaptation)
        if adaptation.propagation is not None:
            posteriors = adaptation.propagation.smooth(batch.vectors, posteriors)
        if adaptation.self_training is None:
            return csr_top_k(posteriors, k)
        # Geometric mix with the pseudo-label classifier over the best SELF_TRAINING_SHORTLIST candidates.
        top, probs = csr_top_k(posteriors, max(k, SELF_TRAINING_SHORTLIST))
        w = self.self_training
        mixed = (1 - w) * np.log(np.maximum(probs, 1e-12)) + w * adaptation.self_training.score(batch, top)
        mixed = softmax_rows(np.where(top >= 0, mixed, -np.inf))
        return csr_top_k(to_csr(top, mixed, len(self.labels)), k)

    def suggest(self, texts: Sequence[str], k: int = 5) -> list[list[Suggestion]]:
        positions, scores = self.rank(texts, k)
        ids, names = self.labels.ids, self.labels.names
        return [
            [Suggestion(ids[p], names[p], float(s)) for p, s in zip(row_p, row_s) if p >= 0]
            for row_p, row_s in zip(positions, scores)
        ]
