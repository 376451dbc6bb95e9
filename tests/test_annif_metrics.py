"""Annif's metrics against values worked out by hand on a small case (the comments show the arithmetic)."""

import io
import math

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose

from taxonomist import annif_metrics
from taxonomist.labels import Label, LabelSet

A, B, C, D, E = range(5)
# d0 gold {A, B}, suggests A .9, C .5, B .2 | d1 gold {C}, suggests D .8, C .6 | d2 gold {D}, suggests nothing
# d3 gold {A}, suggests A .7 | E: in the vocabulary, never given nor suggested
RANKED = np.array([[A, C, B], [D, C, -1], [-1, -1, -1], [A, -1, -1]])
SCORES = np.array([[0.9, 0.5, 0.2], [0.8, 0.6, 0.0], [0.0, 0.0, 0.0], [0.7, 0.0, 0.0]])
GOLD = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [1, 0, 0, 0, 0]], dtype=np.float32))
LABELS = LabelSet([Label(id=f"http://ex.org/{c}", name=f"Subject {c}") for c in "ABCDE"])


def pred(limit=10, threshold=0.0, ranked=RANKED, scores=SCORES):
    return annif_metrics.predictions(ranked, scores, 5, limit=limit, threshold=threshold)


def test_every_metric_by_hand():
    m = annif_metrics.metrics(GOLD, pred())
    ndcg0 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))  # A hit at 1, B at 3; ideal: two hits at 1, 2
    expected = {
        "Precision (doc avg)": (2 / 3 + 1 / 2 + 0 + 1) / 4,
        "Recall (doc avg)": (1 + 1 + 0 + 1) / 4,
        "F1 score (doc avg)": (4 / 5 + 2 / 3 + 0 + 1) / 4,
        # per subject A..E: P = 1, 1, 1/2, 0, 0; R = 1, 1, 1, 0, 0; every subject counts, E too
        "Precision (subj avg)": 2.5 / 5,
        "Recall (subj avg)": 3 / 5,
        "F1 score (subj avg)": (1 + 1 + 2 / 3) / 5,
        # weights = support 2, 1, 1, 1, 0
        "Precision (weighted subj avg)": (2 + 1 + 0.5) / 5,
        "Recall (weighted subj avg)": (2 + 1 + 1) / 5,
        "F1 score (weighted subj avg)": (2 + 1 + 2 / 3) / 5,
        "Precision (microavg)": 4 / 6,
        "Recall (microavg)": 4 / 5,
        "F1 score (microavg)": 8 / 11,
        "F1@5": (4 / 5 + 2 / 3 + 0 + 1) / 4,
        "NDCG": (ndcg0 + 1 / math.log2(3) + 0 + 1) / 4,
        "NDCG@5": (ndcg0 + 1 / math.log2(3) + 0 + 1) / 4,
        "NDCG@10": (ndcg0 + 1 / math.log2(3) + 0 + 1) / 4,
        "Precision@1": (1 + 0 + 0 + 1) / 4,
        "Precision@3": (2 / 3 + 1 / 2 + 0 + 1) / 4,
        "Precision@5": (2 / 3 + 1 / 2 + 0 + 1) / 4,
        "True positives": 4,
        "False positives": 2,
        "False negatives": 1,
        "Documents evaluated": 4,
    }
    assert list(m) == list(expected)  # Annif's names, in the order annif eval prints them
    for name, value in expected.items():
        assert m[name] == pytest.approx(value, rel=1e-6), name
    assert all(isinstance(m[name], int) for name in ("True positives", "False positives", "Documents evaluated"))


def test_limit_and_threshold_choose_the_suggestion_set():
    assert_allclose(pred(limit=2).toarray()[0], [0.9, 0, 0.5, 0, 0])  # B, third, is cut by the limit
    assert_allclose(pred(threshold=0.55).toarray()[:2], [[0.9, 0, 0, 0, 0], [0, 0, 0.6, 0.8, 0]])
    capped = pred(ranked=np.array([[A, B]]), scores=np.array([[1.5, 0.0]]))
    assert capped.toarray().tolist() == [[1.0, 0, 0, 0, 0]]  # capped at 1; a zero score is no suggestion
    m = annif_metrics.metrics(GOLD, pred(limit=1))
    assert (m["True positives"], m["False positives"], m["False negatives"]) == (2, 1, 3)


def test_ndcg_cuts_at_its_limit_and_scores_a_document_without_gold_as_one():
    y_true = sp.csr_array(GOLD, dtype=bool)
    # @1: d0 A hit (1), d1 D miss (0), d2 nothing (0), d3 A hit (1)
    assert annif_metrics.ndcg(y_true, pred(), 1) == pytest.approx(0.5)
    no_gold = sp.csr_matrix((1, 5), dtype=np.float32)
    assert annif_metrics.ndcg(no_gold, pred(ranked=RANKED[:1], scores=SCORES[:1])) == 1.0


def test_ndcg_orders_by_score_not_by_position():
    ranked, scores = np.array([[C, A]]), np.array([[0.2, 0.9]])  # A scores higher though listed second
    gold = sp.csr_matrix(np.array([[1, 0, 0, 0, 0]], dtype=np.float32))
    assert annif_metrics.ndcg(gold, pred(ranked=ranked, scores=scores)) == pytest.approx(1.0)


def test_per_subject_report_has_annif_columns_and_every_subject():
    handle = io.StringIO()
    annif_metrics.write_per_subject(GOLD, pred(), LABELS, handle)
    rows = [line.split("\t") for line in handle.getvalue().splitlines()]
    assert rows[0] == ["URI", "Label", "Support", "True_positives", "False_positives", "False_negatives",
                       "Precision", "Recall", "F1_score"]
    assert rows[1:] == [
        ["http://ex.org/A", "Subject A", "2", "2", "0", "0", "1.0", "1.0", "1.0"],
        ["http://ex.org/B", "Subject B", "1", "1", "0", "0", "1.0", "1.0", "1.0"],
        ["http://ex.org/C", "Subject C", "1", "1", "1", "0", "0.5", "1.0", "0.6666666666666666"],
        ["http://ex.org/D", "Subject D", "1", "0", "1", "1", "0.0", "0.0", "0.0"],
        ["http://ex.org/E", "Subject E", "0", "0", "0", "0", "0.0", "0.0", "0.0"],
    ]


def test_text_is_laid_out_as_annif_eval_prints_it():
    lines = annif_metrics.to_text(annif_metrics.metrics(GOLD, pred())).splitlines()
    assert lines[0] == "Precision (doc avg):          \t0.5417"
    assert lines[-1] == "Documents evaluated:          \t4"
    assert len(lines) == 23


def annif_ndcg(y_true, y_pred, limit=None):
    """annif/eval.py's ndcg_score, row by row, as the reference for the vectorised one."""
    def dcg(true, pred):
        n_pred = pred.count_nonzero() if limit is None else min(limit, pred.count_nonzero())
        order = pred.indices[pred.data.argsort()[len(pred.data) - n_pred:][::-1]]
        return (true[:, order].toarray() / np.log2(np.arange(1, n_pred + 1) + 1)).sum()

    scores = np.ones(y_true.shape[0], dtype=np.float32)
    for i in range(y_true.shape[0]):
        true = sp.csr_array(y_true[[i]])
        if (idcg := dcg(true, true)) > 0:
            scores[i] = dcg(true, sp.csr_array(y_pred[[i]])) / idcg
    return float(scores.mean())


@pytest.mark.parametrize("limit", [None, 1, 3, 5])
def test_ndcg_equals_annif_loop_on_random_rankings(limit):
    rng = np.random.default_rng(limit or 0)
    n, n_labels, width = 40, 12, 6
    ranked = np.stack([rng.permutation(n_labels)[:width] for _ in range(n)])
    scores = -np.sort(-rng.random((n, width)), axis=1)  # distinct scores: no ties to order
    gold = sp.csr_matrix(rng.random((n, n_labels)) < 0.25)
    suggested = annif_metrics.predictions(ranked, scores, n_labels, limit=width, threshold=0.3)
    assert annif_metrics.ndcg(gold, suggested, limit) == pytest.approx(annif_ndcg(gold, suggested, limit), abs=1e-7)
