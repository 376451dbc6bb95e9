"""Learning from examples: scorers, fusion, saving, loading and growing a model, on the hashing encoder."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import HashingEncoder

from taxonomist.classifier import Classifier
from taxonomist.config import Config
from taxonomist.errors import InputError, ModelError
from taxonomist.fusion import (BOOSTED_MIN_DOCS, BOOSTED_TOP, BoostedFusion, Fusion, _rank_features, fit_fusion,
                               top1_hits)
from taxonomist.index import GraphIndex, LabelIndex
from taxonomist.labels import Label, LabelSet
from taxonomist.scorers import Batch, FitInput
from taxonomist.scorers.linear import LinearScorer
from taxonomist.scorers.neighbours import NeighbourScorer
from taxonomist.scorers.prototype import PrototypeScorer
from taxonomist.scoring import Scoring
from taxonomist.train import Trainer

DENSE = ("prototypes", "linear", "neighbours")
# Label names that say nothing about the documents: only examples can teach what each label means.
LABELS = LabelSet([Label("a", "alpha"), Label("b", "beta"), Label("c", "gamma"), Label("d", "delta")])
WORDS = {"a": "tomato basil garlic", "b": "guitar drum violin", "c": "goalkeeper referee stadium",
         "d": "comet galaxy telescope"}
FILLER = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
TEXTS = [f"{WORDS[l]} {w} {v}" for l in "abc" for w in FILLER for v in FILLER[:3]]  # "d" has no examples
IDS = [[l] for l in "abc" for _ in range(36)]
TEST = ["fresh tomato and garlic sauce", "a drum and a violin", "the referee sent the goalkeeper off"]


def fitted(**params) -> Classifier:
    return Classifier(LABELS, encoder=HashingEncoder(), context="", **params).fit(TEXTS, IDS)


def top1(classifier: Classifier, texts=TEST) -> list[str]:
    return [row[0].label_id for row in classifier.suggest(texts, k=1)]


def test_examples_teach_labels_whose_names_say_nothing():
    zero_shot = Classifier(LABELS, encoder=HashingEncoder(), context="").fit()
    assert top1(zero_shot) != ["a", "b", "c"]
    classifier = fitted(supervised=DENSE)
    assert classifier.model_.fusion is not None  # 108 examples: enough held out to learn the weights
    assert top1(classifier) == ["a", "b", "c"]
    scores = [row[0].score for row in classifier.suggest(TEST, k=1)]
    assert all(0 < s <= 1 for s in scores)


def test_labels_without_examples_come_from_the_whole_shortlist_into_the_fusions_candidates():
    labels = LabelSet([*LABELS.labels[:3], Label("d", "comet galaxy telescope")])
    model = Classifier(labels, encoder=HashingEncoder(), context="", supervised=DENSE).fit(TEXTS, IDS).model_
    config = model.scoring.config
    narrow = replace(model.scoring, config=replace(config, rank=replace(config.rank, fusion_candidates=1)))
    batch = model._batch(["fresh tomato and garlic sauce"])
    candidates, _ = narrow.fusion_inputs(batch, model._adaptation(batch))
    assert 3 in candidates[0] and 0 in candidates[0]  # "d" is not the best zero-shot label, yet a candidate
    with_examples = replace(narrow, counts=np.where(np.arange(4) == 3, 5, narrow.counts))
    assert 3 not in with_examples.fusion_inputs(batch, model._adaptation(batch))[0][0]


def test_a_label_without_examples_can_still_be_suggested():
    labels = LabelSet([*LABELS.labels[:3], Label("d", "comet galaxy telescope")])
    classifier = Classifier(labels, encoder=HashingEncoder(), context="", supervised=DENSE).fit(TEXTS, IDS)
    assert classifier.model_.counts[3] == 0
    assert top1(classifier, ["comet and galaxy seen in a telescope"]) == ["d"]


def examples_of(text_vectors, vectors, targets) -> FitInput:
    """What a supervised scorer learns from: label text vectors, example vectors and their labels."""
    return FitInput(label_vectors=text_vectors, vectors=vectors, targets=sp.csr_matrix(targets))


def test_prototypes_move_from_text_to_examples_with_their_count():
    text = np.eye(2, dtype=np.float32)
    examples = np.array([[0, 1]] * 8, dtype=np.float32)
    one = PrototypeScorer(shrinkage=4).fit(examples_of(text, examples[:1], np.array([[1, 0]], np.float32)))
    many = PrototypeScorer(shrinkage=4).fit(examples_of(text, examples, np.array([[1, 0]] * 8, np.float32)))
    toward = lambda s: s.index_.vectors[0] @ np.array([0, 1])
    assert 0 < toward(one) < toward(many) < 1
    assert np.allclose(many.index_.vectors[1], [0, 1])  # no examples: its text alone


def test_linear_head_keeps_the_text_direction_for_labels_without_examples_and_updates_exactly():
    rng = np.random.default_rng(0)
    text = rng.standard_normal((3, 8)).astype(np.float32)
    x = rng.standard_normal((40, 8)).astype(np.float32)
    dense = (rng.random((40, 3)) < 0.3).astype(np.float32)
    dense[:, 2] = 0
    y = sp.csr_matrix(dense)
    whole = LinearScorer(alpha=1.0).fit(examples_of(text, x, y))
    parts = LinearScorer(alpha=1.0).fit(examples_of(text, x[:25], y[:25])).update(examples_of(text, x[25:], y[25:]))
    assert np.allclose(whole.coef_, parts.coef_, atol=1e-4)
    # Label 2 has no examples: its head is the ridge solution towards its text vector.
    expected = np.linalg.solve(x.T @ x + np.eye(8), text[2])
    assert np.allclose(whole.coef_[2], expected, atol=1e-4)


def test_neighbours_vote_with_similarity_and_mark_padding():
    x = np.array([[1, 0], [0.9, 0.1], [0, 1]], dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = sp.csr_matrix(np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32))
    scorer = NeighbourScorer(neighbours=2).fit(examples_of(None, x, y))
    scores = scorer.score(Batch(["q"], np.array([[1, 0]], np.float32)), np.array([[0, 1, -1]]))
    # Mean over the 2 neighbours of similarity × has-label: both nearest examples carry label 0.
    assert scores[0, 0] == pytest.approx((1 + x[1, 0]) / 2) and scores[0, 1] == 0.0 and scores[0, 2] == -np.inf


def neighbours_of(classifier: Classifier) -> NeighbourScorer:
    return classifier.model_.scoring.scorers["neighbours"]


def test_neighbours_of_many_examples_come_from_a_graph_that_grows_and_survives_saving(tmp_path):
    x = HashingEncoder().encode(TEXTS)
    identity = sp.identity(len(x), format="csr")
    assert isinstance(NeighbourScorer(graph_from=None).fit(examples_of(None, x, identity)).index_, LabelIndex)
    classifier = fitted(supervised=DENSE)
    model = classifier.model_
    graph = NeighbourScorer(graph_from=100).fit(examples_of(None, x, LABELS.matrix(IDS)))
    scorers = {**model.scoring.scorers, "neighbours": graph}
    classifier.model_ = replace(model, scoring=replace(model.scoring, scorers=scorers))
    assert isinstance(neighbours_of(classifier).index_, GraphIndex)
    assert top1(classifier) == ["a", "b", "c"]
    classifier.update([f"comet galaxy telescope {w}" for w in FILLER], [["d"]] * len(FILLER))
    assert len(neighbours_of(classifier).index_) == len(TEXTS) + len(FILLER)
    assert len(graph.index_) == len(TEXTS)  # the model before the update is unchanged
    classifier.save(tmp_path / "model")
    loaded = Classifier.load(tmp_path / "model", encoder=HashingEncoder())
    assert isinstance(neighbours_of(loaded).index_, GraphIndex)
    (p1, s1), (p2, s2) = classifier.rank(TEST, 4), loaded.rank(TEST, 4)
    assert (p1 == p2).all() and np.allclose(s1, s2)


def test_neighbours_keep_each_examples_id_and_opening_words_through_updates_saving_and_old_folders(tmp_path):
    x = HashingEncoder().encode(TEXTS[:4])
    long = "word  " * 100
    data = replace(examples_of(None, x[:3], LABELS.matrix(IDS[:3])), texts=["a b", long, "c"], ids=["x1", "x2", None])
    scorer = NeighbourScorer(snippet_chars=20).fit(data)
    assert scorer.example_ids_ == ["x1", "x2", None]
    assert scorer.snippets_[0] == "a b" and len(scorer.snippets_[1]) == 20 and scorer.snippets_[1].endswith("…")
    grown = scorer.update(replace(data, texts=["d"], ids=(), vectors=x[3:], targets=LABELS.matrix(IDS[3:4])))
    assert grown.example_ids_ == ["x1", "x2", None, None] and grown.snippets_[3] == "d"
    assert len(scorer.example_ids_) == 3  # the scorer before the update is unchanged
    grown.save(tmp_path)
    loaded = NeighbourScorer.load(tmp_path, LABELS)
    assert (loaded.example_ids_, loaded.snippets_) == (grown.example_ids_, grown.snippets_)
    assert NeighbourScorer(snippet_chars=0).fit(data).snippets_ == [None] * 3  # texts that must not be kept
    state = json.loads((tmp_path / "state.json").read_text())
    del state["example_ids"], state["snippets"]  # as a model saved before examples were described
    (tmp_path / "state.json").write_text(json.dumps(state))
    old = NeighbourScorer.load(tmp_path, LABELS)
    assert old.example_ids_ == old.snippets_ == [None] * 4


def test_fusion_decision_is_the_logistic_model_on_the_full_feature_rows():
    rng = np.random.default_rng(0)
    shape = (40, 6)
    scores = {name: rng.normal(size=shape).astype(np.float32) for name in ("zero_shot", "prototypes", "linear")}
    scores["zero_shot"][:, -1] = -np.inf  # padding
    counts = rng.choice([0, 1, 3, 7, 50], size=shape).astype(np.float32)
    truth = scores["prototypes"] + rng.normal(size=shape) > 1
    fusion = Fusion().fit(scores, counts, truth)
    features = (fusion._features(scores, counts) - fusion.mean_) / fusion.scale_
    expected = (features @ fusion.coef_ + fusion.intercept_).reshape(shape)
    got = fusion.decision(scores, counts)
    np.testing.assert_allclose(got[:, :-1], expected[:, :-1], rtol=1e-5, atol=1e-5)
    assert np.isneginf(got[:, -1]).all()


def test_fusion_follows_the_documents_that_weigh_more():
    """Half the held-out documents are right by scorer a, half by b: weighting one half decides whom to trust."""
    rng = np.random.default_rng(0)
    shape = (200, 5)
    a, b = rng.normal(size=shape).astype(np.float32), rng.normal(size=shape).astype(np.float32)
    first = np.arange(shape[0]) < shape[0] // 2
    truth = np.where(first[:, None], a > 1, b > 1)
    scores, counts = {"zero_shot": a, "prototypes": b}, np.ones(shape, np.float32)
    towards_a = Fusion().fit(scores, counts, truth, np.where(first, 10.0, 0.1))
    towards_b = Fusion().fit(scores, counts, truth, np.where(first, 0.1, 10.0))
    weight = {name: towards_a._band_weights()[0][1, j] for j, name in enumerate(towards_a.scorers_)}
    assert weight["zero_shot"] > weight["prototypes"]
    weight = {name: towards_b._band_weights()[0][1, j] for j, name in enumerate(towards_b.scorers_)}
    assert weight["prototypes"] > weight["zero_shot"]


def _runner_up_is_right(n_docs: int, seed: int = 0):
    """Held-out pairs where the gold label is the one scorer `a` ranks second: a rule on ranks that no weighting
    of the scores expresses (the best match is never the label, as when a document names a narrower label)."""
    rng = np.random.default_rng(seed)
    shape = (n_docs, 12)
    a = rng.normal(size=shape).astype(np.float32)
    b = rng.normal(size=shape).astype(np.float32)
    truth = np.zeros(shape, bool)
    truth[np.arange(n_docs), np.argsort(-a, axis=1)[:, 1]] = True
    zero_shot = a + 0.1 * b
    zero_shot[:, -1] = a[:, -1] = b[:, -1] = -np.inf  # padding
    truth[:, -1] = False
    return {"zero_shot": zero_shot, "prototypes": a, "sparse": b}, np.full(shape, 4, np.float32), truth


def test_boosted_fusion_learns_what_ranks_say_and_the_logistic_fusion_cannot():
    scores, counts, truth = _runner_up_is_right(600)
    test_scores, test_counts, test_truth = _runner_up_is_right(300, seed=1)
    boosted = BoostedFusion().fit(scores, counts, truth)
    linear = Fusion().fit(scores, counts, truth)
    logits = boosted.decision(test_scores, test_counts)
    assert top1_hits(logits, test_truth) / 300 > 0.75 > 0.4 > top1_hits(linear.decision(test_scores, test_counts),
                                                                      test_truth) / 300
    assert np.isneginf(logits[:, -1]).all()  # padding
    assert (np.isfinite(logits).sum(axis=1) >= BOOSTED_TOP).all()  # every scorer's best are scored


def test_pairs_the_trees_do_not_score_are_ordered_by_a_logistic_fusion_below_the_scored_ones():
    """Gold labels ranked 6th to 8th by one scorer, a zero-shot score that ranks them last: the trees score only
    each scorer's best BOOSTED_TOP, so most gold labels are in the tail, which a label set of high coverage
    reaches; ordered by the zero-shot score they would come last there."""
    rng = np.random.default_rng(0)
    shape = (800, 40)
    prototypes = rng.normal(size=shape).astype(np.float32)
    scores = {"zero_shot": -prototypes + 0.1 * rng.normal(size=shape).astype(np.float32),
              "prototypes": prototypes, "sparse": rng.normal(size=shape).astype(np.float32)}
    rank = np.argsort(np.argsort(-prototypes, axis=1), axis=1)
    truth = (rank >= BOOSTED_TOP) & (rank < BOOSTED_TOP + 3)
    counts = np.full(shape, 4, np.float32)
    boosted = BoostedFusion(rounds=20).fit(scores, counts, truth)
    logits = boosted.decision(scores, counts)
    _, scored = _rank_features(scores, counts, boosted.scorers_, boosted.top)
    assert logits[~scored].max() < logits[scored].min()
    tail_truth = truth & ~scored
    assert tail_truth.sum() > truth.sum() / 2

    def mean_tail_rank(values):  # 0: first among the document's unscored pairs, 1: last
        ranks = np.argsort(np.argsort(-np.where(scored, np.inf, values), axis=1), axis=1) - scored.sum(1, keepdims=True)
        return (ranks / (~scored).sum(1, keepdims=True))[tail_truth].mean()

    assert mean_tail_rank(logits) < 0.25
    boosted.tail_ = None  # a folder saved before the tail model: zero-shot order, here the worst
    assert mean_tail_rank(boosted.decision(scores, counts)) > 0.75


def test_fit_fusion_chooses_trees_on_evidence_and_only_from_enough_documents():
    scores, counts, truth = _runner_up_is_right(BOOSTED_MIN_DOCS)
    assert isinstance(fit_fusion(scores, counts, truth), BoostedFusion)
    few = {name: values[:300] for name, values in scores.items()}
    assert not isinstance(fit_fusion(few, counts[:300], truth[:300]), BoostedFusion)
    # Where the best score is right as it is, trees cannot do better and are not chosen.
    best = np.random.default_rng(0).normal(size=truth.shape).astype(np.float32)
    plain = {"zero_shot": best, "prototypes": best.copy()}
    right = best == best.max(axis=1, keepdims=True)
    assert not isinstance(fit_fusion(plain, counts, right), BoostedFusion)


def test_a_model_with_boosted_fusion_ranks_the_same_after_loading(tmp_path):
    classifier = fitted(supervised=DENSE)
    model = classifier.model_
    batch = model._batch(TEXTS)
    candidates, scores = model.scoring.fusion_inputs(batch, model._adaptation(batch))
    truth = np.array([[candidate >= 0 and classifier.labels.ids[candidate] in ids for candidate in row]
                      for row, ids in zip(candidates, IDS)])
    fusion = BoostedFusion(rounds=20).fit(scores, model.counts[np.maximum(candidates, 0)], truth)
    classifier.model_ = replace(model, fusion=fusion)
    classifier.save(tmp_path / "model")
    loaded = Classifier.load(tmp_path / "model", encoder=HashingEncoder())
    assert isinstance(loaded.model_.fusion, BoostedFusion)
    (p1, s1), (p2, s2) = classifier.rank(TEST, 3), loaded.rank(TEST, 3)
    assert (p1 == p2).all() and np.allclose(s1, s2)
    assert top1(loaded) == ["a", "b", "c"]
    loaded.add_labels([Label("e", "comet galaxy telescope")])  # a label the trees never saw, without examples
    loaded.update([f"tomato basil garlic {w}" for w in FILLER[:3]], [["a"]] * 3)
    assert top1(loaded) == ["a", "b", "c"]
    assert "e" in {s.label_id for row in loaded.suggest(["comet galaxy telescope"], k=3) for s in row}


def test_unknown_example_labels_are_an_error():
    with pytest.raises(InputError, match="not in the label set"):
        Classifier(LABELS, encoder=HashingEncoder(), context="").fit(["text"], [["zzz"]])


def test_save_and_load_give_the_same_rankings(tmp_path):
    classifier = fitted(supervised=DENSE)
    classifier.fit(TEXTS, IDS, unlabeled=TEST + TEXTS)
    classifier.save(tmp_path / "model")
    loaded = Classifier.load(tmp_path / "model", encoder=HashingEncoder())
    for (p1, s1), (p2, s2) in [(classifier.rank(TEST, 4), loaded.rank(TEST, 4))]:
        assert (p1 == p2).all() and np.allclose(s1, s2)
    assert loaded.labels.fingerprint == LABELS.fingerprint


def test_load_refuses_another_label_set_or_encoder(tmp_path):
    fitted(supervised=DENSE).save(tmp_path / "model")
    other = LabelSet([Label("x", "x")])
    with pytest.raises(ModelError, match="another label set"):
        Classifier.load(tmp_path / "model", encoder=HashingEncoder(), labels=other)

    class OtherEncoder(HashingEncoder):
        identity = "something-else"

    with pytest.raises(ModelError, match="trained with encoder"):
        Classifier.load(tmp_path / "model", encoder=OtherEncoder())


def test_load_refuses_a_damaged_model(tmp_path):
    fitted(supervised=DENSE).save(tmp_path / "model")
    arrays = next((tmp_path / "model" / "objects").glob("scorer-prototypes.*")) / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:-10])
    with pytest.raises(ModelError, match="truncated"):
        Classifier.load(tmp_path / "model", encoder=HashingEncoder())


def test_new_labels_are_suggestible_at_once_and_survive_saving(tmp_path):
    classifier = fitted(supervised=DENSE)
    classifier.add_labels([Label("e", "volcano lava eruption")])
    assert top1(classifier, ["the volcano eruption and its lava"]) == ["e"]
    classifier.save(tmp_path / "model")
    loaded = Classifier.load(tmp_path / "model", encoder=HashingEncoder())
    assert top1(loaded, ["the volcano eruption and its lava"]) == ["e"]


def test_update_folds_in_new_examples_and_reports_them():
    classifier = fitted(supervised=DENSE)
    before = classifier.model_.counts.copy()
    query = ["a comet through the telescope"]
    score_of_d = lambda: {s.label_id: s.score for s in classifier.suggest(query, k=4)[0]}["d"]
    old = score_of_d()
    report = classifier.update([f"comet galaxy telescope {w}" for w in FILLER], [["d"]] * len(FILLER))
    assert report == {"documents": 12, "labels": 1, "new_to_examples": 1}
    assert classifier.model_.counts[3] == before[3] + 12
    assert classifier.model_.documents == len(TEXTS) + 12
    assert score_of_d() > old
    assert top1(classifier, query) == ["d"]


def test_few_examples_fall_back_to_prototypes_alone():
    classifier = Classifier(LABELS, encoder=HashingEncoder(), context="", supervised=DENSE).fit(TEXTS[:3], IDS[:3])
    scorers = classifier.model_.scoring.scorers
    assert classifier.model_.fusion is None and "linear" not in scorers
    assert "prototypes" in scorers


def test_all_four_scorers_fuse_and_the_sparse_model_survives_saving(tmp_path):
    classifier = fitted()  # the default: prototypes, linear, neighbours and the sparse XMC model
    assert "sparse" in classifier.model_.scoring.scorers and "sparse" in classifier.model_.fusion.scorers_
    assert top1(classifier) == ["a", "b", "c"]
    classifier.save(tmp_path / "model")
    loaded = Classifier.load(tmp_path / "model", encoder=HashingEncoder())
    (p1, s1), (p2, s2) = classifier.rank(TEST, 4), loaded.rank(TEST, 4)
    assert (p1 == p2).all() and np.allclose(s1, s2)


def test_examples_whose_labels_never_reach_the_candidates_leave_prototypes_alone(monkeypatch):
    import taxonomist.record as record_module

    monkeypatch.setattr(record_module, "csr_lookup", lambda matrix, candidates: 0.0 * candidates)
    classifier = fitted(supervised=DENSE)  # every held-out pair looks wrong: nothing to learn weights from
    assert classifier.model_.fusion is None and "linear" in classifier.model_.scoring.scorers


def test_held_out_scores_adapt_as_ranking_will_even_when_the_batch_does_not(monkeypatch):
    """The CLI builds adapt=False and adapts a loaded model to its corpus; the fusion must learn from
    held-out scores adapted the same way — to as many texts as the model will adapt to — and not from an
    earlier fit's pool."""
    pools = []
    real = Scoring.adapt

    def recording(self, pool):
        in_fold = self.counts is not None and self.counts.sum() < len(TEXTS)  # a held-out fold's scorers
        pools.append((len(pool.texts), in_fold))
        return real(self, pool)

    monkeypatch.setattr(Scoring, "adapt", recording)
    classifier = Classifier(LABELS, encoder=HashingEncoder(), context="", supervised=DENSE, adapt=False)
    classifier.fit(TEXTS, IDS, unlabeled=TEST)  # pool_ from the first fit must not serve the second
    first = [n for n, with_learners in pools if with_learners]
    pools.clear()
    classifier.fit(TEXTS, IDS)
    second = [n for n, with_learners in pools if with_learners]
    # 3 unlabeled texts: each fold adapts to itself alone (its ~22 documents); without a pool, to every example.
    assert first and all(len(TEST) < n < len(TEXTS) // 2 for n in first)
    assert second and all(n == len(TEXTS) for n in second)


def test_document_ids_must_be_one_per_text():
    with pytest.raises(InputError, match="one document id per text"):
        Trainer(Config.from_options(context="", supervised=DENSE)).fit(LABELS, HashingEncoder(), TEXTS, IDS,
                                                                       ids=["only-one"])
    with pytest.raises(InputError, match="one document id per text"):
        fitted(supervised=DENSE).model_.with_examples(TEXTS[:2], IDS[:2], ids=["only-one"])
