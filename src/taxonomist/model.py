"""The Model: a label set, an encoder and fitted scorers, transforms and fusion, read-only once made.

Ranking never changes a model, so several threads may rank with one. Adapting it to a corpus, adding
examples or labels make a new model that shares what did not change; a server swaps the new one in when it is
ready (project.py). A model is made by train/trainer.py and saved and loaded by persist.py.

What a suggestion's numbers mean:
- `score` orders a document's suggestions and lies in [0, 1]. Without examples (zero-shot) it is the label's
  share of the document's posterior over the label set: the shares of all labels sum to 1, so many plausible
  labels each get a small one (`Ranking.kind` "posterior"). With examples it is the fusion's estimate that the
  label applies, learnt on held-out examples, one label at a time ("fused"); it has not been checked against
  outcomes, so it is not called a probability.
- `probability` is the calibrated probability that the label applies (calibrate.py), present only when the
  model has a calibration; otherwise None. Of all suggestions with probability 0.8, about 8 in 10 are right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from .adapt import Adaptation, Hierarchy
from .calibrate import Calibration, Calibrator, Outcomes, band_of, check_fraction
from .config import Config
from .decision import Decision, replaced
from .encoders.base import Encoder
from .errors import InputError, NotSupportedError
from .feedback.store import text_sha256
from .fusion import BoostedFusion, Fusion, probability
from .labels import Label, LabelSet, label_counts
from .record import OutOfFold
from .scorers.base import Batch, FitInput, example_ids
from .scoring import Scoring
from .sparse import csr_top_k, to_csr

POSTERIOR, FUSED = "posterior", "fused"


@dataclass(frozen=True)
class Suggestion:
    label_id: str
    name: str
    score: float
    probability: float | None = None


@dataclass(frozen=True)
class Ranking:
    """Label positions per document (int64 (n, k), -1 pads) and their scores (float32, best first; see the
    module for what `kind` says they are); `probabilities` only from a calibrated model."""

    positions: np.ndarray
    scores: np.ndarray
    kind: str
    probabilities: np.ndarray | None = None

    def keep(self, mask: np.ndarray) -> "Ranking":
        """Only the entries where `mask` holds, still best first, the rest of each row padding."""
        mask = mask & (self.positions >= 0)
        order = np.argsort(~mask, axis=1, kind="stable")  # kept entries first, in their order
        width = max(1, int(mask.sum(axis=1).max(initial=0)))
        take = lambda a, fill: np.where(np.take_along_axis(mask, order, axis=1),
                                        np.take_along_axis(a, order, axis=1), fill)[:, :width]
        return Ranking(take(self.positions, -1), take(self.scores, -np.inf).astype(np.float32), self.kind,
                       None if self.probabilities is None else take(self.probabilities, 0.0).astype(np.float32))


@dataclass(frozen=True)
class Model:
    """`encoder_spec`: the name the encoder was asked for ("default", "static", a path), saved so that loading
    finds it again; None for an encoder object. `adaptation`: fitted on an unlabeled pool, or None; a batch
    ranked is never adapted to, so each document gets the same suggestions whatever shares its batch.
    `documents`: the number of examples it learnt from. `record`: the held-out scores training computed (None
    without examples enough to hold some out). `calibration`: what turns its scores into probabilities and label
    sets. `held_out`: its ranking's metrics on the held-out documents of its last training (train/trainer.py
    held_out_metrics), None without them. `decisions`: what training decided for this label set and corpus (the
    hierarchy mode "auto" chose...).
    `rejections`: (document text sha256, label id) pairs a reviewer rejected (feedback/fold.py): that text is
    never suggested that label again, by any path that ranks with this model; the label is also, like any label
    a folded-in document does not carry, a zero target of the ridge head and the nearest examples. `folded`:
    (document text sha256, label ids) of the reviewed documents learnt from a feedback store, so that folding
    the same store again learns only what is new."""

    labels: LabelSet
    encoder: Encoder
    encoder_spec: str | None
    config: Config
    scoring: Scoring
    adaptation: Adaptation | None = None
    fusion: Fusion | BoostedFusion | None = None
    documents: int = 0
    record: OutOfFold | None = None
    calibration: Calibration | None = None
    decisions: tuple[Decision, ...] = ()
    rejections: tuple[tuple[str, str], ...] = ()
    folded: tuple[tuple[str, tuple[str, ...]], ...] = ()
    held_out: dict[str, float] | None = None
    show_progress: bool = False  # a progress bar while encoding: how it is used, not what it is

    @property
    def hierarchy_mode(self) -> str:
        """The hierarchy mode in use: the decided one where the configuration said "auto"."""
        decided = [d.choice for d in self.decisions if d.step == "hierarchy"]
        return decided[-1] if decided else self.config.label_text.hierarchy

    @property
    def contexts(self) -> tuple[str, ...]:
        """The domain words bare label names are embedded with."""
        return self.scoring.scorers["label_text"].contexts_

    @property
    def counts(self) -> np.ndarray | None:
        """Examples per label, None for a model without examples."""
        return self.scoring.counts

    # ------------------------------------------------------------------ ranking
    def rank(self, texts: Sequence[str], k: int = 5) -> Ranking:
        """Each document's `k` best labels."""
        matrix, kind = self._scored(texts)
        return self._ranking(*csr_top_k(matrix, k), kind)

    def candidates(self, texts: Sequence[str]) -> Ranking:
        """Every label the model scored for each document (its candidates), best first."""
        if not len(texts):
            empty = np.zeros((0, 1), np.float32)
            return Ranking(np.full((0, 1), -1, np.int64), empty, POSTERIOR if self.fusion is None else FUSED,
                           None if self.calibration is None else empty)
        matrix, kind = self._scored(texts)
        return self._ranking(*csr_top_k(matrix, max(1, int(np.diff(matrix.indptr).max(initial=0)))), kind)

    def probabilities(self, texts: Sequence[str]) -> sp.csr_matrix:
        """(n, L) calibrated probability of every candidate label of each document (0 elsewhere): the
        `predict_proba` of a calibrated model."""
        self.require_calibration("probabilities")
        ranking = self.candidates(texts)
        return to_csr(ranking.positions, ranking.probabilities, len(self.labels))

    def label_sets(self, texts: Sequence[str], coverage: float, guarantee: str = "label") -> Ranking:
        """Conformal label sets (see calibrate.py for what each `guarantee` promises at `coverage`): each
        document's candidates whose score reaches their band's threshold, best first; sizes vary."""
        return self.in_sets(self.candidates(texts), coverage, guarantee)

    def in_sets(self, ranking: Ranking, coverage: float, guarantee: str = "label") -> Ranking:
        """The candidates of `ranking` that are in their document's conformal label set (see `label_sets`)."""
        calibration = self.require_calibration("label sets of a stated coverage")
        thresholds = calibration.set_thresholds(coverage, guarantee).by_band
        bands = calibration.calibrator.band_of(ranking.positions)
        return ranking.keep(ranking.scores >= thresholds[bands])

    def above(self, ranking: Ranking, *, min_probability: float | None = None,
              target_precision: float | None = None) -> Ranking:
        """The suggestions of `ranking` whose probability is at least `min_probability`, or reaches the threshold
        at which the calibration documents' suggestions were right `target_precision` of the time."""
        calibration = self.require_calibration("probabilities")
        if min_probability is not None:
            check_fraction(min_probability, "the minimum probability", "0.5")
            return ranking.keep(ranking.probabilities >= min_probability)
        thresholds = calibration.precision_thresholds(target_precision)
        return ranking.keep(ranking.probabilities >= thresholds[calibration.calibrator.band_of(ranking.positions)])

    def suggest(self, texts: Sequence[str], k: int = 5) -> list[list[Suggestion]]:
        return suggestions_of(self.rank(texts, k), self.labels)

    def _scored(self, texts: Sequence[str]):
        """(n, L) CSR of every candidate's score, and what the scores are."""
        batch = self._batch(list(texts))
        adaptation = self._adaptation(batch)
        if self.fusion is None:
            return self._without_rejected(batch.texts, self.scoring.zero_shot(batch, adaptation)), POSTERIOR
        candidates, scores = self.scoring.fusion_inputs(batch, adaptation)
        logits = self.fusion.decision(scores, self.counts[np.maximum(candidates, 0)])
        matrix = to_csr(candidates, np.where(candidates >= 0, probability(logits), 0), len(self.labels))
        return self._without_rejected(batch.texts, matrix), FUSED

    def _without_rejected(self, texts: Sequence[str], matrix: sp.csr_matrix) -> sp.csr_matrix:
        """The scores, less those of labels a reviewer rejected for the very same text."""
        rejected = self._rejected_positions
        if not rejected:
            return matrix
        found = [(i, rejected[sha]) for i, text in enumerate(texts) if (sha := text_sha256(text)) in rejected]
        if not found:
            return matrix
        drop = np.zeros(matrix.nnz, dtype=bool)
        for i, positions in found:
            start, end = matrix.indptr[i], matrix.indptr[i + 1]
            drop[start:end] = np.isin(matrix.indices[start:end], positions)
        rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))[~drop]
        return sp.csr_matrix((matrix.data[~drop], (rows, matrix.indices[~drop])), shape=matrix.shape)

    @cached_property
    def _rejected_positions(self) -> dict[str, np.ndarray]:
        """Document sha256 -> positions of the labels rejected for it (labels no longer in the set left out)."""
        out: dict[str, list[int]] = {}
        for sha, label_id in self.rejections:
            if label_id in self.labels:
                out.setdefault(sha, []).append(self.labels.index_of(label_id))
        return {sha: np.array(positions, dtype=np.int64) for sha, positions in out.items()}

    def _ranking(self, positions: np.ndarray, scores: np.ndarray, kind: str) -> Ranking:
        calibration = self.calibration
        probabilities = None if calibration is None else calibration.probabilities(positions, scores)
        return Ranking(positions, scores, kind, probabilities)

    def require_calibration(self, what: str) -> Calibration:
        if self.calibration is None:
            raise NotSupportedError(f"this model has no calibration, so it cannot give {what}",
                                    fix="calibrate it on labelled documents: taxonomist calibrate --model M --docs "
                                        "checked.jsonl (a model trained with held-out examples is calibrated on them)")
        return self.calibration

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder.encode(list(texts), show_progress=self.show_progress)

    def _batch(self, texts: list[str]) -> Batch:
        """The texts with their vectors; those of the adaptation pool are not encoded again."""
        pool = self.adaptation
        rows = pool.pool_rows(texts) if pool is not None else np.full(len(texts), -1)
        known = rows >= 0
        if not known.any():
            return Batch(texts, self.encode(texts))
        vectors = np.empty((len(texts), pool.vectors.shape[1]), dtype=np.float32)
        vectors[known] = pool.vectors[rows[known]]
        if not known.all():
            vectors[~known] = self.encode([text for text, seen in zip(texts, known) if not seen])
        return Batch(texts, vectors)

    def _adaptation(self, batch: Batch) -> Adaptation:
        """The unlabeled pool's adaptation, or none: never the batch's own."""
        return self.adaptation if self.adaptation is not None else Adaptation()

    # ------------------------------------------------------------------ new models from this one
    def with_calibration(self, calibration: Calibration | None) -> "Model":
        return replace(self, calibration=calibration)

    def calibrated(self, texts: Sequence[str], label_ids: Sequence[Sequence[str]],
                   calibrator: Calibrator | None = None) -> "Model":
        """This model calibrated on labelled documents it did not learn from (see calibrate.py), replacing any
        earlier calibration. Labels are banded by their training examples, or, without examples, by their
        frequency in these documents."""
        gold = self.labels.matrix(label_ids)
        if not gold.nnz:
            raise InputError(f"none of the {len(label_ids):,} calibration documents has gold labels",
                             fix="give each document a 'labels' field (JSONL) or column (CSV, TSV) of label ids")
        ranking = self.candidates(texts)
        counts = self.counts if self.counts is not None else label_counts(gold)
        return self.with_calibration(Calibration.fit(Outcomes.of(ranking.positions, ranking.scores, gold),
                                                     band_of(counts), f"{len(label_ids):,} labelled documents",
                                                     calibrator))

    def adapted(self, texts: Sequence[str]) -> "Model":
        """This model adapted to unlabeled texts (the corpus about to be ranked): label priors, the neighbour graph
        and self-training, replacing what an earlier pool taught; too few texts (AdaptConfig.enough): none."""
        texts = list(texts)
        if not self.config.adapt.enough(len(texts)):
            return self.without_adaptation(adaptation_decision(self.config, len(texts)))
        adaptation = self.scoring.adapt(Batch(texts, self.encode(texts)))
        return replace(self, adaptation=adaptation, decisions=replaced(
            self._without_adaptation_decisions(), adaptation_decision(self.config, len(texts)), *adaptation.decisions))

    def without_adaptation(self, why: Decision | None = None) -> "Model":
        return replace(self, adaptation=None, decisions=replaced(
            self._without_adaptation_decisions(), why or Decision("adaptation", "off", "not asked for")))

    def _without_adaptation_decisions(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.step not in ADAPTATION_STEPS)

    def with_examples(self, texts: Sequence[str], label_ids: Sequence[Sequence[str]],
                      ids: Sequence[str | None] | None = None) -> tuple["Model", dict[str, int]]:
        """Examples folded into the scorers that can take them (prototypes, ridge heads, nearest examples) without
        retraining the rest (the sparse model, the fusion); and what was updated. `ids`: the documents' ids, which
        explanations name."""
        scorers = self.scoring.scorers
        if self.counts is None or not any(hasattr(s, "update") for s in scorers.values()):
            raise NotSupportedError("this model was trained without examples, so there is nothing to update",
                                    fix="train it with examples first (taxonomist train --docs ...)")
        targets, ids = self.labels.matrix(label_ids), example_ids(ids, len(texts))
        data = FitInput(labels=self.labels, encoder=self.encoder, vectors=self.encode(texts), targets=targets,
                        texts=list(texts), ids=ids)
        grown = {name: s.update(data) if hasattr(s, "update") else s for name, s in scorers.items()}
        new_counts = label_counts(targets)
        counts = self.counts + new_counts
        model = replace(self, scoring=replace(self.scoring, scorers=grown, counts=counts),
                        documents=self.documents + len(texts),
                        adaptation=None if self.adaptation is None else self.adaptation.without_cache())
        return model, {"documents": len(texts), "labels": int((new_counts > 0).sum()),
                       "new_to_examples": int(((new_counts > 0) & (counts == new_counts)).sum())}

    def with_feedback(self, rejections: Sequence[tuple[str, str]] = (),
                      folded: Sequence[tuple[str, Sequence[str]]] = ()) -> "Model":
        """The model with more rejected (document sha256, label id) pairs and folded (document sha256, label ids)
        documents kept; each once, sorted (a document folded again keeps its latest labels)."""
        documents = dict(self.folded) | {sha: tuple(sorted(ids)) for sha, ids in folded}
        return replace(self, rejections=tuple(sorted(set(self.rejections) | {(d, l) for d, l in rejections})),
                       folded=tuple(sorted(documents.items())))

    def with_labels(self, labels: Sequence[Label]) -> "Model":
        """New labels, suggestible at once: embedded, with text-only prototypes and ridge heads."""
        start = len(self.labels)
        label_set = LabelSet([*self.labels, *labels], source=self.labels.source)
        n_new = len(label_set) - start
        scorers = dict(self.scoring.scorers)
        fixed = sorted(name for name, scorer in scorers.items() if not hasattr(scorer, "add_labels"))
        if fixed:
            raise NotSupportedError(f"the scorers {fixed} of this model cannot take new labels",
                                    fix="train the model again on the grown label set")
        data = FitInput(labels=label_set, encoder=self.encoder, contexts=self.contexts)
        scorers["label_text"] = scorers["label_text"].add_labels(data, start)
        data = replace(data, label_vectors=scorers["label_text"].label_vectors)
        for name, scorer in scorers.items():
            if name != "label_text":
                scorers[name] = scorer.add_labels(data, start)
        counts = None if self.counts is None else np.concatenate([self.counts, np.zeros(n_new, np.float32)])
        scoring = replace(self.scoring, scorers=scorers, n_labels=len(label_set), counts=counts,
                          hierarchy=Hierarchy.for_labels(label_set, self.hierarchy_mode),
                          assignable=Scoring.mask_of(label_set))
        adaptation = None if self.adaptation is None else self.adaptation.with_labels(n_new)
        return replace(self, labels=label_set, scoring=scoring, adaptation=adaptation)


def suggestions_of(ranking: Ranking, labels: LabelSet) -> list[list[Suggestion]]:
    ids, names, probabilities = labels.ids, labels.names, ranking.probabilities
    return [[Suggestion(ids[p], names[p], float(s), None if probabilities is None else float(probabilities[i, j]))
             for j, (p, s) in enumerate(zip(row_p, row_s)) if p >= 0]
            for i, (row_p, row_s) in enumerate(zip(ranking.positions, ranking.scores))]


ADAPTATION_STEPS = frozenset({"adaptation", *Adaptation.STEPS})


def adaptation_decision(config: Config, n_documents: int) -> Decision:
    """Whether a pool of `n_documents` is adapted to, and why."""
    settings = config.adapt
    if not settings.enabled:
        return Decision("adaptation", "off", "plain similarity asked for")
    if n_documents < settings.min_pool:
        return Decision("adaptation", "off", f"{n_documents:,} documents to adapt to; at least {settings.min_pool:,} "
                        "are needed for label priors, neighbours and a domain context to mean anything")
    return Decision("adaptation", "on", f"{n_documents:,} unlabeled documents adapted to")


