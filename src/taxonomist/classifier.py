"""Classifier: the scikit-learn face of taxonomist. Its keyword arguments are the common settings (config.py
holds them all); `fit` trains a Model (train/), and ranking, growing and saving go to it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from . import encoders
from .config import SUPERVISED, AdaptConfig, Config, LabelTextConfig, RankConfig, TrainConfig
from .encoders.base import Encoder
from .labels import Label, LabelSet
from .model import Model, Suggestion, suggestions_of
from .persist import read_model, write_model
from .scorers.label_text import LabelTextScorer
from .scorers.linear import LinearScorer
from .scorers.neighbours import NeighbourScorer
from .scorers.prototype import PrototypeScorer
from .train import Trainer

__all__ = ["Classifier", "Suggestion"]


class Classifier(BaseEstimator):
    """Ranks labels for documents from the labels' texts, improved by unlabeled documents and by examples.

    Unlabeled documents given to `fit` (or to `adapt_to` later) teach four things, unless `adapt` is False
    (plain similarity): the domain that bare label names live in (`context`), how common each label is (`prior_*`),
    which documents are neighbours whose labels should agree (`propagation_*`), and, from a large pool,
    what documents of each label share beyond its name (`self_training`, the weight of a classifier
    fitted on the pool's own best labels).

    Without examples, a label named in a document (its name or an alias) gains `mention_weight` on its similarity
    (RankConfig); 0 ranks by similarity alone.

    Labelled examples switch on the `supervised` scorers: prototypes (label text moved towards its
    examples), a ridge head anchored on label text, nearest examples and a sparse XMC model on words. A
    fusion learnt on held-out examples weighs them against the zero-shot evidence and the label names'
    mentions in the text, by label frequency, so labels without examples are still suggested. With few
    examples (`fine_tune`), a transformer encoder is first tuned on them (encoders/fine_tune.py) and kept
    with the model. The fitted model is `model_` (model.py); what its scores mean is said there.
    """

    def __init__(
        self,
        labels: LabelSet,
        *,
        encoder: str | Encoder = "default",
        views: tuple[str, ...] = LabelTextScorer.views,
        context: str = LabelTextConfig.context,
        shortlist: int = RankConfig.shortlist,
        temperature: float = RankConfig.temperature,
        prior_iterations: int = AdaptConfig.prior_iterations,
        prior_strength: float = AdaptConfig.prior_strength,
        hierarchy: str = LabelTextConfig.hierarchy,
        propagation_neighbours: int = AdaptConfig.propagation_neighbours,
        propagation_alpha: float = AdaptConfig.propagation_alpha,
        self_training: float = AdaptConfig.self_training,
        supervised: tuple[str, ...] = SUPERVISED,
        prototype_shrinkage: float = PrototypeScorer.shrinkage,
        linear_alpha: float = LinearScorer.alpha,
        neighbours: int = NeighbourScorer.neighbours,
        fine_tune: str = TrainConfig.fine_tune,
        adapt: bool = AdaptConfig.enabled,
        mention_weight: float = RankConfig.mention_weight,
        random_state: int = 0,
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
        self.supervised = supervised
        self.prototype_shrinkage = prototype_shrinkage
        self.linear_alpha = linear_alpha
        self.neighbours = neighbours
        self.fine_tune = fine_tune
        self.adapt = adapt
        self.mention_weight = mention_weight
        self.random_state = random_state
        self.show_progress = show_progress

    def config(self) -> Config:
        """The model configuration these parameters name."""
        options = {k: v for k, v in self.get_params().items() if k not in ("labels", "encoder", "show_progress")}
        return Config.from_options(**options)

    def fit(self, texts: Sequence[str] | None = None, label_ids: Sequence[Sequence[str]] | None = None, *,
            unlabeled: Sequence[str] | None = None) -> "Classifier":
        """Embed the labels; learn from labelled examples (`texts` with their `label_ids`) when given, and
        from unlabeled texts the domain context, label priors and the neighbour graph."""
        trainer = Trainer(self.config(), show_progress=self.show_progress)
        spec = self.encoder if isinstance(self.encoder, str) else None
        self.model_ = trainer.fit(self.labels, encoders.resolve(self.encoder), texts, label_ids, unlabeled=unlabeled,
                                  encoder_spec=spec)
        return self

    def adapt_to(self, unlabeled: Sequence[str]) -> "Classifier":
        """Learn label priors and the neighbour graph from unlabeled texts, e.g. the corpus a loaded model is
        about to classify; replaces what an earlier pool taught."""
        self.model_ = self._model().adapted(unlabeled)
        return self

    def rank(self, texts: Sequence[str], k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """Top-k label positions and scores in [0, 1] per text, best first; -1 pads (see model.py for what the
        scores are)."""
        ranking = self._model().rank(texts, k)
        return ranking.positions, ranking.scores

    def suggest(self, texts: Sequence[str], k: int = 5) -> list[list[Suggestion]]:
        return self._model().suggest(texts, k)

    def predict_proba(self, texts: Sequence[str]) -> sp.csr_matrix:
        """(n, L) calibrated probabilities that each candidate label applies (0 for labels not among a document's
        candidates); needs a calibrated model (trained with held-out examples, or `calibrate`)."""
        return self._model().probabilities(texts)

    def label_sets(self, texts: Sequence[str], coverage: float = 0.9, guarantee: str = "label") -> list[list[Suggestion]]:
        """Per document, a conformal label set: with guarantee "label" each true label is in it with probability at
        least `coverage`, in every label-frequency band; "pooled": the same over all labels together (smaller sets);
        "set": all of a document's true labels are; "fnr": at most 1 - coverage of them are
        missing on average (see calibrate.py)."""
        return suggestions_of(self._model().label_sets(texts, coverage, guarantee), self.labels)

    def calibrate(self, texts: Sequence[str], label_ids: Sequence[Sequence[str]]) -> "Classifier":
        """Learn probabilities and label sets from labelled documents the model did not learn from (replacing what
        training's held-out examples taught)."""
        self.model_ = self._model().calibrated(texts, label_ids)
        return self

    def update(self, texts: Sequence[str], label_ids: Sequence[Sequence[str]]) -> dict[str, int]:
        """Fold new examples into prototypes, the ridge head and the nearest examples, without retraining
        the sparse model or the fusion; returns what was updated (documents, labels touched)."""
        self.model_, report = self._model().with_examples(texts, label_ids)
        return report

    def add_labels(self, labels: Sequence[Label]) -> None:
        """New labels are suggestible at once: embedded, with text-only prototypes and ridge heads."""
        self.model_ = self._model().with_labels(labels)
        self.labels = self.model_.labels

    def save(self, path: str) -> None:
        """A model folder (see store.py): written atomically, verified on load, no training data needed."""
        write_model(self._model(), path)

    @classmethod
    def load(cls, path: str, *, encoder: str | Encoder | None = None, labels: LabelSet | None = None,
             show_progress: bool = False) -> "Classifier":
        """A saved model; `labels`, when given, must be the label set it was saved with."""
        model = read_model(path, encoder=encoder, labels=labels)
        classifier = cls(model.labels, encoder=model.encoder_spec or model.encoder, show_progress=show_progress,
                         **model.config.to_options())
        classifier.model_ = replace(model, show_progress=show_progress)
        return classifier

    def _model(self) -> Model:
        if not hasattr(self, "model_"):
            raise NotFittedError("call fit() first")
        return self.model_
