"""Fusion: how much to trust each scorer, learned from held-out examples, by label-frequency band.

Two models, chosen by held-out evidence (`fit_fusion`): a logistic regression with band interactions
(`Fusion`, robust when the held-out documents are few) and gradient-boosted trees over each score, its gap to
the document's best and its rank there (`BoostedFusion`, which learns how the scorers agree and disagree —
e.g. that a label whose own text matches the document best is not necessarily the one it is filed under).

Each (document, candidate label) pair becomes a row of features — every scorer's score, the label's example
count, its frequency band, and each score interacted with the band — and a logistic regression learns from
held-out documents (scored by scorers that never saw them: cross-fitting) which pairs are right. The band
interactions let a label with no examples lean on its text while a frequent one leans on the supervised
scorers; shared weights cover bands the held-out data never reached (labels added after training).
The output is a log-odds per pair, so sigmoid(score) is the probability that the label applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from .state import from_params, params_of, read_state, write_state

# Lower edges of the label-frequency bands: no examples, 1-4, 5-19, 20 or more.
BANDS = np.array([0, 1, 5, 20])


@dataclass
class Fusion:
    """Logistic regression on the scores, their example counts and frequency bands (see the module)."""

    kind: ClassVar[str] = "logistic"

    regularisation: float = 1.0
    max_rows: int = 1_000_000
    random_state: int = 0

    def fit(self, scores: Mapping[str, np.ndarray], counts: np.ndarray, truth: np.ndarray,
            weights: np.ndarray | None = None) -> "Fusion":
        """Scores (n, C) per scorer at the same candidates (-inf = padding), the candidates' example counts
        (n, C), whether each candidate is a gold label of its document (bool (n, C)) and, optionally, a
        weight per document."""
        from sklearn.linear_model import LogisticRegression

        self.scorers_ = tuple(scores)
        valid = np.isfinite(next(iter(scores.values())))
        features = self._features(scores, counts)[valid.ravel()]
        target = truth[valid]
        row_weights = None if weights is None else np.broadcast_to(weights[:, None], truth.shape)[valid]
        rng = np.random.default_rng(self.random_state)
        if len(target) > self.max_rows:
            keep = rng.choice(len(target), self.max_rows, replace=False)
            features, target = features[keep], target[keep]
            row_weights = None if row_weights is None else row_weights[keep]
        self.mean_ = features.mean(axis=0)
        self.scale_ = np.where(features.std(axis=0) > 0, features.std(axis=0), 1.0)
        model = LogisticRegression(C=self.regularisation, max_iter=1000)
        model.fit((features - self.mean_) / self.scale_, target, sample_weight=row_weights)
        self.coef_ = model.coef_.ravel().astype(np.float32)
        self.intercept_ = float(model.intercept_[0])
        return self

    def decision(self, scores: Mapping[str, np.ndarray], counts: np.ndarray) -> np.ndarray:
        """Log-odds (n, C) that each candidate applies; -inf at padding.

        The model is linear in the features, so each band folds into one weight per base column and an
        offset: a pair's log-odds is its band's offset plus its base columns times its band's weights, and
        the (pairs × features) matrix of `fit` (~40 columns) is never built.
        """
        logits = None
        for part in self.contributions(scores, counts).values():
            logits = part.copy() if logits is None else logits + part
        return np.where(np.isfinite(scores[self.scorers_[0]]), logits, -np.inf)

    def contributions(self, scores: Mapping[str, np.ndarray], counts: np.ndarray) -> dict[str, np.ndarray]:
        """The log-odds taken apart (n, C each): "offset" (the band's intercept), then each scorer's weight times
        its score, then "examples" (log1p of the example count times its weight); they add up to `decision`, so a
        server can say how much each scorer lifted a label."""
        weights, offsets = self._band_weights()
        band = _band(counts)
        parts = {"offset": offsets[band]}
        for j, (name, column) in enumerate(zip((*self.scorers_, "examples"), self._base(scores, counts))):
            parts[name] = weights[band, j] * column
        return parts

    def _band_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Per band, the weight of each base column and the offset, standardisation folded in."""
        n_bands, n_base = len(BANDS), len(self.scorers_) + 1
        raw = self.coef_.astype(np.float64) / self.scale_  # weight per unstandardised feature
        offset = self.intercept_ - float(raw @ self.mean_)
        base, onehot, interactions = np.split(raw, [n_base, n_base + n_bands])
        weights = (base + interactions.reshape(n_bands, n_base)).astype(np.float32)
        return weights, (offset + onehot).astype(np.float32)

    def _base(self, scores: Mapping[str, np.ndarray], counts: np.ndarray) -> list[np.ndarray]:
        """Each scorer's score (0 at padding) and log1p(example count): the columns bands interact with."""
        return [np.nan_to_num(scores[name], neginf=0.0).astype(np.float32, copy=False) for name in self.scorers_] + [
            np.log1p(counts).astype(np.float32, copy=False)]

    def _features(self, scores: Mapping[str, np.ndarray], counts: np.ndarray) -> np.ndarray:
        base = np.column_stack([column.ravel() for column in self._base(scores, counts)])
        onehot = np.eye(len(BANDS), dtype=np.float32)[_band(counts).ravel()]
        interactions = (onehot[:, :, None] * base[:, None, :]).reshape(len(base), -1)
        return np.hstack([base, onehot, interactions])

    def save(self, folder: Path) -> None:
        write_state(folder, params=params_of(self), scorers=list(self.scorers_), mean=self.mean_, scale=self.scale_,
                    coef=self.coef_, intercept=self.intercept_)

    @classmethod
    def load(cls, folder: Path) -> "Fusion":
        state = read_state(folder)
        fusion = from_params(cls, state["params"])
        fusion.scorers_, fusion.intercept_ = tuple(state["scorers"]), float(state["intercept"])
        fusion.mean_, fusion.scale_, fusion.coef_ = state["mean"], state["scale"], state["coef"]
        return fusion


# Boosting is only tried from this many held-out documents on: on 355 (foldoc, 4 examples per label) trees
# overfitted (P@1 53.7 -> 47.3 against the logistic fusion), on 1,040 to 2,875 they won or were refused by the
# half-split comparison in `fit_fusion`.
BOOSTED_MIN_DOCS = 2000
# The trees score only the pairs that some scorer ranks among its best BOOSTED_TOP (BoostedFusion.top) for the
# document (others get -inf). On wordnet-taxonomy (static encoder, 7 scorers) the best 10 kept 37 of 101 candidates per document;
# the best 5 score P@1 72.41 against 72.53 there and 70.98 against 70.75 on foldoc (within run-to-run noise),
# and take the trees' share of ranking 16.7k documents from 2.4 to 1.4 s.
BOOSTED_TOP = 5
# The pairs the trees do not score are put below every scored one, in the order of a logistic fusion's log-odds
# (clipped to +-TAIL_RANGE): a threshold deep in a document's list (a label set of high coverage) then takes them
# best first instead of all of them at once, tied. Trees' raw scores stay far above it. Folders saved before the
# tail model order them by their zero-shot log posterior (at most 0, at least log 1e-6).
UNSCORED = -40.0
TAIL_RANGE = 12.0
# The tail model's rows: its few weights need far fewer than the trees' pairs.
TAIL_ROWS = 200_000
# Log-odds are clipped to this before the sigmoid: wide enough to keep the unscored pairs' order in float32.
LOGIT_RANGE = 60.0


def probability(logits: np.ndarray) -> np.ndarray:
    """sigmoid(log-odds), -inf (padding) giving 0."""
    return 1 / (1 + np.exp(-np.clip(logits, -LOGIT_RANGE, LOGIT_RANGE)))


@dataclass
class BoostedFusion:
    """Gradient-boosted trees (LightGBM) on each scorer's score, its gap to the best score in the document and
    its rank there, and the label's example count; the trees see pairs, as the logistic fusion does, so the
    output is again a log-odds that the label applies. Only pairs within some scorer's best `top` are scored.
    Saved as LightGBM's own text model (`model_`, bytes)."""

    kind: ClassVar[str] = "boosted-tree"

    rounds: int = 200
    leaves: int = 15
    learning_rate: float = 0.05
    random_state: int = 0
    top: int = BOOSTED_TOP

    def fit(self, scores: Mapping[str, np.ndarray], counts: np.ndarray, truth: np.ndarray,
            weights: np.ndarray | None = None) -> "BoostedFusion":
        import lightgbm as lgb

        self.scorers_ = tuple(scores)
        features, kept = _rank_features(scores, counts, self.scorers_, self.top)
        row_weights = None if weights is None else np.broadcast_to(weights[:, None], truth.shape)[kept]
        params = {"objective": "binary", "num_leaves": self.leaves, "learning_rate": self.learning_rate,
                  "min_data_in_leaf": 20, "lambda_l2": 1.0, "feature_fraction": 0.8, "bagging_fraction": 0.8,
                  "bagging_freq": 1, "seed": self.random_state, "deterministic": True, "force_row_wise": True,
                  "verbose": -1}
        booster = lgb.train(params, lgb.Dataset(features, truth[kept].astype(np.float32), weight=row_weights),
                            num_boost_round=self.rounds)
        self.model_ = np.frombuffer(booster.model_to_string().encode(), dtype=np.uint8)
        self.tail_: Fusion | None = Fusion(max_rows=TAIL_ROWS, random_state=self.random_state).fit(
            scores, counts, truth, weights)
        return self

    def decision(self, scores: Mapping[str, np.ndarray], counts: np.ndarray) -> np.ndarray:
        """Log-odds (n, C) that each candidate applies; -inf at padding; pairs outside every scorer's best `top`
        below all others (see UNSCORED)."""
        import lightgbm as lgb

        booster = lgb.Booster(model_str=self.model_.tobytes().decode())
        features, kept = _rank_features(scores, counts, self.scorers_, self.top)
        valid = np.isfinite(scores[self.scorers_[0]])
        if self.tail_ is not None:
            below = UNSCORED + np.clip(self.tail_.decision(scores, counts), -TAIL_RANGE, TAIL_RANGE)
        else:
            below = UNSCORED + (scores["zero_shot"] if "zero_shot" in scores else 0.0)
        logits = np.where(valid, below, -np.inf).astype(np.float32)
        if len(features):
            logits[kept] = booster.predict(features, raw_score=True)
        return logits

    def save(self, folder: Path) -> None:
        write_state(folder, params=params_of(self), scorers=list(self.scorers_), model=self.model_)
        if self.tail_ is not None:
            (folder / "tail").mkdir()
            self.tail_.save(folder / "tail")

    @classmethod
    def load(cls, folder: Path) -> "BoostedFusion":
        state = read_state(folder)
        fusion = from_params(cls, state["params"])
        fusion.scorers_, fusion.model_ = tuple(state["scorers"]), state["model"]
        fusion.tail_ = Fusion.load(folder / "tail") if (folder / "tail").exists() else None
        return fusion


FUSIONS: dict[str, type[Fusion] | type[BoostedFusion]] = {cls.kind: cls for cls in (Fusion, BoostedFusion)}


def fit_fusion(scores: Mapping[str, np.ndarray], counts: np.ndarray, truth: np.ndarray,
               weights: np.ndarray | None = None, random_state: int = 0,
               boosted_min_docs: int = BOOSTED_MIN_DOCS) -> Fusion | BoostedFusion | None:
    """The fusion to rank with, or None where none ranks the held-out documents better than the zero-shot
    posteriors alone (with few examples per label the fusion's weights come from weak folds).

    The logistic fusion is kept when it ranks its own held-out documents at least as well as zero-shot. From
    `boosted_min_docs` documents, the trees replace it when, fitted on one half of the documents and tested on the
    other (both ways), they put a gold label first more often than the logistic fusion and than zero-shot.
    """
    zero_shot = top1_hits(scores["zero_shot"], truth, weights)
    if len(truth) >= boosted_min_docs:
        halves = np.random.default_rng(random_state).permutation(len(truth)) % 2 == 0
        hits = {kind: sum(_half_hits(kind, scores, counts, truth, weights, train, ~train) for train in (halves, ~halves))
                for kind in (Fusion, BoostedFusion)}
        if hits[BoostedFusion] > max(hits[Fusion], zero_shot):
            return BoostedFusion(random_state=random_state).fit(scores, counts, truth, weights)
    linear = Fusion().fit(scores, counts, truth, weights)
    return linear if top1_hits(linear.decision(scores, counts), truth, weights) >= zero_shot else None


def cross_fitted(fusion: Fusion | BoostedFusion, scores: Mapping[str, np.ndarray], counts: np.ndarray,
                 truth: np.ndarray, random_state: int = 0) -> np.ndarray:
    """Log-odds of every held-out pair from a fusion like `fusion` fitted on the other half of the documents (the
    halves of fit_fusion), so that what calibration learns from is scored by a fusion that never saw it."""
    halves = np.random.default_rng(random_state).permutation(len(truth)) % 2 == 0
    logits = np.full(truth.shape, -np.inf, dtype=np.float32)
    for train in (halves, ~halves):
        if not train.any() or train.all() or not truth[train].any():
            continue
        half = type(fusion)(**params_of(fusion)).fit({name: v[train] for name, v in scores.items()}, counts[train],
                                                     truth[train])
        logits[~train] = half.decision({name: v[~train] for name, v in scores.items()}, counts[~train])
    return logits


def _half_hits(kind: type, scores: Mapping[str, np.ndarray], counts: np.ndarray, truth: np.ndarray,
               weights: np.ndarray | None, train: np.ndarray, test: np.ndarray) -> float:
    rows = {name: values[train] for name, values in scores.items()}
    model = kind().fit(rows, counts[train], truth[train], None if weights is None else weights[train])
    held = {name: values[test] for name, values in scores.items()}
    return top1_hits(model.decision(held, counts[test]), truth[test], None if weights is None else weights[test])


def top1_hits(scores: np.ndarray, truth: np.ndarray, weights: np.ndarray | None = None) -> float:
    """How many documents (or how much weight) have a gold label as their best-scored candidate."""
    hits = truth[np.arange(len(truth)), np.argmax(scores, axis=1)]
    return float(hits.sum() if weights is None else hits @ weights)


def _rank_features(scores: Mapping[str, np.ndarray], counts: np.ndarray, names: tuple[str, ...],
                   best_of: int) -> tuple[np.ndarray, np.ndarray]:
    """The feature rows of the pairs kept — real (not padding) and within some scorer's best `best_of`: each
    score (NaN where a scorer has none), its gap to the document's best and its rank there (0 = best), then
    log1p(example count) — and the (n, C) mask of those pairs."""
    valid = np.isfinite(scores[names[0]])
    n, width = valid.shape
    top = min(best_of, width)
    if n == 0 or top == 0:
        return np.empty((0, 3 * len(names) + 1), np.float32), np.zeros(valid.shape, bool)
    rows = np.arange(n)[:, None]
    columns, best_rank = [], np.full(valid.shape, top, dtype=np.int64)
    for name in names:
        values = np.where(valid & np.isfinite(scores[name]), scores[name], -np.inf).astype(np.float32)
        # Ranks past `top` are all `top`: a partial sort of the best entries is enough.
        best = np.argpartition(-values, top - 1, axis=1)[:, :top]
        best = np.take_along_axis(best, np.argsort(-values[rows, best], axis=1, kind="stable"), axis=1)
        rank = np.full(valid.shape, top, dtype=np.int64)
        rank[rows, best] = np.arange(top)
        rank[~np.isfinite(values)] = top
        finite = np.where(np.isfinite(values), values, np.nan)
        best_value = values[rows[:, 0], best[:, 0]][:, None]
        columns += [finite, finite - np.where(np.isfinite(best_value), best_value, 0), rank.astype(np.float32)]
        best_rank = np.minimum(best_rank, rank)
    columns.append(np.log1p(counts).astype(np.float32))
    kept = valid & (best_rank < top)
    return np.stack([column[kept] for column in columns], axis=1), kept


def _band(counts: np.ndarray) -> np.ndarray:
    return np.searchsorted(BANDS, counts, side="right") - 1
