"""Zero-shot scorer: cosine similarity between a document and the texts a label is known by."""

from __future__ import annotations

import numpy as np

from ..encoders.base import Encoder, l2_normalize
from ..index import LabelIndex
from ..labels import LabelSet
from . import Batch, candidate_dots


class LabelTextScorer:
    """Each label embedded through several text views (name: description, ancestor path, aliases); a
    document's score for a label is the mean cosine over the views.

    Labels with no description are embedded once per domain context ("computing: character") and the
    vectors averaged. The mean view vector is the shortlist index, so retrieval and scoring agree on what
    a label looks like.
    """

    def __init__(self, views: tuple[str, ...] = ("description", "path", "aliases"), contexts: tuple[str, ...] = ()) -> None:
        self.views = views
        self.contexts = contexts

    def fit(self, label_set: LabelSet, encoder: Encoder, *, show_progress: bool = False) -> "LabelTextScorer":
        available = label_set.text_views()
        views: list[str] = []
        for v in self.views:  # a view identical to an earlier one (names only: name == description) adds nothing
            if v in available and all(available[v] != available[u] for u in views):
                views.append(v)
        self.views_ = tuple(views) or ("name",)
        self.view_vectors_ = self._embed(available, label_set, encoder, range(len(label_set)), show_progress)
        self.index_ = LabelIndex(l2_normalize(self.view_vectors_.mean(axis=0)))
        return self

    def _embed(
        self, available: dict[str, list[str]], label_set: LabelSet, encoder: Encoder, positions: range, show_progress: bool
    ) -> np.ndarray:
        """(views, labels, dim): bare names averaged over the contexts, described labels as they are."""
        texts: list[str] = []
        owners: list[int] = []  # row in the (views × labels) grid each text belongs to
        for v_i, view in enumerate(self.views_):
            for row, variants in enumerate(label_variants(label_set, available[view], self.contexts, positions)):
                texts += variants
                owners += [v_i * len(positions) + row] * len(variants)
        vectors = encoder.encode(texts, show_progress=show_progress)
        owners_arr = np.asarray(owners)
        grid = np.zeros((len(self.views_) * len(positions), vectors.shape[1]), dtype=np.float32)
        np.add.at(grid, owners_arr, vectors)
        return l2_normalize(grid).reshape(len(self.views_), len(positions), -1)

    def shortlist(self, batch: Batch, size: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index_.search(batch.vectors, size)

    def score(self, batch: Batch, candidates: np.ndarray) -> np.ndarray:
        """The mean of the cosines over the views is the dot product with the mean view vector: one gather of
        candidate vectors instead of one per view."""
        return candidate_dots(batch.vectors, self.view_vectors_.mean(axis=0, dtype=np.float32), candidates)

    def add_labels(self, label_set: LabelSet, encoder: Encoder) -> None:
        """Embed labels appended to the label set since fit; they are suggestible at once."""
        start = self.view_vectors_.shape[1]
        vectors = self._embed(label_set.text_views(), label_set, encoder, range(start, len(label_set)), False)
        self.view_vectors_ = np.concatenate([self.view_vectors_, vectors], axis=1)
        self.index_.add(l2_normalize(vectors.mean(axis=0)))


def label_variants(label_set: LabelSet, view: list[str], contexts: tuple[str, ...],
                   positions: range | None = None) -> list[list[str]]:
    """The texts each label is embedded as in one view: a bare name once per domain context ("computing:
    character"), a described label as it is."""
    positions = range(len(label_set)) if positions is None else positions
    return [[f"{c}: {view[i]}" for c in contexts] if contexts and not label_set[i].description else [view[i]]
            for i in positions]
