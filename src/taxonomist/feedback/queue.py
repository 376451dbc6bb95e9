"""The review queue: which documents a reviewer should look at next, from what the feedback store holds and the
project's current model.

Two steps, each cheap:
1. Uncertainty (margin sampling): a document whose best two labels are nearly tied is one where the model cannot
   tell its first choice from its second, so a verdict on it teaches the most. Uncertainty is 1 − (top-1 − top-2)
   of the calibrated probabilities where the model has them, else of the scores (both in [0, 1]). The numbers
   come from the suggestions the store holds for the current model (same checksum); documents served by another
   model, or never served, are ranked by the current model now.
2. Spread: the most uncertain documents tend to come in clusters of near-duplicates (the same complaint in many
   words), and a page of them teaches one thing. From a shortlist of the `shortlist` × n most uncertain, a page
   is picked greedily: the most uncertain first, then each time the document whose nearest already-picked
   document is farthest (cosine), weighted by its uncertainty (k-centre greedy, as in core-set active learning,
   on an uncertainty-filtered pool as in diverse mini-batch active learning). That costs n × shortlist dot
   products on vectors of that shortlist only.

Reviewed documents (any verdict standing) are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the store is used without loading models (a server's writer, tests' child processes)
    from ..project import Project
from .store import Document, FeedbackStore, StoredSuggestion

SHORTLIST = 5  # the page is spread over this many times its size of the most uncertain documents
MAX_RANKED = 2000  # documents without current suggestions ranked with the model per call, oldest first
TOP = 5  # suggestions ranked per document for those


@dataclass(frozen=True)
class ReviewItem:
    """A document to review, how unsure the model is of it, and the suggestions that uncertainty was read off
    (`stored`: served by the current model and kept in the store; else ranked just now, and not recorded: the
    queue only reads, so a caller that shows them records them with FeedbackStore.record_suggestions)."""

    document: Document
    uncertainty: float
    suggestions: tuple[StoredSuggestion, ...]
    stored: bool


def uncertainty(suggestions: tuple[StoredSuggestion, ...] | list[StoredSuggestion]) -> float:
    """1 − the margin between the best two suggestions (probabilities where all have one, else scores); a
    document without suggestions is the most uncertain of all."""
    if not suggestions:
        return 1.0
    use_p = all(s.probability is not None for s in suggestions)
    values = sorted((s.probability if use_p else s.score for s in suggestions), reverse=True) + [0.0]
    return float(np.clip(1.0 - (values[0] - values[1]), 0.0, 1.0))


def review_queue(store: FeedbackStore, project: Project, n: int = 10, *, shortlist: int = SHORTLIST,
                 max_ranked: int = MAX_RANKED) -> list[ReviewItem]:
    """The next `n` documents of `project` (its project_id in the store) to review, most uncertain first, spread
    over the corpus (see the module). Of the documents without suggestions from the current model, the
    `max_ranked` seen first are ranked per call (a bound on the work; the rest wait for a later page)."""
    if n < 1:
        return []
    reviewed = store.reviewed_documents(project.project_id)
    pending = [i for i in store.document_ids(project.project_id) if i not in reviewed]
    checksum = project.checksum()
    served = store.latest_suggestions(project.project_id)
    scored: list[tuple[float, int, tuple[StoredSuggestion, ...]]] = []
    unranked: list[int] = []
    for document in pending:
        stored = served.get(document)
        if checksum is not None and stored is not None and stored[0] == checksum:
            scored.append((uncertainty(stored[1]), document, tuple(stored[1])))
        else:
            unranked.append(document)
    items = _ranked_now(project, store.documents(project.project_id, unranked[:max_ranked]))
    scored.sort(key=lambda s: (-s[0], s[1]))
    size = max(n, shortlist * n)
    texts = {d.id: d for d in store.documents(project.project_id, [s[1] for s in scored[:size]])}
    items += [ReviewItem(texts[document], u, suggestions, True) for u, document, suggestions in scored[:size]]
    items.sort(key=lambda item: (-item.uncertainty, item.document.id))
    pool = items[:size]
    if len(pool) <= n:
        return pool
    vectors = project.model.encode([item.document.text for item in pool])
    picked = spread(vectors, np.array([item.uncertainty for item in pool]), n)
    return sorted((pool[i] for i in picked), key=lambda item: (-item.uncertainty, item.document.id))


def _ranked_now(project: Project, documents: list[Document]) -> list[ReviewItem]:
    if not documents:
        return []
    suggestions = project.suggest([d.text for d in documents], TOP)
    items = []
    for document, row in zip(documents, suggestions):
        stored = tuple(StoredSuggestion(s.label_id, s.score, s.probability, rank)
                       for rank, s in enumerate(row, start=1))
        items.append(ReviewItem(document, uncertainty(stored), stored, False))
    return items


def spread(vectors: np.ndarray, weights: np.ndarray, n: int) -> list[int]:
    """`n` row indices picked greedily: the heaviest first, then each time the row that maximises weight × cosine
    distance to its nearest picked row (L2-normalised `vectors`). A row identical to a picked one scores 0, so
    near-duplicates come last."""
    weights = np.maximum(np.asarray(weights, dtype=np.float64), 1e-6)  # a sure document still spreads
    picked = [int(np.argmax(weights))]
    nearest = 1.0 - vectors @ vectors[picked[0]]  # cosine distance to the nearest picked row
    while len(picked) < min(n, len(vectors)):
        gain = weights * np.maximum(nearest, 0.0)
        gain[picked] = -1.0
        chosen = int(np.argmax(gain))
        picked.append(chosen)
        nearest = np.minimum(nearest, 1.0 - vectors @ vectors[chosen])
    return picked
