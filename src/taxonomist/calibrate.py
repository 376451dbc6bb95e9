"""Confidence: scores become probabilities that a label applies (calibration), thresholds reach a stated
precision, and label sets come with a stated coverage guarantee (split conformal prediction).

All of it learns from labelled documents that the model did not learn from: at training, the out-of-fold
record (its pairs scored by fusions fitted without their document); later, a checked sample given to
`taxonomist calibrate`. It works on each document's candidate labels, the shortlist the model scores: a true
label outside it is missed whatever the threshold, so the shortlist's recall caps every coverage.

Calibration (`Calibrator`): per label-frequency band (a label's training examples, bands as the fusion's; for
a model without examples, the label's frequency among the calibration documents), a monotone map from score to
probability fitted on each document's best `top` pairs, the ones that get suggested. A band with too few pairs
uses the fit pooled over all bands. The map's kind (isotonic, beta, Platt, or the scores as they are) is chosen by
cross-validation over the calibration documents: a few hundred of them cannot tell an isotonic map's steps
from noise, and scores that are probabilities already only get worse for being fitted again.

Conformal sets (`Conformal`) use the raw score as the conformity score, so they do not lean on the calibrator:
- "label": each true label of a new document is in its set with probability at least 1 - alpha (over
  documents and their labels), Mondrian by band, so labels of each band get the guarantee; bands with too few
  calibration labels for a threshold of their own share one;
- "pooled": each true label of a new document is in its set with probability at least 1 - alpha over all labels
  together, one threshold for all: the smallest sets, but labels of a rare band may be covered less (their
  scores are lower), which "label" does not allow;
- "set": all of a document's true labels are in its set with probability at least 1 - alpha;
- "fnr" (conformal risk control, Angelopoulos et al. 2022): the expected share of a document's true labels
  missing from its set is at most alpha.
Each holds for documents exchangeable with the calibration documents.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from .errors import InputError, NotSupportedError
from .fusion import BANDS
from .sparse import csr_lookup
from .state import from_params, params_of, read_state, write_state

GUARANTEES = ("label", "pooled", "set", "fnr")
METHODS = ("auto", "isotonic", "beta", "platt", "identity")
FITTED = METHODS[1:]  # what "auto" chooses from, the most flexible first
CV_FOLDS = 5
N_BANDS = len(BANDS)


def band_of(counts: np.ndarray) -> np.ndarray:
    """Each label's frequency band (0: none, 1: 1-4, 2: 5-19, 3: 20 or more, as the fusion's)."""
    return (np.searchsorted(BANDS, counts, side="right") - 1).astype(np.int64)


@dataclass(frozen=True)
class Outcomes:
    """Labelled documents as a model scored them: each document's candidates (int64 (n, C), -1 pads), their
    scores (float32, -inf pads) and which are gold labels; and the gold labels the candidates miss, as
    (document, label) pairs."""

    candidates: np.ndarray
    scores: np.ndarray
    truth: np.ndarray
    missed_docs: np.ndarray
    missed_labels: np.ndarray

    @classmethod
    def of(cls, candidates: np.ndarray, scores: np.ndarray, gold: sp.csr_matrix) -> "Outcomes":
        gold = sp.csr_matrix(gold, dtype=np.float32)
        truth = csr_lookup(gold, candidates) > 0
        scores = np.where(candidates >= 0, scores, -np.inf).astype(np.float32)
        found = sp.csr_matrix((np.ones(int(truth.sum()), np.float32), (np.nonzero(truth)[0], candidates[truth])),
                              shape=gold.shape)
        missed = (gold - found).tocoo()
        keep = missed.data > 0
        return cls(candidates, scores, truth, missed.row[keep].astype(np.int64), missed.col[keep].astype(np.int64))

    @property
    def n_docs(self) -> int:
        return len(self.candidates)

    @property
    def recall(self) -> float:
        """Share of the gold labels that are among the candidates: what no threshold can exceed."""
        found = int(self.truth.sum())
        total = found + len(self.missed_docs)
        return found / total if total else 1.0

    def recall_by_band(self, label_bands: np.ndarray) -> np.ndarray:
        """Per frequency band, the share of its gold labels among the candidates (nan for a band without gold
        labels): what caps the band's coverage."""
        rows, cols = np.nonzero(self.truth)
        found = np.bincount(label_bands[self.candidates[rows, cols]], minlength=N_BANDS)
        total = found + np.bincount(label_bands[self.missed_labels], minlength=N_BANDS)
        with np.errstate(invalid="ignore", divide="ignore"):
            return found / total

    def best(self, top: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Each document's `top` best-scored pairs: (candidates, scores, truth, the pair's document row), padding
        left out."""
        top = min(top, self.scores.shape[1])
        order = np.argsort(-self.scores, axis=1, kind="stable")[:, :top]
        scores = np.take_along_axis(self.scores, order, axis=1)
        keep = np.isfinite(scores)
        rows = np.broadcast_to(np.arange(self.n_docs)[:, None], keep.shape)
        return (np.take_along_axis(self.candidates, order, axis=1)[keep], scores[keep],
                np.take_along_axis(self.truth, order, axis=1)[keep], rows[keep])


@dataclass
class Calibrator:
    """`method`: "isotonic" (monotone, no shape assumed), "beta" (Kull et al. 2017: logistic in log(score) and
    log(1 - score), so the map may bend differently near 0 and near 1, which Platt's cannot), "platt" (logistic in
    the score's log-odds), "identity" (the scores as they are: for scores that are probabilities already) or
    "auto" (chosen by the Brier score its maps, fitted on four fifths of the calibration documents, give the rest;
    `method_` says which);
    `top`: the pairs per document learnt from; a band needs `min_pairs` pairs and `min_positives` right ones for a
    fit of its own."""

    name: ClassVar[str] = "calibrator"

    method: str = "auto"
    top: int = 10
    min_pairs: int = 300
    min_positives: int = 20

    def fit(self, outcomes: Outcomes, label_bands: np.ndarray) -> "Calibrator":
        if self.method not in METHODS:
            raise InputError(f"calibration method must be one of {METHODS}, got {self.method!r}",
                             fix="choose 'auto', 'isotonic', 'beta', 'platt' or 'identity'")
        candidates, scores, truth, docs = outcomes.best(self.top)
        if not truth.any() or truth.all():
            raise InputError("the calibration documents' suggestions are all right or all wrong: nothing to learn "
                             "how often a score is right from", fix="give more, and more varied, labelled documents")
        self.label_bands_ = np.asarray(label_bands, dtype=np.int64)
        self.cv_brier_: dict[str, float] | None = None
        self.method_ = (self._chosen(candidates, scores, truth, docs, outcomes.n_docs) if self.method == "auto"
                        else self.method)
        self._fit_maps(candidates, scores, truth)
        return self

    def _fit_maps(self, candidates: np.ndarray, scores: np.ndarray, truth: np.ndarray) -> None:
        bands = self.label_bands_[candidates]
        self.maps_ = [self._fit_map(scores, truth)]  # 0: pooled; 1 + b: band b, or None
        for b in range(N_BANDS):
            mine = bands == b
            enough = mine.sum() >= self.min_pairs and truth[mine].sum() >= self.min_positives
            self.maps_.append(self._fit_map(scores[mine], truth[mine]) if enough else None)

    def _chosen(self, candidates: np.ndarray, scores: np.ndarray, truth: np.ndarray, docs: np.ndarray,
                n_docs: int) -> str:
        """The simplest map kind whose Brier score on documents left out of its fit (5 folds of documents, so a
        document's pairs are never on both sides) is within one standard error of the best one's (the paired
        per-document differences'): a more flexible map must earn its keep. Keeps the scores in `cv_brier_`.
        `candidates` ... `docs`: the outcomes' best pairs (Outcomes.best), of `n_docs` documents."""
        per_doc = np.bincount(docs, minlength=n_docs)
        fold = np.random.default_rng(0).permutation(n_docs)[docs] % CV_FOLDS
        errors = {}
        for method in FITTED[::-1]:  # simplest first
            squared = np.empty(len(scores))
            for k in range(CV_FOLDS):
                train, test = fold != k, fold == k
                if not test.any() or not truth[train].any() or truth[train].all():
                    squared[test] = (scores[test] - truth[test]) ** 2
                    continue
                part = Calibrator(method, top=self.top, min_pairs=self.min_pairs, min_positives=self.min_positives)
                part.label_bands_, part.method_ = self.label_bands_, method
                part._fit_maps(candidates[train], scores[train], truth[train])
                squared[test] = (part.probabilities(candidates[test], scores[test]) - truth[test]) ** 2
            errors[method] = np.bincount(docs, squared, minlength=n_docs) / np.maximum(per_doc, 1)
        self.cv_brier_ = {method: float(e.mean()) for method, e in errors.items()}
        best = min(self.cv_brier_, key=self.cv_brier_.get)
        for method, e in errors.items():
            gap = e - errors[best]
            if gap.mean() <= gap.std() / math.sqrt(len(gap)):
                return method
        return best

    def _fit_map(self, scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
        """(2, m): x and y points of the map, interpolated linearly (isotonic); (2, 1): Platt's a and b; (3, 1):
        beta's a, b and c (identity: none)."""
        if self.method_ == "identity":
            return np.zeros((2, 0))
        if self.method_ == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, truth.astype(float))
            return np.vstack([iso.X_thresholds_, iso.y_thresholds_]).astype(np.float64)
        from sklearn.linear_model import LogisticRegression

        if self.method_ == "beta":
            return _beta_map(scores, truth)
        model = LogisticRegression(C=1e4).fit(_log_odds(scores)[:, None], truth)
        return np.array([[model.coef_[0, 0]], [model.intercept_[0]]])

    def probabilities(self, candidates: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (float32, like `scores`), 0 at padding."""
        bands = self.band_of(candidates)
        out = np.zeros(scores.shape, dtype=np.float32)
        valid = (candidates >= 0) & np.isfinite(scores)
        for b in range(N_BANDS):
            mine = valid & (bands == b)
            if mine.any():
                out[mine] = self._apply(self.maps_[1 + b] if self.maps_[1 + b] is not None else self.maps_[0],
                                        scores[mine])
        return out

    def _apply(self, points: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self.method_ == "identity":
            return np.clip(scores, 0.0, 1.0)
        if self.method_ == "isotonic":
            return np.interp(scores, points[0], points[1])
        if self.method_ == "beta":
            return 1 / (1 + np.exp(-(_beta_features(scores) @ points[:2, 0] + points[2, 0])))
        return 1 / (1 + np.exp(-(points[0, 0] * _log_odds(scores) + points[1, 0])))

    def band_of(self, candidates: np.ndarray) -> np.ndarray:
        """Each candidate's band; labels added after calibration are in band 0 (no examples)."""
        bands = self.label_bands_
        grown = np.concatenate([bands, np.zeros(max(0, int(candidates.max(initial=0)) + 1 - len(bands)), np.int64)])
        return np.where(candidates >= 0, grown[np.maximum(candidates, 0)], 0)

    def save(self, folder: Path) -> None:
        fitted = [m for m in self.maps_ if m is not None]
        write_state(folder, params=params_of(self), method=self.method_, cv_brier=self.cv_brier_,
                    label_bands=self.label_bands_,
                    which=[i for i, m in enumerate(self.maps_) if m is not None],
                    **{f"map.{i}": m for i, m in zip(range(len(fitted)), fitted)})

    @classmethod
    def load(cls, folder: Path) -> "Calibrator":
        state = read_state(folder)
        calibrator = from_params(cls, state["params"])
        calibrator.label_bands_ = state["label_bands"]
        calibrator.method_ = state.get("method", calibrator.method)  # saved before "auto": the method itself
        calibrator.cv_brier_ = state.get("cv_brier")
        maps: list[np.ndarray | None] = [None] * (1 + N_BANDS)
        for slot, i in enumerate(state["which"]):
            maps[i] = state[f"map.{slot}"]
        calibrator.maps_ = maps
        return calibrator


def _log_odds(scores: np.ndarray) -> np.ndarray:
    p = np.clip(scores.astype(np.float64), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def _beta_features(scores: np.ndarray) -> np.ndarray:
    p = np.clip(scores.astype(np.float64), 1e-7, 1 - 1e-7)
    return np.column_stack([np.log(p), -np.log1p(-p)])


def _beta_map(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Beta calibration's a, b, c (3, 1). A negative a or b would make the map fall somewhere; that term is then
    dropped and the other refitted alone (as Kull et al. do), so the map stays monotone."""
    from sklearn.linear_model import LogisticRegression

    features = _beta_features(scores)
    model = LogisticRegression(C=1e4).fit(features, truth)
    coef, intercept = model.coef_[0].copy(), model.intercept_[0]
    if (coef < 0).any():
        kept = int(np.argmax(coef))
        single = LogisticRegression(C=1e4).fit(features[:, [kept]], truth)
        coef = np.zeros(2)
        coef[kept], intercept = max(single.coef_[0, 0], 0.0), single.intercept_[0]
    return np.array([[coef[0]], [coef[1]], [intercept]])


@dataclass(frozen=True)
class Thresholds:
    """Score thresholds per band (a label is in a set when its score reaches its band's); the groups of bands that
    share one (too few calibration labels for one each); and the bands whose true labels the candidate lists miss
    too often for the level (they take the common threshold that keeps all labels' guarantee: all their
    candidates would still fall short, and only make the sets larger)."""

    by_band: np.ndarray
    shared: tuple[tuple[int, ...], ...] = ()
    capped_bands: tuple[int, ...] = ()


@dataclass
class Conformal:
    """What split conformal prediction keeps of the calibration documents: each true label's score (-inf when
    the shortlist missed it), its band and its document. `min_band_labels`: the calibration labels a band needs for
    a threshold of its own (besides what the level needs): a quantile of a handful of labels guarantees coverage
    only on average over calibrations, and swings the sets' size with each one."""

    name: ClassVar[str] = "conformal"

    # Chosen on development splits carved from the training data (a fifth of each set's train split; 10 random
    # calibration halves), with a short band joining its more frequent neighbour. 20 against 100: emoji's bands
    # with 1-4 examples (18 calibration labels) covered 0.90 instead of 0.78 at 0.9 (MiniLM; static 0.95 against
    # 0.87), with sets of 4.0 labels instead of 2.4 (static 10.2 against 7.7): at 100 every emoji band shares one
    # threshold, which is the "pooled" guarantee. Against 0 (only what the level needs): foldoc's 6 labels with 1-4
    # examples, alone at 0.8, are out of the candidates' reach and covered 0.20, joined to the 5-19 band 0.71.
    # foldoc, gcide and wordnet-taxonomy were otherwise the same.
    min_band_labels: int = 20

    def fit(self, outcomes: Outcomes, label_bands: np.ndarray) -> "Conformal":
        rows, cols = np.nonzero(outcomes.truth)
        missed = len(outcomes.missed_docs)
        self.docs_ = np.concatenate([rows, outcomes.missed_docs]).astype(np.int64)
        self.scores_ = np.concatenate([outcomes.scores[rows, cols], np.full(missed, -np.inf, np.float32)])
        labels = np.concatenate([outcomes.candidates[rows, cols], outcomes.missed_labels])
        self.bands_ = np.asarray(label_bands, dtype=np.int64)[labels]
        self.recall_ = outcomes.recall
        return self

    def thresholds(self, coverage: float, guarantee: str = "label") -> Thresholds:
        """The score each band's labels must reach for sets of the requested coverage (see the module)."""
        alpha = _alpha(coverage)
        if guarantee not in GUARANTEES:
            raise InputError(f"the guarantee must be one of {GUARANTEES}, got {guarantee!r}",
                             fix="choose 'label' (each true label, in every band), 'pooled' (each true label, over "
                             "all bands together), 'set' (all of a document's labels) or 'fnr'")
        if guarantee == "label":
            return self._label_thresholds(alpha)
        if guarantee == "pooled":
            return Thresholds(np.full(N_BANDS, self._quantile(self.scores_, alpha, "true labels")))
        per_doc = self._per_document()
        if guarantee == "set":
            worst = np.array([scores.min() for scores in per_doc])
            return Thresholds(np.full(N_BANDS, self._quantile(worst, alpha, "documents with gold labels")))
        return Thresholds(np.full(N_BANDS, self._risk_controlled(per_doc, alpha)))

    def _label_thresholds(self, alpha: float) -> Thresholds:
        """Mondrian thresholds: each band with `min_band_labels` calibration labels (and what the level needs) gets
        its own; a band with fewer joins the next more frequent one, whose scores are the nearest to its own (the
        most frequent band joins the one below it). Then every threshold is lowered, where needed, to a common one: the
        highest at which the calibration labels the groups' own thresholds miss make up what the whole needs, so
        that all labels together keep the guarantee (a band the candidates cannot cover would otherwise pull the
        whole below it). A group whose candidates miss too many of its labels has only the common threshold."""
        counts = np.bincount(self.bands_, minlength=N_BANDS)
        by_band, capped = np.full(N_BANDS, np.inf), []
        groups = self._groups(counts, max(_needed(alpha), self.min_band_labels))
        for group in groups:
            mine = self.scores_[np.isin(self.bands_, group)]
            if len(mine) < _needed(alpha):  # all labels together are too few: _common_threshold says so
                continue
            try:
                by_band[group] = self._quantile(mine, alpha, "true labels")
            except NotSupportedError:  # all their candidates would not reach the level either: keep sets small
                capped += group
        common = self._common_threshold(by_band, alpha)
        return Thresholds(np.minimum(by_band, common), tuple(tuple(g) for g in groups if len(g) > 1), tuple(capped))

    @staticmethod
    def _groups(counts: np.ndarray, need: int) -> list[list[int]]:
        """Bands with calibration labels, rarest first, gathered into runs of at least `need` labels each (a short
        last run joins the one before)."""
        groups: list[list[int]] = []
        run: list[int] = []
        for band in np.flatnonzero(counts):
            run.append(int(band))
            if counts[run].sum() >= need:
                groups.append(run)
                run = []
        if run and groups:
            groups[-1] += run
        elif run:
            groups.append(run)
        return groups

    def _common_threshold(self, by_band: np.ndarray, alpha: float) -> float:
        """The highest q at which min(band threshold, q) covers ceil((n + 1)(1 - alpha)) of the n calibration labels
        (inf when the bands' own thresholds do): never below the pooled threshold, so never larger sets."""
        self._quantile(self.scores_, alpha, "true labels")  # the level is within reach of all labels pooled
        needed = math.ceil((len(self.scores_) + 1) * (1 - alpha))
        covered = self.scores_ >= by_band[self.bands_]
        short = needed - int(covered.sum())
        if short <= 0:
            return math.inf
        return float(np.sort(self.scores_[~covered])[::-1][short - 1])

    def _quantile(self, scores: np.ndarray, alpha: float, what: str) -> float:
        """The k-th largest score, k = ceil((n + 1)(1 - alpha)): a new true label (or document) reaches it with
        probability at least 1 - alpha."""
        n = len(scores)
        if n < _needed(alpha):
            raise InputError(f"{n:,} calibration {what} are too few for coverage {1 - alpha:g}",
                             fix=f"calibrate with at least {_needed(alpha):,} {what}, or ask for less coverage")
        k = math.ceil((n + 1) * (1 - alpha))
        threshold = float(np.sort(scores)[::-1][k - 1])
        if not np.isfinite(threshold):
            raise NotSupportedError(
                f"coverage {1 - alpha:g} cannot be guaranteed: the model's candidate lists hold only "
                f"{100 * self.recall_:.1f}% of the calibration documents' true labels",
                fix=f"ask for coverage below {self.recall_:.3f}, or widen the shortlist (RankConfig)")
        return threshold

    def _per_document(self) -> list[np.ndarray]:
        order = np.argsort(self.docs_, kind="stable")
        docs, scores = self.docs_[order], self.scores_[order]
        splits = np.flatnonzero(np.diff(docs)) + 1
        return np.split(scores, splits) if len(scores) else []

    def _risk_controlled(self, per_doc: list[np.ndarray], alpha: float) -> float:
        """The highest threshold whose inflated mean share of missed true labels, (n R + 1) / (n + 1), is at most
        alpha (conformal risk control with a loss bounded by 1)."""
        n = len(per_doc)
        if n < _needed(alpha):
            raise InputError(f"{n:,} calibration documents with gold labels are too few for a false-negative "
                             f"rate of {alpha:g}", fix=f"calibrate with at least {_needed(alpha):,} such documents")
        weights = np.concatenate([np.full(len(s), 1.0 / len(s)) for s in per_doc])
        scores = np.concatenate(per_doc)
        finite = np.isfinite(scores)
        floor = weights[~finite].sum()  # missed labels: missed at every threshold
        order = np.argsort(-scores[finite], kind="stable")
        ranked, w = scores[finite][order], weights[finite][order]
        # at threshold ranked[j] the labels scored below it are missed: those after the last tie of ranked[j]
        last = np.searchsorted(-ranked, -ranked, side="right") - 1
        missed = floor + (w.sum() - np.cumsum(w))[last]
        ok = (missed + 1) / (n + 1) <= alpha
        if not ok.any():
            raise NotSupportedError(
                f"a false-negative rate of {alpha:g} cannot be guaranteed: the model's candidate lists hold only "
                f"{100 * self.recall_:.1f}% of the calibration documents' true labels",
                fix="ask for a higher false-negative rate, or widen the shortlist (RankConfig)")
        return float(ranked[np.flatnonzero(ok)[0]])

    def save(self, folder: Path) -> None:
        write_state(folder, params=params_of(self), docs=self.docs_, scores=self.scores_, bands=self.bands_,
                    recall=self.recall_)

    @classmethod
    def load(cls, folder: Path) -> "Conformal":
        state = read_state(folder)
        conformal = from_params(cls, state["params"])
        conformal.docs_, conformal.scores_, conformal.bands_ = state["docs"], state["scores"], state["bands"]
        conformal.recall_ = float(state["recall"])
        return conformal


def check_fraction(value: float, what: str, example: str) -> float:
    """`value` if it lies strictly between 0 and 1, else an InputError that names `what`."""
    if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0 < value < 1):
        raise InputError(f"{what} must lie strictly between 0 and 1, got {value!r}", fix=f"ask for e.g. {example}")
    return float(value)


def _alpha(coverage: float) -> float:
    return 1.0 - check_fraction(coverage, "coverage", "0.9: each true label in the set nine times in ten")


def _needed(alpha: float) -> int:
    """Calibration labels (or documents) a level needs: with fewer, ceil((n + 1)(1 - alpha)) exceeds n."""
    return math.ceil((1 - alpha) / alpha - 1e-9)


@dataclass
class Calibration:
    """What a model knows of its own scores, from labelled documents it did not learn from (`source` says which):
    the calibrator, the conformal record, and the calibration pairs with their probabilities (for thresholds of
    a target precision)."""

    calibrator: Calibrator
    conformal: Conformal
    source: str
    pair_probabilities: np.ndarray
    pair_truth: np.ndarray
    pair_bands: np.ndarray

    @classmethod
    def fit(cls, outcomes: Outcomes, label_bands: np.ndarray, source: str, calibrator: Calibrator | None = None,
            conformal: Conformal | None = None) -> "Calibration":
        calibrator = (calibrator or Calibrator()).fit(outcomes, label_bands)
        candidates, scores, truth, _ = outcomes.best(calibrator.top)
        return cls(calibrator, (conformal or Conformal()).fit(outcomes, label_bands), source,
                   calibrator.probabilities(candidates, scores), truth, calibrator.band_of(candidates))

    def probabilities(self, candidates: np.ndarray, scores: np.ndarray) -> np.ndarray:
        return self.calibrator.probabilities(candidates, scores)

    def set_thresholds(self, coverage: float, guarantee: str = "label") -> Thresholds:
        return self.conformal.thresholds(coverage, guarantee)

    def precision_thresholds(self, precision: float) -> np.ndarray:
        """Per band, the lowest probability from which the calibration pairs' precision reaches `precision`
        (the pooled pairs' for a band with too few of its own)."""
        check_fraction(precision, "the target precision", "0.9: nine suggestions in ten right")
        support = self.calibrator.min_positives
        pooled = self._lowest_reaching(self.pair_probabilities, self.pair_truth, precision, support)
        out = np.full(N_BANDS, pooled)
        for b in range(N_BANDS):
            mine = self.pair_bands == b
            if mine.sum() >= self.calibrator.min_pairs:
                try:
                    out[b] = self._lowest_reaching(self.pair_probabilities[mine], self.pair_truth[mine], precision,
                                                   support)
                except NotSupportedError:
                    out[b] = np.inf  # no threshold reaches it in this band: nothing of it is suggested
        return out

    @staticmethod
    def _lowest_reaching(probabilities: np.ndarray, truth: np.ndarray, precision: float, support: int) -> float:
        """A cut counts only with `support` pairs or more above it: the precision of a handful says nothing."""
        order = np.argsort(-probabilities, kind="stable")
        p, right = probabilities[order], truth[order]
        kept = np.arange(1, len(right) + 1)
        running = np.cumsum(right) / kept
        # a threshold keeps every pair tied with it, so only the last of each run of ties is a cut
        cuts = np.append(p[1:] != p[:-1], True) & (kept >= support)
        if not cuts.any():
            raise NotSupportedError(f"too few calibration pairs ({len(p):,}) to set a threshold for a precision",
                                    fix=f"calibrate on documents with at least {support:,} suggestions in all")
        reaching = np.flatnonzero(cuts & (running >= precision))
        if not len(reaching):
            raise NotSupportedError(f"no threshold reaches precision {precision:g} on the calibration documents "
                                    f"(the best is {running[cuts].max():.3f})",
                                    fix="ask for a lower precision, or calibrate on more documents")
        return float(p[reaching[-1]])

    def save(self, folder: Path) -> None:
        (folder / "calibrator").mkdir()
        self.calibrator.save(folder / "calibrator")
        (folder / "conformal").mkdir()
        self.conformal.save(folder / "conformal")
        write_state(folder, source=self.source, pair_probabilities=self.pair_probabilities,
                    pair_truth=self.pair_truth, pair_bands=self.pair_bands)

    @classmethod
    def load(cls, folder: Path) -> "Calibration":
        state = read_state(folder)
        return cls(Calibrator.load(folder / "calibrator"), Conformal.load(folder / "conformal"), state["source"],
                   state["pair_probabilities"], state["pair_truth"], state["pair_bands"])
