"""Zero-shot scorer: cosine similarity between a document and the texts a label is known by."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..encoders.base import Encoder, l2_normalize
from ..index import LabelIndex
from ..labels import LabelSet
from ..state import from_params, params_of, read_state, write_state
from .base import LABEL_TEXTS, Batch, FitInput, candidate_dots


@dataclass
class LabelTextScorer:
    """Each label embedded through several text views (name: description, ancestor path, aliases); a
    document's score for a label is the mean cosine over the views.

    Labels with no description are embedded once per domain context (`FitInput.contexts`: "computing:
    character") and the vectors averaged. The mean view vector is the shortlist index, so retrieval and scoring
    agree on what a label looks like.
    """

    name: ClassVar[str] = "label_text"
    needs: ClassVar[frozenset[str]] = frozenset({LABEL_TEXTS})
    proposes: ClassVar[bool] = False
    fusion_only: ClassVar[bool] = False
    retrieval: ClassVar[int | None] = 1

    views: tuple[str, ...] = ("name", "description", "aliases")

    def fit(self, data: FitInput) -> "LabelTextScorer":
        available = data.labels.text_views()
        views: list[str] = []
        for v in self.views:  # a view identical to an earlier one (names only: name == description) adds nothing
            if v in available and all(available[v] != available[u] for u in views):
                views.append(v)
        self.views_ = tuple(views) or ("name",)
        self.contexts_ = tuple(data.contexts)
        return self._set(self._embed(available, data.labels, data.encoder, range(len(data.labels)),
                                      data.show_progress))

    def _set(self, view_vectors: np.ndarray) -> "LabelTextScorer":
        self.view_vectors_ = view_vectors
        # The mean of the cosines over the views is the dot product with the mean view vector: one gather of
        # candidate vectors instead of one per view.
        self.mean_vectors_ = view_vectors.mean(axis=0, dtype=np.float32)
        self.index_ = LabelIndex(l2_normalize(view_vectors.mean(axis=0)))
        return self

    def _embed(
        self, available: dict[str, list[str]], label_set: LabelSet, encoder: Encoder, positions: range, show_progress: bool
    ) -> np.ndarray:
        """(views, labels, dim): bare names averaged over the contexts, described labels as they are."""
        texts: list[str] = []
        owners: list[int] = []  # row in the (views × labels) grid each text belongs to
        for v_i, view in enumerate(self.views_):
            for row, variants in enumerate(label_variants(label_set, available[view], self.contexts_, positions)):
                texts += variants
                owners += [v_i * len(positions) + row] * len(variants)
        vectors = encoder.encode(texts, show_progress=show_progress)
        owners_arr = np.asarray(owners)
        grid = np.zeros((len(self.views_) * len(positions), vectors.shape[1]), dtype=np.float32)
        np.add.at(grid, owners_arr, vectors)
        return l2_normalize(grid).reshape(len(self.views_), len(positions), -1)

    @property
    def label_vectors(self) -> np.ndarray:
        """(L, d) unit vectors, one per label: what scorers anchored on the label texts start from."""
        return self.index_.vectors

    def shortlist(self, batch: Batch, size: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index_.search(batch.vectors, size)

    def score(self, batch: Batch, candidates: np.ndarray) -> np.ndarray:
        return candidate_dots(batch.vectors, self.mean_vectors_, candidates)

    def add_labels(self, data: FitInput, start: int) -> "LabelTextScorer":
        """Embeds the labels from `start` on; they are suggestible at once."""
        vectors = self._embed(data.labels.text_views(), data.labels, data.encoder, range(start, len(data.labels)), False)
        return copy.copy(self)._set(np.concatenate([self.view_vectors_, vectors], axis=1))

    def save(self, folder: Path) -> None:
        write_state(folder, params=params_of(self), views=list(self.views_), contexts=list(self.contexts_),
                    view_vectors=self.view_vectors_)

    @classmethod
    def load(cls, folder: Path, labels: LabelSet) -> "LabelTextScorer":
        state = read_state(folder)
        scorer = from_params(cls, state["params"])
        scorer.views_, scorer.contexts_ = tuple(state["views"]), tuple(state["contexts"])
        return scorer._set(state["view_vectors"])


def label_variants(label_set: LabelSet, view: list[str], contexts: tuple[str, ...],
                   positions: range | None = None) -> list[list[str]]:
    """The texts each label is embedded as in one view: a bare name once per domain context ("computing:
    character"), a described label as it is."""
    positions = range(len(label_set)) if positions is None else positions
    return [[f"{c}: {view[i]}" for c in contexts] if contexts and not label_set[i].description else [view[i]]
            for i in positions]
