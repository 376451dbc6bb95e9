"""Metrics for ranked label suggestions against gold label sets, defined as XMC papers and pyxclib do.

Works on a (n, k) ranking and a sparse (n, L) gold matrix only, so 100k documents × 100k labels
never builds a dense n × L array. Every document counts in every mean (one without gold labels
scores 0), as in pyxclib and the peers' metrics, so numbers are comparable with theirs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Sequence

import numpy as np
import scipy.sparse as sp

from .errors import InputError

PROPENSITY_A, PROPENSITY_B = 0.55, 1.5  # Jain et al. 2016 defaults for datasets that are not Wikipedia/Amazon
# (name, lowest, highest) label frequency per band; None: no upper bound.
BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("0", 0, 0), ("1", 1, 1), ("2-5", 2, 5), ("6-20", 6, 20), ("21-100", 21, 100), (">100", 101, None),
)
HIST_BINS = 20


@dataclass(frozen=True)
class Band:
    """Labels whose frequency lies in one band, and how well their gold occurrences are found."""

    name: str
    low: int
    high: int | None
    n_labels: int
    gold: int  # gold (document, label) pairs with a label of this band
    recall: dict[str, float | None]  # "R@k": % of those pairs in the top k; None when gold == 0
    precision: dict[str, float]  # "P@k": this band's share of P@k; the bands add up to P@k


@dataclass(frozen=True)
class ScoreHistograms:
    """Score counts on shared bins, to show where confidence separates right from wrong."""

    edges: tuple[float, ...]
    top1_right: tuple[int, ...]  # documents whose top-1 suggestion is a gold label
    top1_wrong: tuple[int, ...]
    topk: tuple[int, ...]  # every suggestion of every document


@dataclass(frozen=True)
class Evaluation:
    """All numbers are percentages rounded to 2 decimals, like the peers' report."""

    n_docs: int
    n_labels: int
    ks: tuple[int, ...]
    threshold: float
    metrics: dict[str, float]  # P@k, nDCG@k, PSP@k, R@k, then micro_/macro_ precision, recall, F1
    counts_from: Literal["train", "gold"]  # where label frequencies (propensities, bands) come from
    n_train: int
    note: str
    macro_labels: int  # labels in the macro average: in gold or suggested above the threshold
    docs_without_gold: int
    docs_without_suggestion: int
    mean_set_size: float  # suggestions per document with score >= threshold
    bands: tuple[Band, ...]
    histograms: ScoreHistograms

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_text(self) -> str:
        lines = [
            f"{self.n_docs:,} documents, {self.n_labels:,} labels; {self.note}",
            f"documents without gold labels: {self.docs_without_gold:,}; "
            f"without any suggestion: {self.docs_without_suggestion:,}",
            "",
            _table(["", *(f"@{k}" for k in self.ks)],
                   [[name, *(self.metrics[f"{name}@{k}"] for k in self.ks)] for name in ("P", "nDCG", "PSP", "R")]),
            "",
            _table([f"set (score >= {self.threshold:g})", "precision", "recall", "F1"],
                   [[f"{avg} ({self.macro_labels:,} labels)" if avg == "macro" else avg,
                     *(self.metrics[f"{avg}_{m}"] for m in ("precision", "recall", "F1"))]
                    for avg in ("micro", "macro")]),
            f"mean set size: {self.mean_set_size:.2f} labels per document",
            "",
            f"by label frequency in the {'training data' if self.counts_from == 'train' else 'gold labels'}"
            " (R@k: recall of the band's gold labels; P@k: the band's share of P@k)",
            _table(["band", "labels", "gold", *(f"R@{k}" for k in self.ks), *(f"P@{k}" for k in self.ks)],
                   [[b.name, b.n_labels, b.gold, *b.recall.values(), *b.precision.values()] for b in self.bands]),
        ]
        return "\n".join(lines)


def evaluate(
    ranked: np.ndarray,
    scores: np.ndarray,
    gold: sp.spmatrix | sp.sparray,
    *,
    train_counts: np.ndarray | None = None,
    n_train: int | None = None,
    threshold: float = 0.5,
    ks: Sequence[int] = (1, 3, 5),
) -> Evaluation:
    """Score a ranking (label positions best first, -1 = no suggestion) against 0/1 gold labels.

    The ranking metrics use the top k of `ranked`; the set metrics use every suggestion of `ranked`
    whose score is >= threshold. `train_counts` (documents per label in the training data, with
    `n_train` training documents) set the propensities and frequency bands; without them the gold
    matrix's own column counts are used, which `note` says.
    """
    ks = _check_ks(ks)
    gold = _check_gold(gold)
    n, n_labels = gold.shape
    ranked, scores = _check_ranking(ranked, scores, n, n_labels)
    threshold = _check_threshold(threshold)
    counts, n_train, counts_from = _label_counts(gold, train_counts, n_train)

    width = max(max(ks), ranked.shape[1])
    ranked = np.pad(ranked, ((0, 0), (0, width - ranked.shape[1])), constant_values=-1)
    valid = ranked >= 0
    scores = np.where(valid, np.pad(scores, ((0, 0), (0, width - scores.shape[1]))), np.nan)
    hits = _hits(gold, ranked)
    gold_size = np.diff(gold.indptr)
    inv = _inverse_propensity(counts, n_train)

    metrics: dict[str, float] = {}
    for k in ks:
        metrics[f"P@{k}"] = _pct(hits[:, :k].sum() / (n * k))
    discount = 1.0 / np.log2(np.arange(width) + 2)
    ideal = np.concatenate(([0.0], np.cumsum(discount)))
    for k in ks:
        dcg = (hits[:, :k] * discount[:k]).sum(axis=1)
        idcg = ideal[np.minimum(gold_size, k)]
        metrics[f"nDCG@{k}"] = _pct(np.divide(dcg, idcg, out=np.zeros(n), where=idcg > 0).mean())
    gains = np.where(hits, inv[np.maximum(ranked, 0)], 0.0)
    best_rank = _rank_in_row(gold, inv)
    gold_inv = inv[gold.indices]
    for k in ks:
        best = gold_inv[best_rank < k].sum()
        metrics[f"PSP@{k}"] = _pct(gains[:, :k].sum() / best) if best else 0.0
    for k in ks:
        metrics[f"R@{k}"] = _pct((hits[:, :k].sum(axis=1) / np.maximum(gold_size, 1)).mean())

    chosen = valid & (np.nan_to_num(scores, nan=-np.inf) >= threshold)
    tp = np.bincount(ranked[chosen & hits], minlength=n_labels)
    suggested = np.bincount(ranked[chosen], minlength=n_labels)
    in_gold = np.bincount(gold.indices, minlength=n_labels)
    metrics |= _set_metrics(tp, suggested, in_gold)

    return Evaluation(
        n_docs=n, n_labels=n_labels, ks=ks, threshold=threshold, metrics=metrics,
        counts_from=counts_from, n_train=n_train,
        note=(f"label frequencies from {n_train:,} training documents" if counts_from == "train" else
              "no train_counts given: propensities and frequency bands use the gold labels' own counts"),
        macro_labels=int(((in_gold > 0) | (suggested > 0)).sum()),
        docs_without_gold=int((gold_size == 0).sum()),
        docs_without_suggestion=int((~valid[:, 0]).sum()),
        mean_set_size=round(float(chosen.sum() / n), 2),
        bands=_bands(counts, gold, ranked, hits, ks),
        histograms=_histograms(scores, valid, hits),
    )


def _pct(x: float) -> float:
    return round(100 * float(x), 2)


def _hits(gold: sp.csr_matrix, ranked: np.ndarray) -> np.ndarray:
    """gold[i, ranked[i, j]] for every position, by binary search in the sorted (row, column) keys."""
    n, n_labels = gold.shape
    keys = np.repeat(np.arange(n, dtype=np.int64), np.diff(gold.indptr)) * n_labels + gold.indices
    if keys.size == 0:
        return np.zeros(ranked.shape, dtype=bool)
    query = np.arange(n, dtype=np.int64)[:, None] * n_labels + ranked
    at = np.minimum(np.searchsorted(keys, query), keys.size - 1)
    return (keys[at] == query) & (ranked >= 0)


def _inverse_propensity(counts: np.ndarray, n_train: int) -> np.ndarray:
    """Jain et al. 2016, as pyxclib's compute_inv_propesity: rare labels weigh more."""
    a, b = PROPENSITY_A, PROPENSITY_B
    c = (np.log(n_train) - 1) * (b + 1) ** a
    return 1.0 + c * (counts + b) ** -a


def _rank_in_row(gold: sp.csr_matrix, weight: np.ndarray) -> np.ndarray:
    """For each gold entry, its place within its row when the row is sorted by weight, largest first."""
    rows = np.repeat(np.arange(gold.shape[0]), np.diff(gold.indptr))
    order = np.lexsort((-weight[gold.indices], rows))
    rank = np.empty(gold.nnz, dtype=np.int64)
    rank[order] = np.arange(gold.nnz) - gold.indptr[rows]
    return rank


def _set_metrics(tp: np.ndarray, suggested: np.ndarray, in_gold: np.ndarray) -> dict[str, float]:
    def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.divide(a, b, out=np.zeros(np.shape(a)), where=np.asarray(b) > 0)

    total_tp, total_suggested, total_gold = tp.sum(), suggested.sum(), in_gold.sum()
    out = {
        "micro_precision": ratio(total_tp, total_suggested),
        "micro_recall": ratio(total_tp, total_gold),
        "micro_F1": ratio(2 * total_tp, total_suggested + total_gold),
    }
    active = (in_gold > 0) | (suggested > 0)
    tp, suggested, in_gold = tp[active], suggested[active], in_gold[active]
    for name, per_label in (("precision", ratio(tp, suggested)), ("recall", ratio(tp, in_gold)),
                            ("F1", ratio(2 * tp, suggested + in_gold))):
        out[f"macro_{name}"] = per_label.mean() if per_label.size else 0.0
    return {name: _pct(value) for name, value in out.items()}


def _bands(counts: np.ndarray, gold: sp.csr_matrix, ranked: np.ndarray, hits: np.ndarray,
           ks: tuple[int, ...]) -> tuple[Band, ...]:
    n = gold.shape[0]
    upper = [high + 0.5 for _, _, high in BANDS if high is not None]
    band_of = np.digitize(counts, upper)
    n_labels = np.bincount(band_of, minlength=len(BANDS))
    in_gold = np.bincount(band_of[gold.indices], minlength=len(BANDS))
    found = {k: np.bincount(band_of[ranked[:, :k][hits[:, :k]]], minlength=len(BANDS)) for k in ks}
    return tuple(
        Band(name=name, low=low, high=high, n_labels=int(n_labels[b]), gold=int(in_gold[b]),
             recall={f"R@{k}": _pct(found[k][b] / in_gold[b]) if in_gold[b] else None for k in ks},
             precision={f"P@{k}": _pct(found[k][b] / (n * k)) for k in ks})
        for b, (name, low, high) in enumerate(BANDS)
    )


def _histograms(scores: np.ndarray, valid: np.ndarray, hits: np.ndarray) -> ScoreHistograms:
    every = scores[valid]
    if every.size == 0:
        return ScoreHistograms((), (), (), ())
    if every.min() >= 0 and every.max() <= 1:  # probabilities: fixed bins, comparable across runs
        edges = np.linspace(0.0, 1.0, HIST_BINS + 1)
    else:
        edges = np.histogram_bin_edges(every, bins=HIST_BINS)
    top1, right = scores[valid[:, 0], 0], hits[valid[:, 0], 0]

    def count(x: np.ndarray) -> tuple[int, ...]:
        return tuple(int(c) for c in np.histogram(x, bins=edges)[0])

    return ScoreHistograms(tuple(float(e) for e in edges), count(top1[right]), count(top1[~right]), count(every))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    """Left-aligned first column, right-aligned numbers; None shows as '-'."""
    def cell(v: Any) -> str:
        return "-" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v)

    text = [header, *([cell(v) for v in row] for row in rows)]
    widths = [max(len(r[i]) for r in text) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
        for r in text
    )


# ---- validation: every message names the argument (and row) and says how to fix it ----

def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    try:
        out = tuple(sorted({int(k) for k in ks}))
    except (TypeError, ValueError):
        out = ()
    if not out or out[0] < 1:
        raise InputError(f"ks must be positive whole numbers, got {ks!r}", where="evaluate(ks)",
                         fix="pass cut-offs such as ks=(1, 3, 5)")
    return out


def _check_gold(gold: Any) -> sp.csr_matrix:
    if not sp.issparse(gold):
        raise InputError(f"gold must be a scipy.sparse matrix, got {type(gold).__name__}", where="evaluate(gold)",
                         fix="build it with scipy.sparse.csr_matrix((ones, (rows, label_positions)), shape=(n, L))")
    gold = sp.csr_matrix(gold, dtype=np.float64, copy=True)
    gold.sum_duplicates()
    gold.eliminate_zeros()
    if gold.shape[0] == 0:
        raise InputError("there are no documents to evaluate", where="evaluate(gold)",
                         fix="evaluate on at least one document with gold labels")
    bad = np.flatnonzero(gold.data != 1)
    if bad.size:
        row = int(np.searchsorted(gold.indptr, bad[0], side="right") - 1)
        raise InputError(f"gold values must be 0 or 1, found {gold.data[bad[0]]:g} (a label listed twice?)",
                         where=f"evaluate(gold), row {row}, label position {gold.indices[bad[0]]}",
                         fix="list each gold label of a document once, with value 1")
    return gold


def _check_ranking(ranked: Any, scores: Any, n: int, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    ranked, scores = np.asarray(ranked), np.asarray(scores)
    if ranked.ndim != 2 or not np.issubdtype(ranked.dtype, np.integer):
        raise InputError(f"ranked must be a 2-d integer array, got {ranked.ndim}-d {ranked.dtype}",
                         where="evaluate(ranked)", fix="pass label positions, shape (n_docs, k), -1 for no suggestion")
    if ranked.shape[0] != n:
        raise InputError(f"ranked has {ranked.shape[0]} rows but gold has {n}", where="evaluate(ranked)",
                         fix="pass one row of suggestions per gold document, in the same order")
    if scores.shape != ranked.shape:
        raise InputError(f"scores has shape {scores.shape} but ranked has {ranked.shape}", where="evaluate(scores)",
                         fix="pass one score per ranked suggestion")
    ranked = ranked.astype(np.int64)
    problems = (
        (ranked < -1) | (ranked >= n_labels),
        np.zeros_like(ranked, dtype=bool) if ranked.shape[1] < 2 else
        np.pad((ranked[:, 1:] >= 0) & (ranked[:, :-1] < 0), ((0, 0), (1, 0))),
        _duplicates(ranked),
    )
    reasons = (
        (f"a label position outside 0..{n_labels - 1} (and not -1)", "use positions in the label set, -1 for none"),
        ("a suggestion after a -1", "put -1 padding only after a row's last suggestion"),
        ("the same label twice", "suggest each label at most once per document"),
    )
    for bad, (what, fix) in zip(problems, reasons):
        if bad.any():
            row, col = map(int, np.argwhere(bad)[0])
            raise InputError(f"ranked has {what}: {int(ranked[row, col])}", where=f"evaluate(ranked), row {row}, "
                             f"column {col}", fix=fix)
    scores = scores.astype(np.float64)
    bad = (ranked >= 0) & ~np.isfinite(scores)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise InputError(f"score {scores[row, col]} is not a finite number",
                         where=f"evaluate(scores), row {row}, column {col}", fix="give every suggestion a finite score")
    return ranked, scores


def _duplicates(ranked: np.ndarray) -> np.ndarray:
    order = np.argsort(ranked, axis=1, kind="stable")
    ordered = np.take_along_axis(ranked, order, axis=1)
    repeat = np.zeros_like(ranked, dtype=bool)
    np.put_along_axis(repeat, order[:, 1:], (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0), axis=1)
    return repeat


def _check_threshold(threshold: float) -> float:
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value):
        raise InputError(f"threshold must be a finite number, got {threshold!r}", where="evaluate(threshold)",
                         fix="pass the score above which a suggestion counts as given, e.g. 0.5")
    return value


def _label_counts(gold: sp.csr_matrix, train_counts: Any, n_train: int | None
                  ) -> tuple[np.ndarray, int, Literal["train", "gold"]]:
    n, n_labels = gold.shape
    if train_counts is None:
        return np.bincount(gold.indices, minlength=n_labels).astype(np.float64), n, "gold"
    counts = np.asarray(train_counts, dtype=np.float64)
    if counts.shape != (n_labels,):
        raise InputError(f"train_counts has shape {counts.shape}, expected ({n_labels},)",
                         where="evaluate(train_counts)", fix="give one training count per label, in label order")
    if not np.all(np.isfinite(counts) & (counts >= 0)):
        label = int(np.flatnonzero(~(np.isfinite(counts) & (counts >= 0)))[0])
        raise InputError(f"train_counts[{label}] = {counts[label]} is not a count", where="evaluate(train_counts)",
                         fix="give the number of training documents that carry each label")
    if n_train is None or n_train < 1 or n_train < counts.max():
        raise InputError(f"n_train = {n_train!r} does not fit train_counts (largest count {counts.max():g})",
                         where="evaluate(n_train)",
                         fix="pass n_train, the number of training documents the counts come from")
    return counts, int(n_train), "train"
