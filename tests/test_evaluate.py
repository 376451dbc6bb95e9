import json
import math
import os
import re

import numpy as np
import pytest
import scipy.sparse as sp

from taxonomist.errors import InputError, TaxonomistError
from taxonomist.evaluate import evaluate
from taxonomist.report import write_report

NAN = float("nan")


def csr(gold_sets, n_labels):
    rows = [i for i, g in enumerate(gold_sets) for _ in g]
    cols = [label for g in gold_sets for label in g]
    return sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(gold_sets), n_labels))


# Five documents, five labels, three suggestions at most (so k=5 runs past them), -1 padding whose
# scores are NaN (they must be ignored), one document without gold, one without suggestions.
GOLD = [{0, 1}, {3}, set(), {0}, {2, 3}]
RANKED = np.array([[0, 2, 1], [4, -1, -1], [0, 3, -1], [0, 1, -1], [-1, -1, -1]])
SCORES = np.array([[0.92, 0.61, 0.42], [0.72, NAN, NAN], [0.83, 0.22, NAN], [0.57, 0.33, NAN], [NAN, NAN, NAN]])
# hits: doc0 [1, 0, 1], doc3 [1, 0, 0], all other positions miss.
TRAIN = np.array([0, 10, 1, 100, 5])


def inv(count, n_train):
    return 1 + (math.log(n_train) - 1) * 2.5 ** 0.55 * (count + 1.5) ** -0.55


@pytest.fixture
def tiny():
    return evaluate(RANKED, SCORES, csr(GOLD, 5), train_counts=TRAIN, n_train=200)


def test_ranking_metrics_by_hand(tiny):
    m = tiny.metrics
    assert (m["P@1"], m["P@3"], m["P@5"]) == (40.0, 20.0, 12.0)  # 2/5, 3/15, 3/25: k past the list still divides by k
    assert (m["R@1"], m["R@3"], m["R@5"]) == (30.0, 40.0, 40.0)  # (1/2 + 1)/5, (1 + 1)/5; no-gold doc counts 0
    assert m["nDCG@1"] == 40.0
    doc0 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))  # hits at ranks 1 and 3 of two gold labels
    assert m["nDCG@3"] == m["nDCG@5"] == round(100 * (doc0 + 1) / 5, 2)


def test_psp_by_hand(tiny):
    w = [inv(c, 200) for c in TRAIN]
    got1, got3 = 2 * w[0], 2 * w[0] + w[1]
    best1 = w[0] + w[3] + w[0] + max(w[2], w[3])  # per doc: the best k gold propensities
    best3 = w[0] + w[1] + w[3] + w[0] + w[2] + w[3]
    assert tiny.metrics["PSP@1"] == round(100 * got1 / best1, 2)
    assert tiny.metrics["PSP@3"] == tiny.metrics["PSP@5"] == round(100 * got3 / best3, 2)
    assert tiny.counts_from == "train" and tiny.n_train == 200


def test_set_metrics_by_hand(tiny):
    # score >= 0.5: doc0 {0, 2}, doc1 {4}, doc2 {0}, doc3 {0}; right: label 0 twice; 6 gold pairs.
    m = tiny.metrics
    assert (m["micro_precision"], m["micro_recall"], m["micro_F1"]) == (40.0, 33.33, 36.36)
    # labels 0..4 all in gold or suggested; only label 0 scores: P 2/3, R 2/2, F1 4/5.
    assert tiny.macro_labels == 5
    assert (m["macro_precision"], m["macro_recall"], m["macro_F1"]) == (13.33, 20.0, 16.0)
    assert tiny.mean_set_size == 1.0
    assert (tiny.docs_without_gold, tiny.docs_without_suggestion) == (1, 1)


def test_threshold_changes_the_set_only(tiny):
    high = evaluate(RANKED, SCORES, csr(GOLD, 5), train_counts=TRAIN, n_train=200, threshold=0.9)
    assert high.metrics["micro_precision"] == 100.0 and high.metrics["micro_recall"] == round(100 / 6, 2)
    assert high.metrics["P@3"] == tiny.metrics["P@3"]


def test_bands_by_hand(tiny):
    bands = {b.name: b for b in tiny.bands}
    assert [b.name for b in tiny.bands] == ["0", "1", "2-5", "6-20", "21-100", ">100"]
    assert (bands["0"].n_labels, bands["0"].gold, bands["0"].recall["R@1"]) == (1, 2, 100.0)  # label 0
    assert bands["0"].precision["P@1"] == 40.0
    assert bands["6-20"].recall == {"R@1": 0.0, "R@3": 100.0, "R@5": 100.0}  # label 1, found at rank 3
    assert bands["21-100"].gold == 2 and bands["21-100"].recall["R@5"] == 0.0  # label 3
    assert bands[">100"].n_labels == 0 and bands[">100"].recall["R@1"] is None
    for k in (1, 3, 5):
        assert sum(b.precision[f"P@{k}"] for b in tiny.bands) == pytest.approx(tiny.metrics[f"P@{k}"], abs=0.02)


def test_histograms(tiny):
    h = tiny.histograms
    assert len(h.edges) == 21 and h.edges[0] == 0.0 and h.edges[-1] == 1.0
    assert sum(h.top1_right) == 2 and h.top1_right[int(0.92 * 20)] == 1 and h.top1_right[int(0.57 * 20)] == 1
    assert sum(h.top1_wrong) == 2 and h.top1_wrong[int(0.72 * 20)] == 1 and h.top1_wrong[int(0.83 * 20)] == 1
    assert sum(h.topk) == 8  # every non-padding suggestion


def test_without_train_counts_uses_gold_counts_and_says_so():
    ev = evaluate(RANKED, SCORES, csr(GOLD, 5))
    assert ev.counts_from == "gold" and ev.n_train == 5 and "gold" in ev.note
    w = [inv(c, 5) for c in (2, 1, 1, 2, 0)]  # gold column counts
    assert ev.metrics["PSP@1"] == round(100 * 2 * w[0] / (w[1] + w[3] + w[0] + w[2]), 2)
    assert {b.name: b.n_labels for b in ev.bands}["0"] == 1  # label 4 never in gold


def test_no_suggestions_at_all():
    ev = evaluate(np.empty((2, 0), dtype=int), np.empty((2, 0)), csr([{0}, {1}], 3))
    assert all(v == 0.0 for v in ev.metrics.values())
    assert ev.histograms.edges == () and ev.docs_without_suggestion == 2


def test_to_dict_and_to_text(tiny):
    data = json.loads(json.dumps(tiny.to_dict()))
    assert data["metrics"]["P@1"] == 40.0 and data["bands"][5]["high"] is None
    text = tiny.to_text()
    for value in ("40.00", "33.33", "36.36", "13.33", "21-100"):
        assert value in text
    assert re.search(r"^P\s+40\.00\s+20\.00\s+12\.00$", text, re.M)


@pytest.mark.parametrize("change, where", [
    (dict(ranked=np.array([[0, 0, 1]] + RANKED[1:].tolist())), "row 0, column 1"),
    (dict(ranked=np.array([[0, 9, 1]] + RANKED[1:].tolist())), "row 0, column 1"),
    (dict(ranked=np.array([[0, -1, 1]] + RANKED[1:].tolist())), "row 0, column 2"),
    (dict(ranked=RANKED.astype(float)), "evaluate(ranked)"),
    (dict(ranked=RANKED[:4], scores=SCORES[:4]), "evaluate(ranked)"),
    (dict(scores=SCORES[:, :2]), "evaluate(scores)"),
    (dict(scores=np.where(np.arange(3) == 1, NAN, SCORES)), "row 0, column 1"),
    (dict(gold=csr(GOLD, 5) * 2), "row 0"),
    (dict(gold=csr(GOLD, 5).toarray()), "evaluate(gold)"),
    (dict(train_counts=TRAIN), "evaluate(n_train)"),
    (dict(train_counts=TRAIN, n_train=50), "evaluate(n_train)"),
    (dict(train_counts=TRAIN[:3], n_train=200), "evaluate(train_counts)"),
    (dict(ks=(0, 1)), "evaluate(ks)"),
    (dict(threshold=NAN), "evaluate(threshold)"),
])
def test_bad_input_says_where_and_how_to_fix(change, where):
    args = dict(ranked=RANKED, scores=SCORES, gold=csr(GOLD, 5)) | change
    ranked, scores, gold = args.pop("ranked"), args.pop("scores"), args.pop("gold")
    with pytest.raises(InputError) as err:
        evaluate(ranked, scores, gold, **args)
    assert where in err.value.where and err.value.fix


# ---- cross-check against the peers' reference formulas (copied: tests must not read shared files) ----

def peers_report(pred, gold, ks=(1, 3, 5)):
    out = {}
    for k in ks:
        out[f"P@{k}"] = sum(len(set(p[:k]) & g) / k for p, g in zip(pred, gold)) / len(gold)
    k = max(ks)
    nd = 0.0
    for p, g in zip(pred, gold):
        dcg = sum(1 / math.log2(i + 2) for i, label in enumerate(p[:k]) if label in g)
        idcg = sum(1 / math.log2(i + 2) for i in range(min(k, len(g))))
        nd += dcg / idcg if idcg else 0
    out[f"nDCG@{k}"] = nd / len(gold)
    return {a: round(100 * b, 2) for a, b in out.items()}


def peers_psp(pred, gold, train_counts, n_train, k=5, A=0.55, B=1.5):
    C = (math.log(n_train) - 1) * (B + 1) ** A

    def w(label):
        return 1 + C * math.exp(-A * math.log(train_counts.get(label, 0) + B))

    got = sum(w(label) for p, g in zip(pred, gold) for label in p[:k] if label in g)
    best = sum(sum(sorted((w(label) for label in g), reverse=True)[:k]) for g in gold)
    return round(100 * got / best, 2) if best else 0.0


def test_matches_peers_reference_on_random_data():
    rng = np.random.default_rng(7)
    n, n_labels, width = 400, 60, 6
    gold_sets = [set(rng.choice(n_labels, size=rng.integers(0, 5), replace=False).tolist()) for _ in range(n)]
    ranked = np.full((n, width), -1)
    for i in range(n):
        m = rng.integers(0, width + 1)
        ranked[i, :m] = rng.choice(n_labels, size=m, replace=False)
    scores = -np.sort(-rng.random((n, width)), axis=1)
    train = rng.integers(0, 80, size=n_labels)
    pred = [[int(label) for label in row if label >= 0] for row in ranked]

    ev = evaluate(ranked, scores, csr(gold_sets, n_labels), train_counts=train, n_train=3000)
    for key, value in peers_report(pred, gold_sets).items():
        assert ev.metrics[key] == value, key
    for k in (1, 3, 5):
        assert ev.metrics[f"PSP@{k}"] == peers_psp(pred, gold_sets, dict(enumerate(train.tolist())), 3000, k=k)
        assert ev.metrics[f"nDCG@{k}"] == peers_report(pred, gold_sets, ks=(k,))[f"nDCG@{k}"]


def test_large_sparse_input_needs_no_dense_matrix():
    rng = np.random.default_rng(0)
    n, n_labels, width = 20_000, 200_000, 10  # a dense n × L array would be 32 GB
    ranked = (rng.integers(0, n_labels, size=(n, 1)) + np.arange(width) * 7919) % n_labels
    gold = sp.csr_matrix((np.ones(n), (np.arange(n), ranked[:, 3])), shape=(n, n_labels))
    ev = evaluate(ranked, np.linspace(1, 0, width)[None].repeat(n, 0), gold, ks=(1, 5, 10))
    assert (ev.metrics["P@1"], ev.metrics["R@5"], ev.metrics["P@5"]) == (0.0, 100.0, 20.0)


# ---- report ----

def test_report_is_self_contained_html(tiny, tmp_path):
    umask = os.umask(0o022)  # the usual one: the report's mode follows it (test_atomic.py tries others)
    try:
        path = write_report(tiny, tmp_path / "out" / "report.html", title="eval <tiny>",
                            extra={"model": "m1 & m2", "docs": "test.jsonl"})
    finally:
        os.umask(umask)
    page = path.read_text(encoding="utf-8")
    assert page.count('<img src="data:image/png;base64,') >= 2
    assert "<title>eval &lt;tiny&gt;</title>" in page and "m1 &amp; m2" in page and "test.jsonl" in page
    for value in ("40.00", "30.00", "33.33", "36.36", "13.33", "16.00"):
        assert f"<td>{value}</td>" in page
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_report_without_any_suggestion(tmp_path):
    ev = evaluate(np.full((2, 3), -1), np.zeros((2, 3)), csr([{0}, {1}], 3))
    page = write_report(ev, tmp_path / "r.html", title="empty").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 2


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_interrupted_write_keeps_the_previous_report(tiny, tmp_path, monkeypatch, error):
    path = write_report(tiny, tmp_path / "report.html", title="first")
    before = path.read_bytes()
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, text):
            self.f.write(text[: len(text) // 2])
            self.f.flush()
            raise error

    monkeypatch.setattr(os, "fdopen", lambda *a, **kw: HalfWriter(real_fdopen(*a, **kw)))
    with pytest.raises(TaxonomistError if isinstance(error, OSError) else KeyboardInterrupt):
        write_report(tiny, path, title="second")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no temp file left behind
