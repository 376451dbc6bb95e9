"""Annif's evaluation metrics, under Annif's names and computed as `annif eval` computes them (annif/eval.py), so
that a user can put both tools' numbers side by side.

Annif scores a suggestion set, not a ranking: each document's best `limit` suggestions whose score is at least
`threshold` and above 0 (scores capped at 1). Precision, recall and F1 are sklearn's, averaged per document
('samples'), per subject over the whole vocabulary ('macro': subjects never given nor suggested count as 0),
weighted by support, and micro. NDCG ranks the set by score and counts a document without gold subjects as 1.
These differ from taxonomist's own metrics (percentages, every label ranked, per-label macro over active labels).
"""

from __future__ import annotations

import warnings
from typing import TextIO

import numpy as np
import scipy.sparse as sp

from .labels import LabelSet

AVERAGES = (("doc avg", "samples"), ("subj avg", "macro"), ("weighted subj avg", "weighted"), ("microavg", "micro"))
PER_SUBJECT_COLUMNS = (
    "URI", "Label", "Support", "True_positives", "False_positives", "False_negatives", "Precision", "Recall",
    "F1_score",
)


def predictions(ranked: np.ndarray, scores: np.ndarray, n_labels: int, *, limit: int, threshold: float
                ) -> sp.csr_array:
    """Annif's suggestion matrix (n, L): the first `limit` suggestions of each row of a ranking sorted best first
    (-1 pads, as Classifier.rank returns), kept when score >= threshold and score > 0, scores capped at 1."""
    ranked, scores = np.asarray(ranked)[:, :limit], np.asarray(scores, dtype=np.float64)[:, :limit]
    keep = (ranked >= 0) & (scores >= threshold) & (scores > 0)
    rows = np.broadcast_to(np.arange(ranked.shape[0])[:, None], ranked.shape)
    return sp.csr_array(
        (np.minimum(scores[keep], 1.0).astype(np.float32), (rows[keep], ranked[keep])),
        shape=(ranked.shape[0], n_labels),
    )


def metrics(gold: sp.spmatrix | sp.sparray, pred: sp.csr_array) -> dict[str, float | int]:
    """Every metric `annif eval` prints, in its order and under its names, for 0/1 gold subjects (n, L) and the
    suggestion matrix from predictions(). sklearn's precision_recall_fscore_support is what Annif's
    precision_score, recall_score and f1_score calls run, once per average here instead of three times."""
    from sklearn.metrics import precision_recall_fscore_support  # a 2 s import that only eval needs

    y_true = sp.csr_array(gold, dtype=bool)
    chosen = pred > 0
    out: dict[str, float | int] = {}
    with warnings.catch_warnings():  # sklearn warns of 0/0 (a document or subject with nothing); Annif hides it
        warnings.simplefilter("ignore")

        def scores(y_pred: sp.csr_array, average: str) -> tuple[float, float, float]:
            precision, recall, f1, _ = precision_recall_fscore_support(y_true, y_pred, average=average)
            return float(precision), float(recall), float(f1)

        for name, average in AVERAGES:
            out[f"Precision ({name})"], out[f"Recall ({name})"], out[f"F1 score ({name})"] = scores(chosen, average)
        at = {k: scores(_top(pred, k) > 0, "samples") for k in (1, 3, 5)}
    out["F1@5"] = at[5][2]
    out["NDCG"] = ndcg(y_true, pred)
    out["NDCG@5"] = ndcg(y_true, pred, 5)
    out["NDCG@10"] = ndcg(y_true, pred, 10)
    for k in (1, 3, 5):
        out[f"Precision@{k}"] = at[k][0]
    tp = int(y_true.multiply(chosen).sum())
    out["True positives"] = tp
    out["False positives"] = int(chosen.sum()) - tp
    out["False negatives"] = int(y_true.sum()) - tp
    out["Documents evaluated"] = int(y_true.shape[0])
    return out


def ndcg(gold: sp.spmatrix | sp.sparray, pred: sp.csr_array, limit: int | None = None) -> float:
    """Annif's ndcg_score without its loop: each document's suggestions by score, the best `limit` of them, gain
    1 for a gold subject, discount log2(rank + 1); the ideal puts min(limit, gold) gold subjects first; a document
    without gold subjects scores 1."""
    y_true = sp.csr_array(gold, dtype=bool)
    cols, _ = _padded_by_score(pred, limit)
    found = cols >= 0
    gain = np.zeros(cols.shape, dtype=bool)
    if found.any():
        gain[found] = np.asarray(y_true[np.nonzero(found)[0], cols[found]]).ravel()
    dcg = (gain / np.log2(np.arange(2, cols.shape[1] + 2))).sum(axis=1)
    n_true = np.diff(y_true.indptr)
    cap = int(n_true.max(initial=0)) if limit is None else limit
    ideal = np.concatenate(([0.0], np.cumsum(1.0 / np.log2(np.arange(2, cap + 2)))))
    idcg = ideal[np.minimum(n_true, cap)]
    out = np.ones(y_true.shape[0], dtype=np.float32)  # float32 and a plain mean, as Annif's
    out[idcg > 0] = dcg[idcg > 0] / idcg[idcg > 0]
    return float(out.mean())


def write_per_subject(gold: sp.spmatrix | sp.sparray, pred: sp.csr_array, labels: LabelSet, handle: TextIO) -> None:
    """Annif's `eval --results-file`: one row per subject of the vocabulary, in its order, with Annif's columns
    and number formatting (Python's str of ints and floats)."""
    y_true = sp.csr_array(gold, dtype=bool)
    chosen = (pred > 0).astype(np.int64)
    support = np.asarray(y_true.sum(axis=0)).ravel().astype(np.int64)
    tp = np.asarray(y_true.astype(np.int64).multiply(chosen).sum(axis=0)).ravel()
    fp = np.asarray(chosen.sum(axis=0)).ravel() - tp
    fn = support - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.nan_to_num(tp / (tp + fp))
        recall = np.nan_to_num(tp / (tp + fn))
        f1 = np.nan_to_num(2 * (precision * recall) / (precision + recall))
    handle.write("\t".join(PER_SUBJECT_COLUMNS) + "\n")
    for i, label in enumerate(labels):
        cells = (label.id, label.name, support[i], tp[i], fp[i], fn[i], precision[i], recall[i], f1[i])
        handle.write("\t".join(_cell(c) for c in cells) + "\n")


def to_text(values: dict[str, float | int]) -> str:
    """The lines `annif eval` prints: name and colon padded to 30, a tab, floats to 4 decimals."""
    return "\n".join(
        f"{name + ':':<30}\t{value:d}" if isinstance(value, int) else f"{name + ':':<30}\t{value:.04f}"
        for name, value in values.items()
    )


def _top(pred: sp.csr_array, k: int) -> sp.csr_array:
    """Annif's filter_suggestion(pred, k): each row's k best suggestions."""
    cols, vals = _padded_by_score(pred, k)
    keep = cols >= 0
    rows = np.broadcast_to(np.arange(pred.shape[0])[:, None], cols.shape)
    return sp.csr_array((vals[keep], (rows[keep], cols[keep])), shape=pred.shape)


def _padded_by_score(pred: sp.csr_array, width: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Each row's best `width` (all: None) (column, score) pairs, best first, as (n, width) arrays; -1 pads. Ties
    go to the higher column, as Annif's argsort()[::-1] orders them where numpy's sort is stable (it may not be:
    Annif's order of tied scores depends on the machine)."""
    pred = sp.csr_array(pred)
    pred.sort_indices()
    n, counts = pred.shape[0], np.diff(pred.indptr)
    most = int(counts.max(initial=0))
    row_of = np.repeat(np.arange(n), counts)
    # each row right-aligned, columns descending, so that a stable sort by score breaks ties as Annif does
    place = most - 1 - (np.arange(pred.nnz) - pred.indptr[row_of])
    cols = np.full((n, most), -1, dtype=np.int64)
    vals = np.full((n, most), -np.inf, dtype=np.float64)
    cols[row_of, place], vals[row_of, place] = pred.indices, pred.data
    order = np.argsort(-vals, axis=1, kind="stable")[:, :width]
    cols, vals = np.take_along_axis(cols, order, axis=1), np.take_along_axis(vals, order, axis=1)
    return cols, np.where(cols >= 0, vals, 0.0).astype(pred.dtype)


def _cell(value: object) -> str:
    return str(float(value)) if isinstance(value, np.floating) else str(value)
