"""Classifier: label text, unlabeled documents and labelled examples, combined into ranked suggestions."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from tqdm import tqdm

from .context import domain_words
from .encoders import Encoder, get_encoder
from .errors import InputError
from .fusion import BoostedFusion, Fusion, fit_fusion, label_counts
from .labels import Label, LabelSet
from .scorers import Batch
from .scorers.hierarchy import HierarchyScorer
from .scorers.label_text import LabelTextScorer, label_variants
from .scorers.lexical import LexicalScorer
from .scorers.linear import LinearScorer
from .scorers.neighbours import GRAPH_FROM, NeighbourScorer
from .scorers.prior import PriorScorer, softmax_rows
from .scorers.propagation import PropagationScorer
from .scorers.prototype import PrototypeScorer
from .scorers.self_training import SelfTrainingScorer
from .sparse import csr_lookup, csr_top_k, to_csr, union

# Auto context embeds each bare label once per context word: skip it when that would be too many texts.
AUTO_CONTEXT_WORDS = 10
AUTO_CONTEXT_MAX_TEXTS = 30_000
# How a parent is scored through its children (see scorers.hierarchy): "broad" when documents are filed
# under broad labels, "specific" when they carry their most specific label.
HIERARCHY_DISCOUNT = {"broad": 1.0, "specific": 0.9, "off": None}
# Self-training needs pseudo-labelled documents for most labels: pool size per label before it switches on.
# It is off with static encoders (no context): measured on foldoc P@1 −3.5 with model2vec, +0.2 with
# wordllama at most of the static path's time; +1.2 to +1.5 with MiniLM. It is off, too, once labels have this
# many real examples on average: foldoc +2.2 P@1 at 4 per label, nothing at 16, at 3× the training time.
SELF_TRAINING_DOCS_PER_LABEL = 10
SELF_TRAINING_SHORTLIST = 50
SELF_TRAINING_MAX_EXAMPLES = 10
# The encoder is fine-tuned on the examples (encoders/fine_tune.py) when there are at most this many: measured on
# foldoc, 4 examples per label (355 documents), P@1 52.37 -> 55.45 (bench/supervised.py, mean of 3 random states)
# for about 8 minutes of training on 2 CPU cores instead of 2 s (with _cross_tuned, three tunings). The cost grows
# with the examples (about 0.13 s per example and epoch on a CPU, twice that with the held-out halves' tunings).
FINE_TUNE_MAX_EXAMPLES = 1000
# ... and when the labels with examples have this many on average: with one each there are no pairs to learn from
# (foldoc, 1 example per label: P@1 46.8 frozen, 43.3 tuned).
FINE_TUNE_MIN_PER_LABEL = 2
FINE_TUNE = ("auto", "on", "off")
# Scorers that learn from labelled examples (see scorers/), all on by default.
SUPERVISED = ("prototypes", "linear", "neighbours", "sparse")
# Fusion learns from held-out documents: this share of the examples, at most MAX_HOLDOUT documents.
HOLDOUT_SHARE = 0.2
MAX_HOLDOUT = 3000
MIN_HOLDOUT = 20
MIN_FUSION_DOCS = 1000
MAX_FOLDS = 5
# Candidates each source (zero-shot, nearest examples, sparse model) adds to the list the fusion scores: on
# wordnet-taxonomy (static encoder) 50 rather than 100 cost 0.04 P@1 and ranked 1.4x faster.
FUSION_CANDIDATES = 50
ADAPT_POOL = 20_000
# A fold's sparse model only has to score like the final one, not as well: one tree instead of three halves
# the cross-fitting cost of the slowest scorer.
FOLD_SPARSE = {"n_trees": 1}


@dataclass
class Adaptation:
    """Scorers fitted on unlabeled documents; each None when switched off or not enough data."""

    prior: PriorScorer | None = None
    propagation: PropagationScorer | None = None
    self_training: SelfTrainingScorer | None = None
    # The pool's own smoothed posteriors by text (not saved): a batch drawn from the pool — the usual case,
    # since the pool is the corpus being classified — reuses them instead of ranking its documents again.
    posteriors: sp.csr_matrix | None = None
    vectors: np.ndarray | None = None
    rows: dict[str, int] | None = None

    def pool_rows(self, texts: Sequence[str]) -> np.ndarray:
        """Each text's row in the pool's posteriors, -1 where it is not there."""
        if self.rows is None:
            return np.full(len(texts), -1, dtype=np.int64)
        return np.fromiter((self.rows.get(t, -1) for t in texts), dtype=np.int64, count=len(texts))


@dataclass
class Learners:
    """Scorers fitted on labelled examples; each None when switched off."""

    prototypes: PrototypeScorer | None = None
    linear: LinearScorer | None = None
    neighbours: NeighbourScorer | None = None
    sparse: object | None = None  # SparseXMCScorer, imported only when used
    counts: np.ndarray | None = None  # examples per label
    documents: int = 0  # examples in all
    # The label texts as the learners' encoder embeds them, where that is not the model's (a held-out fold's
    # encoder tuned without it); None: the classifier's own.
    label_text: LabelTextScorer | None = None


@dataclass(frozen=True)
class Suggestion:
    label_id: str
    name: str
    score: float


class Classifier(BaseEstimator):
    """Ranks labels for documents from the labels' texts, improved by unlabeled documents and by examples.

    Unlabeled documents (given to `fit`, or else — with `adapt` — the batch being classified) teach four
    things: the domain that bare label names live in (`context`), how common each label is (`prior_*`),
    which documents are neighbours whose labels should agree (`propagation_*`), and, from a large pool,
    what documents of each label share beyond its name (`self_training`, the weight of a classifier
    fitted on the pool's own best labels).

    Labelled examples switch on the `supervised` scorers: prototypes (label text moved towards its
    examples), a ridge head anchored on label text, nearest examples and a sparse XMC model on words. A
    fusion learnt on held-out examples weighs them against the zero-shot evidence and the label names'
    mentions in the text, by label frequency, so labels without examples are still suggested; scores are
    then probabilities that a label applies. With few examples (`fine_tune`), a transformer encoder is first
    tuned on them (encoders/fine_tune.py) and kept with the model.
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
        supervised: tuple[str, ...] = SUPERVISED,
        prototype_shrinkage: float = 4.0,
        linear_alpha: float = 1.0,
        neighbours: int = 20,
        fine_tune: str = "auto",
        adapt: bool = True,
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
        self.random_state = random_state
        self.show_progress = show_progress

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        texts: Sequence[str] | None = None,
        label_ids: Sequence[Sequence[str]] | None = None,
        *,
        unlabeled: Sequence[str] | None = None,
    ) -> "Classifier":
        """Embed the labels; learn from labelled examples (`texts` with their `label_ids`) when given, and
        from unlabeled texts the domain context, label priors and the neighbour graph."""
        unknown = sorted(set(self.supervised) - set(SUPERVISED))
        if unknown:
            raise ValueError(f"unknown supervised scorers {unknown}; choose from {SUPERVISED}")
        self.encoder_ = get_encoder(self.encoder) if isinstance(self.encoder, str) else self.encoder
        examples = texts is not None and len(texts) > 0
        if examples and (label_ids is None or len(label_ids) != len(texts)):
            raise ValueError("give one list of label ids per text")
        targets = self._targets(label_ids) if examples else None
        tunable = self._tunable(targets)
        pool = self._encode(unlabeled) if unlabeled else None
        # The base encoder's example vectors are needed only to read the context off them (no unlabeled texts) or
        # when they are kept (no tuning).
        vectors = self._encode(texts) if examples and (tunable is None or not unlabeled) else None
        # The domain of bare label names is read off unlabeled texts, or else off the examples' texts.
        self.contexts_ = self._contexts(unlabeled, pool) if unlabeled else self._contexts(texts, vectors)
        cross = None
        if tunable is not None:  # from here on every text is seen through the tuned encoder
            from .encoders.fine_tune import fine_tune

            # Examples are pulled towards their labels' texts as the label-text scorer embeds them (in context).
            label_texts = label_variants(self.labels, self.labels.text_views()["description"], self.contexts_)

            def tune(rows: np.ndarray) -> Encoder:
                return fine_tune(tunable, [texts[i] for i in rows], targets[rows], label_texts,
                                 random_state=self.random_state, show_progress=self.show_progress)

            cross = self._cross_tuned(len(texts), tune) if _fold_size(len(texts)) >= MIN_HOLDOUT else None
            self.encoder_ = tune(np.arange(len(texts)))
            pool = self._encode(unlabeled) if unlabeled else None
            vectors = self._encode(texts)
        self.label_text_ = LabelTextScorer(self.views, self.contexts_).fit(
            self.labels, self.encoder_, show_progress=self.show_progress
        )
        self.hierarchy_ = self._hierarchy()
        # Label-name mentions are a fusion feature: only worth indexing when there are examples to fuse.
        self.lexical_ = LexicalScorer().fit(self.labels) if examples else None
        self.learners_, self.fusion_ = Learners(), None
        pool_batch = None if pool is None else Batch(list(unlabeled), pool)
        # A held-out fold adapts to as many texts as the model will: the unlabeled pool's size, when there is one.
        pool_size = min(ADAPT_POOL, len(unlabeled)) if unlabeled else ADAPT_POOL
        held_out = self._fit_examples(list(texts), vectors, targets, pool_size, cross) if examples else None
        self.pool_ = None if pool_batch is None else self._adapt(pool_batch)
        if held_out is not None:
            self.fusion_ = self._fit_fusion(*held_out)
        return self

    def adapt_to(self, unlabeled: Sequence[str]) -> "Classifier":
        """Learn label priors and the neighbour graph from unlabeled texts, e.g. the corpus a loaded model is
        about to classify; replaces what an earlier pool taught."""
        self._check_fitted()
        self.pool_ = self._adapt(Batch(list(unlabeled), self._encode(unlabeled))) if len(unlabeled) else None
        return self

    def _tunable(self, targets: sp.csr_matrix | None):
        """The transformer to fine-tune on the examples (their `targets`), or None when `fine_tune` says not to (or
        "auto" finds none, too many examples or too few per label, or an encoder tuned already)."""
        if self.fine_tune not in FINE_TUNE:
            raise ValueError(f"fine_tune must be one of {FINE_TUNE}, got {self.fine_tune!r}")
        from .encoders.transformer import TransformerEncoder

        inner = getattr(self.encoder_, "encoder", self.encoder_)  # a CachedEncoder's own
        if self.fine_tune == "off" or targets is None or targets.shape[0] < 2:
            return None
        if not isinstance(inner, TransformerEncoder):
            if self.fine_tune == "on":
                raise InputError(f"fine_tune='on' needs a transformer encoder, not {self.encoder_.identity}",
                                 fix="choose a sentence-transformers model as the encoder, or fine_tune='auto'")
            return None
        from .encoders.fine_tune import is_tuned

        if self.fine_tune == "on":
            return inner
        counts = label_counts(targets)
        enough = counts[counts > 0].mean() >= FINE_TUNE_MIN_PER_LABEL
        return inner if enough and targets.shape[0] <= FINE_TUNE_MAX_EXAMPLES and not is_tuned(inner.identity) else None

    def _targets(self, label_ids: Sequence[Sequence[str]]) -> sp.csr_matrix:
        """0/1 (n, L) matrix of the examples' labels; an id outside the label set is an error."""
        rows, cols, unknown = [], [], []
        for row, ids in enumerate(label_ids):
            for label_id in ids:
                try:
                    cols.append(self.labels.index_of(label_id))
                    rows.append(row)
                except KeyError:
                    unknown.append(label_id)
        if unknown:
            shown = ", ".join(repr(u) for u in sorted(set(unknown))[:5])
            raise InputError(f"{len(unknown):,} example labels are not in the label set ({shown})",
                             fix="add them to the label set, or drop them from the examples")
        return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(label_ids), len(self.labels)))

    def _cross_tuned(self, n: int, tune) -> list[tuple[np.ndarray, Encoder]]:
        """Each half of the examples with an encoder tuned on the other half (`tune(rows)`). An encoder tuned on
        every example has seen the held-out folds' documents, so their scores would be rosier than those of new
        documents and the fusion would trust the wrong scorers; through the other half's encoder they are new.
        Measured on foldoc, 4 examples per label, P@1 at random states 0, 1, 2: 54.74 / 54.97 / 54.39 -> 55.26 /
        55.09 / 55.72, for twice the tuning time."""
        halves = np.array_split(np.random.default_rng(self.random_state).permutation(n), 2)
        return [(np.sort(half), tune(np.sort(other))) for half, other in zip(halves, halves[::-1])]

    def _fit_examples(self, texts: list[str], vectors: np.ndarray, targets: sp.csr_matrix, pool_size: int,
                      cross: list[tuple[np.ndarray, Encoder]] | None = None) -> tuple | None:
        """Cross-fitting: learners fitted without a held-out fold score it, then learners are fitted on
        everything; returns the held-out scores the fusion learns from (None when there are too few).
        Folds are added (up to MAX_FOLDS) until MIN_FUSION_DOCS documents have been held out, so small
        example sets still teach the fusion. With `cross` (see _cross_tuned), each half's folds are seen through
        the encoder tuned without that half."""
        n = len(texts)
        fold_size = _fold_size(n)
        if fold_size < MIN_HOLDOUT:  # too few to learn weights from: prototypes alone decide
            self.learners_ = self._fit_learners(texts, vectors, targets, only=("prototypes",))
            return None
        rng = np.random.default_rng(self.random_state)
        if cross is None:
            folds = np.array_split(rng.permutation(n), round(n / fold_size))
            views = [(folds[: max(1, min(MAX_FOLDS, -(-MIN_FUSION_DOCS // fold_size)))], vectors, None)]
        else:  # every example is held out once (tuning takes few enough)
            views = [(np.array_split(rng.permutation(half), max(1, round(len(half) / fold_size))),
                      encoder.encode(texts, show_progress=self.show_progress),
                      LabelTextScorer(self.views, self.contexts_).fit(self.labels, encoder)) for half, encoder in cross]
        # Held-out scores adapt to `pool_size` of the examples' texts (labels unused; the fold itself and others),
        # as a fitted model adapts to the pool or batch it ranks; never to an earlier fit's pool (adapting to the
        # unlabeled pool instead was measured worse: foldoc 4-shot P@1 53.8 -> 50.8).
        sample = np.random.default_rng(self.random_state).permutation(n)[:pool_size]
        # The sparse scorer's TF-IDF is fitted once, on all the examples' texts (labels unused), for every fit.
        features = None
        if "sparse" in self.supervised:
            from .scorers.sparse_xmc import SparseXMCScorer

            features = SparseXMCScorer().featurize(texts)
        parts = []
        progress = tqdm(total=sum(len(folds) for folds, *_ in views) + 1, desc="training (held-out folds, then all)",
                        unit=" fits", disable=not self.show_progress, file=sys.stderr)
        for folds, fold_vectors, label_text in views:
            for held in folds:
                held = np.sort(held)
                rest = np.setdiff1d(np.arange(n), held)
                learners = self._fit_learners([texts[i] for i in rest], fold_vectors[rest], targets[rest], fold=True,
                                              features=None if features is None else features.rows(rest),
                                              label_text=label_text)
                pool = np.union1d(held, sample[: max(0, pool_size - len(held))])
                adaptation = self._adapt(Batch([texts[i] for i in pool], fold_vectors[pool]), learners=learners)
                candidates, scores = self._supervised_scores(
                    Batch([texts[i] for i in held], fold_vectors[held]), learners, adaptation,
                    None if features is None else features.rows(held))
                parts.append((candidates, scores, learners.counts[np.maximum(candidates, 0)],
                              csr_lookup(targets[held], candidates) > 0))
                progress.update()
        width = max(c.shape[1] for c, *_ in parts)
        scores = {name: np.vstack([_pad(s[name], width, -np.inf) for _, s, _, _ in parts]) for name in parts[0][1]}
        counts = np.vstack([_pad(c, width, 0) for *_, c, _ in parts])
        truth = np.vstack([_pad(t, width, False) for *_, t in parts])
        self.learners_ = self._fit_learners(texts, vectors, targets, features=features)
        progress.update()
        progress.close()
        return scores, counts, truth

    def _fit_fusion(self, scores: dict, counts: np.ndarray, truth: np.ndarray) -> Fusion | BoostedFusion | None:
        """The fusion chosen on the held-out documents (see fusion.fit_fusion), or None."""
        if not truth.any() or not (~truth & np.isfinite(scores["zero_shot"])).any():  # needs both kinds of pair
            return None
        return fit_fusion(scores, counts, truth, random_state=self.random_state)

    def _fit_learners(self, texts: list[str], vectors: np.ndarray, targets: sp.csr_matrix,
                      only: tuple[str, ...] | None = None, fold: bool = False,
                      features: object | None = None, label_text: LabelTextScorer | None = None) -> Learners:
        """`features`: the sparse scorer's Features of `texts`, when already computed; `label_text`: the label
        texts as the `vectors`' encoder embeds them, when it is not the model's."""
        chosen = set(self.supervised if only is None else only)
        learners = Learners(counts=label_counts(targets), documents=len(texts), label_text=label_text)
        text_vectors = self._label_text(learners).index_.vectors
        if "prototypes" in chosen:
            learners.prototypes = PrototypeScorer(self.prototype_shrinkage).fit(text_vectors, vectors, targets)
        if "linear" in chosen:
            learners.linear = LinearScorer(self.linear_alpha).fit(text_vectors, vectors, targets)
        if "neighbours" in chosen:
            # A fold's scorer ranks one held-out fold only: too few queries to pay for building a graph.
            learners.neighbours = NeighbourScorer(self.neighbours, graph_from=None if fold else GRAPH_FROM).fit(
                vectors, targets)
        if "sparse" in chosen:
            from .scorers.sparse_xmc import SparseXMCScorer

            learners.sparse = SparseXMCScorer(library_params=FOLD_SPARSE if fold else None).fit(texts, targets,
                                                                                               features=features)
        return learners

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

    def _adapt(self, pool: Batch, shortlist: tuple[np.ndarray, np.ndarray] | None = None,
               learners: Learners | None = None) -> Adaptation:
        """What the unlabeled pool teaches: label priors, its neighbour graph, a pseudo-label classifier."""
        learners = self.learners_ if learners is None else learners
        candidates, sims = shortlist if shortlist is not None else self._candidates(pool, learners)
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
            and not _well_supervised(learners.counts)
            and len(pool.texts) >= SELF_TRAINING_DOCS_PER_LABEL * len(self.labels)
        ):
            best = csr_top_k(posteriors, 1)[0][:, 0]
            if len(np.unique(best)) > 1:  # one pseudo-label class teaches nothing (and sklearn refuses it)
                adaptation.self_training = SelfTrainingScorer().fit(pool, best, len(self.labels))
        adaptation.posteriors, adaptation.vectors = posteriors, pool.vectors
        adaptation.rows = {text: row for row, text in enumerate(pool.texts)}
        return adaptation

    def _batch(self, texts: list[str]) -> Batch:
        """The texts with their vectors; those of the adaptation pool are not encoded again."""
        rows = self.pool_.pool_rows(texts) if self.pool_ is not None else np.full(len(texts), -1)
        known = rows >= 0
        if not known.any():
            return Batch(texts, self._encode(texts))
        vectors = np.empty((len(texts), self.pool_.vectors.shape[1]), dtype=np.float32)
        vectors[known] = self.pool_.vectors[rows[known]]
        if not known.all():
            vectors[~known] = self._encode([text for text, seen in zip(texts, known) if not seen])
        return Batch(texts, vectors)

    def _batch_adaptation(self, batch: Batch) -> Adaptation:
        """The unlabeled pool's adaptation; else, with `adapt`, the batch's own; else none."""
        if self.pool_ is not None:
            return self.pool_
        if self.adapt and len(batch.texts) > 1:
            return self._adapt(batch)
        return Adaptation()

    # ------------------------------------------------------------------ scoring
    def _label_text(self, learners: Learners) -> LabelTextScorer:
        return learners.label_text if learners.label_text is not None else self.label_text_

    def _candidates(self, batch: Batch, learners: Learners | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Shortlist by label text — or prototypes, once there are examples — plus ancestors in a
        hierarchy, with exact similarities."""
        learners = self.learners_ if learners is None else learners
        base = learners.prototypes if learners.prototypes is not None else self._label_text(learners)
        candidates, _ = base.shortlist(batch, self.shortlist)
        if self.hierarchy_ is not None:
            candidates = self.hierarchy_.expand(candidates)
        sims = base.score(batch, candidates)
        if self.hierarchy_ is not None:
            sims = self.hierarchy_.score(candidates, sims)
        return candidates, sims

    def _posteriors(self, batch: Batch, candidates: np.ndarray, sims: np.ndarray, adaptation: Adaptation):
        """Softmax over the shortlist of similarity / temperature + log prior, as a sparse (n, L) matrix."""
        logits = sims / self.temperature
        if adaptation.prior is not None:
            logits = logits + adaptation.prior.score(batch, candidates)
        return to_csr(candidates, softmax_rows(logits), len(self.labels))

    def _smoothed(self, batch: Batch, adaptation: Adaptation, learners: Learners | None) -> sp.csr_matrix:
        """Posteriors with priors and propagation applied; documents of the pool reuse what adapting found."""
        rows = adaptation.pool_rows(batch.texts)
        missing = np.flatnonzero(rows < 0)
        if len(missing) == 0:
            return adaptation.posteriors[rows]
        fresh = Batch([batch.texts[i] for i in missing], batch.vectors[missing])
        candidates, sims = self._candidates(fresh, learners)
        posteriors = self._posteriors(fresh, candidates, sims, adaptation)
        if adaptation.propagation is not None:
            posteriors = adaptation.propagation.smooth(fresh.vectors, posteriors)
        if len(missing) == len(rows):
            return posteriors
        rows[missing] = adaptation.posteriors.shape[0] + np.arange(len(missing))
        return sp.vstack([adaptation.posteriors, posteriors], format="csr")[rows]

    def _zero_shot(self, batch: Batch, adaptation: Adaptation, learners: Learners | None = None) -> sp.csr_matrix:
        """Posteriors from label text (or prototypes) with priors, propagation and self-training applied."""
        posteriors = self._smoothed(batch, adaptation, learners)
        if adaptation.self_training is None:
            return posteriors
        # Geometric mix with the pseudo-label classifier over the best SELF_TRAINING_SHORTLIST candidates.
        top, probs = csr_top_k(posteriors, SELF_TRAINING_SHORTLIST)
        w = self.self_training
        mixed = (1 - w) * np.log(np.maximum(probs, 1e-12)) + w * adaptation.self_training.score(batch, top)
        return to_csr(top, softmax_rows(np.where(top >= 0, mixed, -np.inf)), len(self.labels))

    def _supervised_scores(self, batch: Batch, learners: Learners, adaptation: Adaptation,
                           features: object | None = None):
        """Candidates (the zero-shot shortlist ∪ the supervised scorers' own) and every scorer's score there;
        `features`: the batch's sparse features when already computed (a held-out fold's)."""
        posteriors = self._zero_shot(batch, adaptation, learners)
        lists = [csr_top_k(posteriors, FUSION_CANDIDATES)[0]]
        votes = learners.neighbours.predict(batch.vectors) if learners.neighbours is not None else None
        predicted = learners.sparse.predict(batch.texts, features=features) if learners.sparse is not None else None
        for matrix in (votes, predicted):
            if matrix is not None:
                lists.append(csr_top_k(matrix, FUSION_CANDIDATES)[0])
        candidates = union(*lists)
        scores = {
            "label_text": self._label_text(learners).score(batch, candidates),
            "zero_shot": np.where(candidates >= 0, np.log(np.maximum(csr_lookup(posteriors, candidates), 1e-6)),
                                  -np.inf),
            "lexical": self.lexical_.score(batch, candidates),
        }
        if learners.prototypes is not None:
            scores["prototypes"] = learners.prototypes.score(batch, candidates)
        if learners.linear is not None:
            scores["linear"] = learners.linear.score(batch, candidates)
        if votes is not None:
            scores["neighbours"] = csr_lookup(votes, candidates)
        if predicted is not None:
            scores["sparse"] = csr_lookup(predicted, candidates)
        return candidates, scores  # every score is -inf at padding

    def rank(self, texts: Sequence[str], k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """Top-k label positions and scores in [0, 1] per text, best first; -1 pads. Scores are posteriors
        over the labels without examples, and per-label probabilities with them."""
        self._check_fitted()
        batch = self._batch(list(texts))
        adaptation = self._batch_adaptation(batch)
        if self.fusion_ is None:
            return csr_top_k(self._zero_shot(batch, adaptation), k)
        candidates, scores = self._supervised_scores(batch, self.learners_, adaptation)
        logits = self.fusion_.decision(scores, self.learners_.counts[np.maximum(candidates, 0)])
        probabilities = 1 / (1 + np.exp(-np.clip(logits, -30, 30)))
        return csr_top_k(to_csr(candidates, np.where(candidates >= 0, probabilities, 0), len(self.labels)), k)

    # ------------------------------------------------------------------ growing and keeping
    def update(self, texts: Sequence[str], label_ids: Sequence[Sequence[str]]) -> dict[str, int]:
        """Fold new examples into prototypes, the ridge head and the nearest examples, without retraining
        the sparse model or the fusion; returns what was updated (documents, labels touched)."""
        self._check_fitted()
        if self.learners_.prototypes is None:
            raise InputError("this model was trained without examples, so there is nothing to update",
                             fix="train it with examples first (taxonomist train --docs ...)")
        targets = self._targets(label_ids)
        vectors = self._encode(texts)
        for learner in (self.learners_.prototypes, self.learners_.linear, self.learners_.neighbours):
            if learner is not None:
                learner.update(vectors, targets)
        if self.pool_ is not None:  # the pool's posteriors came from the learners as they were
            self.pool_.posteriors = self.pool_.vectors = self.pool_.rows = None
        new_counts = label_counts(targets)
        self.learners_.counts = self.learners_.counts + new_counts
        self.learners_.documents += len(texts)
        return {"documents": len(texts), "labels": int((new_counts > 0).sum()),
                "new_to_examples": int(((new_counts > 0) & (self.learners_.counts == new_counts)).sum())}

    def add_labels(self, labels: Sequence[Label]) -> None:
        """New labels are suggestible at once: embedded, with text-only prototypes and ridge heads."""
        self._check_fitted()
        start = len(self.labels)
        self.labels = LabelSet([*self.labels, *labels], source=self.labels.source)
        n_new = len(self.labels) - start
        self.label_text_.add_labels(self.labels, self.encoder_)
        self.hierarchy_ = self._hierarchy()
        if self.lexical_ is not None:
            self.lexical_.add_labels(self.labels)
        text_vectors = self.label_text_.index_.vectors[start:]
        learners = self.learners_
        for learner in (learners.prototypes, learners.linear):
            if learner is not None:
                learner.add_labels(text_vectors)
        for learner in (learners.neighbours, learners.sparse):
            if learner is not None:
                learner.add_labels(n_new)
        if learners.counts is not None:
            learners.counts = np.concatenate([learners.counts, np.zeros(n_new, np.float32)])
        if self.pool_ is not None:
            if self.pool_.prior is not None:  # unseen in the pool: the smallest prior any label has
                log_prior = self.pool_.prior.log_prior_
                self.pool_.prior.log_prior_ = np.concatenate([log_prior, np.full(n_new, log_prior.min())])
            if self.pool_.propagation is not None:
                posteriors = self.pool_.propagation.posteriors_
                self.pool_.propagation.posteriors_ = sp.hstack(
                    [posteriors, sp.csr_matrix((posteriors.shape[0], n_new))]).tocsr()
            self.pool_.self_training = None  # its classes are the old labels only
            self.pool_.posteriors = self.pool_.vectors = self.pool_.rows = None

    def save(self, path: str) -> None:
        """A model folder (see store.py): written atomically, verified on load, no training data needed."""
        from . import persist

        self._check_fitted()
        persist.save(self, path)

    @classmethod
    def load(cls, path: str, *, encoder: str | Encoder | None = None, labels: LabelSet | None = None) -> "Classifier":
        """A saved model; `labels`, when given, must be the label set it was saved with."""
        from . import persist

        return persist.load(cls, path, encoder=encoder, labels=labels)

    def _check_fitted(self) -> None:
        if not hasattr(self, "label_text_"):
            raise NotFittedError("call fit() first")

    def suggest(self, texts: Sequence[str], k: int = 5) -> list[list[Suggestion]]:
        positions, scores = self.rank(texts, k)
        ids, names = self.labels.ids, self.labels.names
        return [
            [Suggestion(ids[p], names[p], float(s)) for p, s in zip(row_p, row_s) if p >= 0]
            for row_p, row_s in zip(positions, scores)
        ]


def _pad(values: np.ndarray, width: int, fill) -> np.ndarray:
    return np.pad(values, ((0, 0), (0, width - values.shape[1])), constant_values=fill)


def _fold_size(n: int) -> int:
    """Examples per held-out fold out of `n`; under MIN_HOLDOUT, none are held out."""
    return min(MAX_HOLDOUT, int(HOLDOUT_SHARE * n))


def _well_supervised(counts: np.ndarray | None) -> bool:
    """True when the labels that have examples have SELF_TRAINING_MAX_EXAMPLES or more on average."""
    return counts is not None and bool((counts > 0).any()) and counts[counts > 0].mean() >= SELF_TRAINING_MAX_EXAMPLES
