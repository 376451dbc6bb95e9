"""Classifier end to end on the hashing encoder: rankings that can be checked by hand."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
from conftest import HashingEncoder

from taxonomist.classifier import Classifier, Suggestion
from taxonomist.labels import Label, LabelSet

TEMPERATURE = 0.05  # Classifier's default

FLAT = LabelSet(
    [
        Label("apple", "apple", description="a red fruit that grows on trees"),
        Label("banana", "banana", description="a long yellow tropical fruit"),
        Label("car", "car", description="a motor vehicle with four wheels"),
        Label("piano", "piano", description="a musical keyboard instrument"),
        Label("python", "python", description="a programming language for software"),
    ]
)
DOCS = [
    "I ate a red apple picked from the apple trees",
    "the car needs new wheels before the motor trip",
    "she plays piano music on a keyboard instrument",
    "write software in the python programming language",
]
TOPICS = {
    "apple": "red apple fruit from trees",
    "banana": "yellow banana tropical fruit",
    "car": "car motor vehicle wheels",
    "piano": "piano keyboard music instrument",
    "python": "python programming software code",
}
EXTRA = ["today", "again", "here", "quickly", "slowly", "now", "later", "often", "really", "maybe", "still", "soon"]
# 60 docs (12 per label on average: self-training switches on), some labels far commoner than others: the label
# prior has shares to learn that both halves of the pool agree on (split-half reliability 0.90)
SHARES = {"apple": 30, "banana": 14, "car": 8, "piano": 5, "python": 3}
POOL = [f"{TOPICS[label]} {EXTRA[i % len(EXTRA)]} {i}" for label, n in SHARES.items() for i in range(n)]

TREE = LabelSet(
    [
        Label("animal", "animal"),
        Label("dog", "dog", parents=("animal",)),
        Label("cat", "cat", parents=("animal",)),
        Label("vehicle", "vehicle"),
        Label("truck", "truck", parents=("vehicle",)),
        Label("bicycle", "bicycle", parents=("vehicle",)),
    ]
)
ANIMAL, DOG, CAT = 0, 1, 2
# Fifty documents: the least a pool is adapted to (AdaptConfig.min_pool).
ANIMAL_POOL = [f"the {a} {x} {n}" for a in ("dog", "cat") for x in ("runs", "sleeps", "barks", "eats food", "plays")
               for n in ("now", "again", "today", "here", "often")]


def plain_scores(labels: LabelSet, texts: list[str]) -> np.ndarray:
    """Mean cosine over the name and description views, by hand."""
    encoder = HashingEncoder()
    docs = encoder.encode(texts)
    names = encoder.encode(labels.names)
    described = encoder.encode([f"{l.name}: {l.description}" if l.description else l.name for l in labels])
    return (docs @ names.T + docs @ described.T) / 2


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_suggest_returns_sorted_suggestions_capped_by_the_label_count(hashing_encoder) -> None:
    suggestions = Classifier(FLAT).fit().suggest(DOCS, k=10)
    assert len(suggestions) == len(DOCS)
    for row, best in zip(suggestions, ["apple", "car", "piano", "python"]):
        assert len(row) == len(FLAT)
        assert all(isinstance(s, Suggestion) for s in row)
        assert [s.score for s in row] == sorted((s.score for s in row), reverse=True)
        assert row[0].label_id == best and row[0].name == best
        assert {s.label_id for s in row} == set(FLAT.ids)
    assert len(Classifier(FLAT).fit().suggest(DOCS, k=2)[0]) == 2


def test_without_adaptation_the_ranking_is_plain_cosine(hashing_encoder) -> None:
    expected = plain_scores(FLAT, DOCS)
    positions, scores = Classifier(FLAT, adapt=False, mention_weight=0.0).fit().rank(DOCS, k=len(FLAT))
    assert all(sorted(row) == list(range(len(FLAT))) for row in positions.tolist())
    ranked = np.take_along_axis(expected, positions, axis=1)
    assert np.all(np.diff(ranked, axis=1) <= 1e-6), "best cosine first (ties in any order)"
    posterior = softmax(expected / TEMPERATURE)
    np.testing.assert_allclose(scores, np.take_along_axis(posterior, positions, axis=1), atol=1e-5)


def test_a_label_named_in_the_text_gains_the_mention_weight_on_its_similarity(hashing_encoder) -> None:
    """Without examples the lexical scorer's mention score (at most 1) times mention_weight is added to the
    similarity the posteriors come from; with examples the fusion weighs mentions instead."""
    from taxonomist.scorers.base import Batch

    texts = ["apple pie with a side of car parts", "nothing named here at all"]
    plain = Classifier(FLAT, adapt=False, mention_weight=0.0).fit().model_
    named = Classifier(FLAT, adapt=False, mention_weight=0.3).fit().model_
    batch = Batch(texts, plain.encode(texts))
    candidates, before = plain.scoring.candidates(batch)
    again, after = named.scoring.candidates(batch)
    assert np.array_equal(candidates, again)
    found = np.clip(named.scoring.scorers["lexical"].score(batch, candidates), 0, 1)
    assert (found[0] > 0).sum() == 2 and found[1].max() == 0  # apple and car named in the first text only
    np.testing.assert_allclose(after, before + 0.3 * found, atol=1e-6)
    broad = Classifier(TREE, hierarchy="broad", adapt=False).fit().rank(["dog"], k=2)[0][0].tolist()
    assert broad == [DOG, ANIMAL]  # the label named first, then the parent its similarity lifts
    trained = Classifier(FLAT, mention_weight=0.3).fit(DOCS * 30, [[l] for l in ("apple", "car", "piano", "python")] * 30).model_
    assert trained.counts is not None
    c, with_counts = trained.scoring.candidates(batch)
    np.testing.assert_allclose(with_counts, trained.scoring.retriever.score(batch, c), atol=1e-6)  # nothing added


def test_static_encoders_skip_self_training() -> None:
    """A static encoder's pseudo-labels are too noisy to self-train on; priors and neighbours still apply."""
    encoder = HashingEncoder()
    encoder.static = True
    pool = Classifier(FLAT, encoder=encoder).fit(unlabeled=POOL).model_.adaptation
    assert pool.self_training is None and pool.prior is not None and pool.propagation is not None


def test_a_pool_whose_halves_disagree_on_label_shares_gets_no_label_prior(hashing_encoder) -> None:
    even = [f"{text} {word}" for text in TOPICS.values() for word in EXTRA]  # 12 of each: no share to learn
    model = Classifier(FLAT).fit(unlabeled=even).model_
    decision = next(d for d in model.decisions if d.step == "label prior")
    assert model.adaptation.prior is None and decision.choice == "off"
    assert "split-half reliability" in decision.why and "too few documents" in decision.why
    assert Classifier(FLAT).fit(unlabeled=POOL).model_.adaptation.prior is not None  # shares far apart: kept


def test_fit_on_unlabeled_then_rank_is_deterministic(hashing_encoder) -> None:
    first = Classifier(FLAT).fit(unlabeled=POOL)
    pool = first.model_.adaptation
    assert pool is not None and pool.self_training is not None
    assert pool.prior is not None and pool.propagation is not None
    positions, scores = first.rank(DOCS, k=3)
    again_positions, again_scores = first.rank(DOCS, k=3)
    refit_positions, refit_scores = Classifier(FLAT).fit(unlabeled=POOL).rank(DOCS, k=3)
    np.testing.assert_array_equal(positions, again_positions)
    np.testing.assert_array_equal(positions, refit_positions)
    np.testing.assert_array_equal(scores, again_scores)
    np.testing.assert_array_equal(scores, refit_scores)
    np.testing.assert_array_equal(positions[:, 0], [FLAT.index_of(x) for x in ("apple", "car", "piano", "python")])
    assert np.all((scores >= 0) & (scores <= 1))


def test_documents_of_the_pool_reuse_its_posteriors_with_the_same_result(hashing_encoder) -> None:
    classifier = Classifier(FLAT).fit(unlabeled=POOL)
    mixed = [POOL[0], DOCS[1], POOL[7], DOCS[3], POOL[0]]  # in the pool, not, and a repeat
    reused = classifier.rank(mixed, k=3)
    pool = classifier.model_.adaptation
    in_pool = pool.pool_rows(mixed)
    np.testing.assert_array_equal(in_pool >= 0, [True, False, True, False, True])
    # forget the pool's own posteriors: every document is ranked afresh
    classifier.model_ = replace(classifier.model_, adaptation=replace(pool, rows=None))
    fresh = classifier.rank(mixed, k=3)
    np.testing.assert_array_equal(reused[0], fresh[0])
    np.testing.assert_allclose(reused[1], fresh[1], rtol=1e-6)


def test_update_forgets_the_pool_posteriors_it_made_stale(hashing_encoder) -> None:
    classifier = Classifier(FLAT).fit(DOCS, [["apple"], ["car"], ["piano"], ["python"]], unlabeled=POOL)
    assert classifier.model_.adaptation.rows is not None
    classifier.update(["a yellow banana"], [["banana"]])
    assert classifier.model_.adaptation.rows is None and classifier.model_.adaptation.posteriors is None


@pytest.mark.parametrize("hierarchy", ["broad", "specific", "off"])
def test_hierarchy_modes_on_a_two_level_tree(hashing_encoder, hierarchy: str) -> None:
    # similarity alone (mention_weight 0): "dog" names its label, which would set it above its parent
    positions, scores = Classifier(TREE, hierarchy=hierarchy, adapt=False, mention_weight=0.0).fit().rank(
        ["dog"], k=len(TREE))
    score_of = dict(zip(positions[0].tolist(), scores[0].tolist()))
    if hierarchy == "broad":  # the parent ties with its best child
        assert set(positions[0, :2].tolist()) == {DOG, ANIMAL}
        assert score_of[ANIMAL] == pytest.approx(score_of[DOG])
    elif hierarchy == "specific":  # the parent right after its child
        assert positions[0, :2].tolist() == [DOG, ANIMAL]
        assert score_of[DOG] > score_of[ANIMAL] > 10 * score_of[CAT]
    else:  # the parent scored by its own text only, like any unrelated label
        assert positions[0, 0] == DOG
        assert score_of[ANIMAL] == pytest.approx(score_of[CAT])


def test_broad_lets_the_prior_pick_the_parent_many_documents_reach(hashing_encoder) -> None:
    def top_two(hierarchy: str) -> list[int]:
        # Prior alone: no contexts, no neighbours.
        classifier = Classifier(TREE, hierarchy=hierarchy, context="", propagation_alpha=0.0,
                                mention_weight=0.0).fit(unlabeled=ANIMAL_POOL)
        return classifier.rank(["a dog sleeps"], k=2)[0][0].tolist()

    broad, specific = top_two("broad"), top_two("specific")
    assert broad == [ANIMAL, DOG]
    assert specific == [DOG, ANIMAL]


def test_invalid_hierarchy_value_raises(hashing_encoder) -> None:
    with pytest.raises(ValueError, match="hierarchy"):
        Classifier(TREE, hierarchy="deep").fit()


def test_a_documents_suggestions_do_not_depend_on_its_batch_and_a_small_pool_is_not_adapted_to(hashing_encoder) -> None:
    alone = [Classifier(FLAT).fit().rank([text], k=5) for text in DOCS]
    together = Classifier(FLAT).fit().rank(DOCS, k=5)
    for i, (positions, scores) in enumerate(alone):
        np.testing.assert_array_equal(together[0][i], positions[0])
        np.testing.assert_allclose(together[1][i], scores[0], rtol=1e-6)
    few = Classifier(FLAT).fit(unlabeled=DOCS)  # four documents teach no prior and no neighbours
    assert few.model_.adaptation is None
    assert [d.choice for d in few.model_.decisions if d.step == "adaptation"] == ["off"]
    plain = Classifier(FLAT, adapt=False).fit(unlabeled=POOL)
    assert plain.model_.adaptation is None and plain.model_.decisions[-1].why == "plain similarity asked for"
    assert Classifier(FLAT).fit(unlabeled=POOL).model_.adaptation is not None  # sixty: enough
    adapted = Classifier(FLAT).fit(unlabeled=POOL)  # adapted once, then asked one document at a time, as a server is
    batch = [POOL[3], DOCS[0], POOL[40], DOCS[2]]
    together = adapted.rank(batch, k=5)
    for i, text in enumerate(batch):
        positions, scores = adapted.rank([text], k=5)
        np.testing.assert_array_equal(together[0][i], positions[0])
        np.testing.assert_allclose(together[1][i], scores[0], rtol=1e-5)


def test_neighbours_are_mixed_in_only_where_the_pool_has_more_documents_per_label_than_neighbours(hashing_encoder) -> None:
    """Ten neighbours need eleven documents per label; each step says what it chose."""
    few = Classifier(FLAT).fit(unlabeled=POOL[:50]).model_  # ten documents per label
    steps = {d.step: d for d in few.decisions}
    assert few.adaptation.propagation is None and steps["propagation"].choice == "off"
    assert "10.0 documents per label" in steps["propagation"].why
    assert few.adaptation.prior is not None and steps["label prior"].choice == "on"
    enough = Classifier(FLAT).fit(unlabeled=POOL).model_  # twelve
    assert enough.adaptation.propagation is not None
    assert {d.step: d.choice for d in enough.decisions}["propagation"] == "on"
    plain = Classifier(FLAT).fit(unlabeled=POOL).model_.without_adaptation()
    assert {d.step for d in plain.decisions} & {"label prior", "propagation", "self-training"} == set()


def test_auto_context_goes_to_every_label_or_none_and_only_where_it_does_not_narrow_the_first_labels(
        hashing_encoder) -> None:
    described = Classifier(FLAT).fit(unlabeled=POOL).model_
    context = {d.step: d for d in described.decisions}["context"]
    assert described.contexts == () and context.choice == "off" and "5 of 5 labels are described" in context.why
    bare = LabelSet([Label(label.id, label.name) for label in FLAT])
    model = Classifier(bare).fit(unlabeled=POOL).model_
    context = {d.step: d for d in model.decisions}["context"]
    assert "first labels spread over" in context.why  # the hub check ran on the pool and says what it found
    assert (context.choice == "off") == (model.contexts == ())
    assert {d.step: d.choice for d in Classifier(bare).fit(unlabeled=POOL[:10]).model_.decisions}["context"] == "off"


def test_a_single_label_works(hashing_encoder) -> None:
    one = LabelSet([Label("only", "only label")])
    positions, scores = Classifier(one).fit().rank(["anything at all", "more text"], k=3)
    np.testing.assert_array_equal(positions, [[0, -1, -1], [0, -1, -1]])
    np.testing.assert_allclose(scores[:, 0], 1.0)
    assert Classifier(one).fit().suggest(["x"]) == [[Suggestion("only", "only label", 1.0)]]


@pytest.mark.parametrize(
    "labels",
    [LabelSet([Label("only", "only label")]), LabelSet([Label("apple", "apple"), Label("car", "car")])],
    ids=["one-label", "one-label-wins-everywhere"],
)
def test_self_training_with_a_single_pseudo_label_class(hashing_encoder, labels: LabelSet) -> None:
    pool = [f"apple pie number {word}" for word in EXTRA * 2]
    positions, _ = Classifier(labels).fit(unlabeled=pool).rank(["apple pie"], k=1)
    assert positions[0, 0] == 0


def test_auto_hierarchy_reads_the_examples_then_the_documents_and_says_why(hashing_encoder) -> None:
    from taxonomist.config import Config
    from taxonomist.train import Trainer

    specific = [["dog"], ["cat"], ["truck"]] * 12  # documents carry their most specific label only
    with_parents = [[i, "animal" if i in ("dog", "cat") else "vehicle"] for [i] in specific]
    texts = [f"the {ids[0]} {w}" for ids, w in zip(specific, ["runs", "sleeps", "drives"] * 12)]
    config = Config.from_options(context="", supervised=("prototypes",))
    for label_ids, mode in ((specific, "off"), (with_parents, "broad")):
        model = Trainer(config).fit(TREE, HashingEncoder(), texts, label_ids)
        decision = model.decisions[0]
        assert (decision.step, decision.choice) == ("hierarchy", mode) and "examples" in decision.why
    alone = Trainer(config).fit(TREE, HashingEncoder())
    assert alone.hierarchy_mode == "off" and "no examples, or too few documents" in alone.decisions[0].why
    flat = Trainer(config).fit(FLAT, HashingEncoder(), unlabeled=POOL)
    assert flat.decisions[0].why == "the label set is flat"
    asked = Trainer(Config.from_options(context="", hierarchy="broad")).fit(TREE, HashingEncoder())
    assert asked.hierarchy_mode == "broad" and asked.decisions[0].why == "asked for"


def test_auto_hierarchy_refuses_broad_when_it_would_collapse_the_documents_onto_the_parents(hashing_encoder) -> None:
    from taxonomist.config import Config
    from taxonomist.train import Trainer

    kinds = {"animal": ("dog", "cat", "horse", "goat", "sheep", "mouse", "owl", "frog"),
             "vehicle": ("truck", "bicycle", "tram", "ferry", "van", "taxi", "scooter", "canoe")}
    tree = LabelSet([Label(p, p) for p in kinds] + [Label(c, c, parents=(p,)) for p, cs in kinds.items() for c in cs])
    # documents about one specific animal or vehicle each: "broad" would file them all under the two parents
    pool = [f"the {c} {x}" for cs in kinds.values() for c in cs for x in ("runs", "sleeps", "eats", "rests")]
    model = Trainer(Config.from_options(context="")).fit(tree, HashingEncoder(), unlabeled=pool)
    assert model.hierarchy_mode == "off", model.decisions
    broad = int(re.search(r"with 'broad' the documents' first labels spread over (\d+) labels", model.decisions[0].why)[1])
    assert broad <= 3, model.decisions[0].why  # the two parents, where 16 children share the documents
