"""Zero-shot scorers on tiny hand-made inputs whose right answer is known."""

from __future__ import annotations

import itertools
import string
from collections.abc import Sequence

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import HashingEncoder

from taxonomist.context import domain_words
from taxonomist.labels import Label, LabelSet
from taxonomist.adapt.hierarchy import Hierarchy
from taxonomist.adapt.prior import LabelPrior
from taxonomist.adapt.propagation import Propagation
from taxonomist.adapt.self_training import FLOOR, SelfTraining
from taxonomist.scorers import Batch, FitInput, gather
from taxonomist.scorers.label_text import LabelTextScorer, label_variants
from taxonomist.scorers.lexical import LexicalScorer


class RecordingEncoder(HashingEncoder):
    """The hashing encoder, remembering every text it was asked to embed."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        self.texts += list(texts)
        return super().encode(texts)


def batch_of(encoder: HashingEncoder, texts: list[str]) -> Batch:
    return Batch(texts, encoder.encode(texts))


def label_text(labels: LabelSet, encoder: HashingEncoder, views: tuple[str, ...] = ("description", "path", "aliases"),
               contexts: tuple[str, ...] = ()) -> LabelTextScorer:
    return LabelTextScorer(views).fit(FitInput(labels=labels, encoder=encoder, contexts=contexts))


def test_gather_fills_padding() -> None:
    out = gather(np.array([10.0, 20.0, 30.0]), np.array([[2, -1, 0]]), fill=-5.0)
    np.testing.assert_array_equal(out, [[30.0, -5.0, 10.0]])
    assert out.dtype == np.float32


# ---------------------------------------------------------------- prior
def full_shortlist(best: np.ndarray, n_labels: int, high: float = 0.9, low: float = 0.5):
    """Every label a candidate for every document; `best[i]` clearly wins document i."""
    candidates = np.tile(np.arange(n_labels), (len(best), 1))
    sims = np.full(candidates.shape, low, dtype=np.float32)
    sims[np.arange(len(best)), best] = high
    return candidates, sims


def test_prior_of_the_label_most_documents_prefer_ends_largest() -> None:
    best = np.array([0] * 90 + [1, 2, 3, 4] * 2 + [1, 2])  # label 0 wins 90 of 100 documents
    prior = LabelPrior(iterations=3).fit(*full_shortlist(best, 5), n_labels=5)
    assert int(np.argmax(prior.log_prior_)) == 0
    assert prior.log_prior_[0] > prior.log_prior_[1:].max() + 1.0
    assert np.exp(prior.log_prior_.astype(np.float64)).sum() == pytest.approx(1.0, abs=1e-5)


def test_dirichlet_pseudo_count_keeps_a_tiny_pool_near_uniform() -> None:
    def spread(n_docs: int) -> float:
        prior = LabelPrior().fit(*full_shortlist(np.zeros(n_docs, dtype=int), 10), n_labels=10)
        return float(np.exp(prior.log_prior_.max() - prior.log_prior_.min()))

    assert spread(3) < 5  # (3 + 1) / (0 + 1) at most
    assert spread(3000) > 100


def test_split_half_reliability_tells_label_shares_from_sampling_noise() -> None:
    rng = np.random.default_rng(0)
    zipf = 1.0 / np.arange(1, 41)
    many = rng.choice(40, size=4000, p=zipf / zipf.sum())  # 100 documents per label, shares from 1/1 to 1/40
    few = rng.choice(40, size=80)  # 2 documents per label, every share alike: what differs is noise
    reliability = {name: LabelPrior().split_half_reliability(*full_shortlist(best, 40), n_labels=40)
                   for name, best in (("many", many), ("few", few))}
    assert reliability["many"] > 0.95
    assert reliability["few"] < 0.5
    assert LabelPrior().split_half_reliability(*full_shortlist(np.zeros(2, dtype=int), 40), n_labels=40) <= 1.0


def test_prior_ignores_padding_and_scores_it_minus_inf() -> None:
    candidates = np.array([[0, 1, -1], [0, -1, -1]])
    sims = np.array([[0.9, 0.1, -np.inf], [0.8, -np.inf, -np.inf]], dtype=np.float32)
    prior = LabelPrior().fit(candidates, sims, n_labels=3)
    assert prior.log_prior_[0] > prior.log_prior_[1] > prior.log_prior_[2]
    out = prior.logits(candidates)
    assert np.isneginf(out[0, 2]) and np.isneginf(out[1, 1:]).all()


@pytest.mark.parametrize("settings", [dict(iterations=0), dict(strength=0.0)])
def test_prior_with_no_iterations_or_no_strength_is_neutral(settings: dict) -> None:
    candidates, sims = full_shortlist(np.zeros(50, dtype=int), 6)
    prior = LabelPrior(**settings).fit(candidates, sims, n_labels=6)
    out = prior.logits(np.array([[5, 0, 3, 1]]))
    assert np.ptp(out) == pytest.approx(0.0, abs=1e-6)  # same for every label: the ranking is untouched


# ---------------------------------------------------------------- hierarchy
ANIMAL, MAMMAL, PET, DOG, CAT, PLANT, OAK = range(7)


@pytest.fixture
def tree() -> LabelSet:
    """animal > mammal > {dog, cat}; pet > {dog, cat} (poly-hierarchy); plant > oak."""
    return LabelSet(
        [
            Label("animal", "animal"),
            Label("mammal", "mammal", parents=("animal",)),
            Label("pet", "pet"),
            Label("dog", "dog", parents=("mammal", "pet")),
            Label("cat", "cat", parents=("mammal", "pet")),
            Label("plant", "plant"),
            Label("oak", "oak", parents=("plant",)),
        ]
    )


def row_set(row: np.ndarray) -> list[int]:
    return sorted(int(x) for x in row if x >= 0)


def test_expand_adds_parents_and_grandparents_once(tree: LabelSet) -> None:
    scorer = Hierarchy().fit(tree)
    out = scorer.expand(np.array([[DOG, CAT, -1], [OAK, -1, -1], [-1, -1, -1]]))
    valid = [row[row >= 0] for row in out]
    assert all(len(v) == len(set(v.tolist())) for v in valid), "no label twice in a row"
    assert row_set(out[0]) == sorted([DOG, CAT, MAMMAL, PET, ANIMAL])
    assert row_set(out[1]) == sorted([OAK, PLANT])
    assert row_set(out[2]) == []


def test_expand_respects_levels_and_top(tree: LabelSet) -> None:
    one_level = Hierarchy(expand_levels=1).fit(tree)
    assert row_set(one_level.expand(np.array([[DOG]]))[0]) == sorted([DOG, MAMMAL, PET])
    top_one = Hierarchy(expand_top=1).fit(tree)
    assert row_set(top_one.expand(np.array([[DOG, OAK]]))[0]) == sorted([DOG, OAK, MAMMAL, PET, ANIMAL])


def test_expand_on_a_flat_label_set_changes_nothing() -> None:
    flat = LabelSet([Label("a", "a"), Label("b", "b")])
    candidates = np.array([[1, 0], [0, -1]])
    np.testing.assert_array_equal(Hierarchy().fit(flat).expand(candidates), candidates)


def test_score_discount_one_lifts_parent_to_its_best_child(tree: LabelSet) -> None:
    candidates = np.array([[DOG, CAT, MAMMAL, PET, ANIMAL, -1]])
    sims = np.array([[0.8, 0.3, 0.2, 0.1, 0.05, -np.inf]], dtype=np.float32)
    out = Hierarchy(discount=1.0).fit(tree).lift(candidates, sims)
    assert out[0, 2] >= out[0, 0] and out[0, 2] == pytest.approx(0.8)  # mammal
    assert out[0, 3] == pytest.approx(0.8)  # pet: a child with two parents lifts both
    assert out[0, 4] == pytest.approx(0.2)  # levels=1: animal sees mammal's own score only
    np.testing.assert_array_equal(out[0, :2], sims[0, :2])  # children unchanged
    assert np.isneginf(out[0, 5])
    assert sims[0, 2] == np.float32(0.2), "the input is not modified"


def test_score_discount_keeps_parent_right_below_its_child(tree: LabelSet) -> None:
    candidates = np.array([[DOG, CAT, MAMMAL, PET, OAK]])
    sims = np.array([[0.8, 0.3, 0.2, 0.1, 0.5]], dtype=np.float32)
    out = Hierarchy(discount=0.9).fit(tree).lift(candidates, sims)
    assert out[0, 2] == pytest.approx(0.72) and out[0, 3] == pytest.approx(0.72)
    assert out[0, 1] < out[0, 2] < out[0, 0]


def test_score_more_levels_reach_the_grandparent(tree: LabelSet) -> None:
    candidates = np.array([[DOG, MAMMAL, ANIMAL]])
    sims = np.array([[0.8, 0.2, 0.05]], dtype=np.float32)
    out = Hierarchy(discount=0.9, levels=2).fit(tree).lift(candidates, sims)
    np.testing.assert_allclose(out[0], [0.8, 0.72, 0.648], rtol=1e-6)


def test_score_parent_own_score_kept_when_higher(tree: LabelSet) -> None:
    candidates = np.array([[DOG, MAMMAL], [MAMMAL, CAT]])  # rows are independent
    sims = np.array([[0.3, 0.6], [0.1, 0.9]], dtype=np.float32)
    out = Hierarchy(discount=1.0).fit(tree).lift(candidates, sims)
    np.testing.assert_allclose(out, [[0.3, 0.6], [0.9, 0.9]], rtol=1e-6)


def test_score_discount_keeps_parent_below_child_with_negative_similarities(tree: LabelSet) -> None:
    candidates = np.array([[DOG, MAMMAL]])
    sims = np.array([[-0.5, -0.9]], dtype=np.float32)
    out = Hierarchy(discount=0.9).fit(tree).lift(candidates, sims)
    assert out[0, 1] < out[0, 0]


# ---------------------------------------------------------------- propagation
def test_neighbours_exclude_the_document_itself() -> None:
    vectors = np.eye(4, dtype=np.float32)
    vectors[1] = [0.8, 0.6, 0, 0]
    scorer = Propagation(neighbours=1).fit(vectors, sp.identity(4, format="csr"))
    weights = scorer.neighbour_weights(vectors).toarray()
    np.testing.assert_array_equal(np.diag(weights), 0)
    np.testing.assert_allclose(weights.sum(axis=1), 1)
    assert weights[0, 1] == 1 and weights[1, 0] == 1  # each other's nearest, not themselves


def test_document_moves_toward_its_neighbours_label() -> None:
    rng = np.random.default_rng(3)
    near = np.array([1, 0, 0, 0], np.float32) + 0.1 * rng.normal(size=(3, 4)).astype(np.float32)
    far = np.array([0, 0, 0, 1], np.float32) + 0.1 * rng.normal(size=(3, 4)).astype(np.float32)
    pool = np.vstack([near, far])
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    # Labels: 0 = A, 1 = B. The near neighbours prefer B, the far ones A.
    posteriors = sp.csr_matrix(np.array([[0, 1]] * 3 + [[1, 0]] * 3, dtype=np.float32))
    query = np.array([[1, 0, 0, 0]], np.float32)
    own = sp.csr_matrix(np.array([[0.9, 0.1]], np.float32))

    moved = Propagation(neighbours=3, alpha=0.5).fit(pool, posteriors).smooth(query, own).toarray()
    np.testing.assert_allclose(moved, [[0.45, 0.55]], rtol=1e-5)
    still = Propagation(neighbours=3, alpha=0.0).fit(pool, posteriors).smooth(query, own).toarray()
    np.testing.assert_allclose(still, own.toarray())


# ---------------------------------------------------------------- self-training
def test_self_training_learns_two_clusters_and_floors_unseen_labels() -> None:
    rng = np.random.default_rng(0)
    a = np.array([1, 0, 0], np.float32) + 0.1 * rng.normal(size=(20, 3)).astype(np.float32)
    b = np.array([0, 1, 0], np.float32) + 0.1 * rng.normal(size=(20, 3)).astype(np.float32)
    scorer = SelfTraining().fit(np.vstack([a, b]), np.array([2] * 20 + [4] * 20), n_labels=6)
    out = scorer.log_proba(np.array([[1, 0, 0], [0, 1, 0]], np.float32), np.array([[2, 4, 0], [2, 4, 5]]))
    assert out[0, 0] > out[0, 1] and out[1, 1] > out[1, 0]
    assert out[0, 2] == pytest.approx(np.log(FLOOR)) and out[1, 2] == pytest.approx(np.log(FLOOR))
    assert np.all(out <= 0)


def test_self_training_scores_padding_minus_inf() -> None:
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32)
    scorer = SelfTraining().fit(vectors, np.array([0, 0, 1, 1]), n_labels=2)
    out = scorer.log_proba(vectors[:1], np.array([[0, -1]]))
    assert np.isneginf(out[0, 1])


# ---------------------------------------------------------------- label text
FLAT = LabelSet([Label("a", "apple"), Label("b", "banana"), Label("c", "cherry")])


def test_flat_names_give_one_view_of_the_names() -> None:
    encoder = RecordingEncoder()
    scorer = label_text(FLAT, encoder)
    assert scorer.views_ == ("description",)
    assert encoder.texts == ["apple", "banana", "cherry"]
    assert scorer.view_vectors_.shape == (1, 3, encoder.dim)


def test_requested_views_that_do_not_exist_fall_back_to_the_name() -> None:
    encoder = RecordingEncoder()
    scorer = label_text(FLAT, encoder, ("path", "aliases"))
    assert scorer.views_ == ("name",)
    assert encoder.texts == ["apple", "banana", "cherry"]


def test_descriptions_aliases_and_paths_become_views() -> None:
    labels = LabelSet(
        [
            Label("f", "fruit", description="sweet part of a plant"),
            Label("a", "apple", parents=("f",), aliases=("pomme",)),
        ]
    )
    encoder = RecordingEncoder()
    scorer = label_text(labels, encoder, ("name", "description", "path", "aliases"))
    assert scorer.views_ == ("name", "description", "path", "aliases")
    assert encoder.texts == [
        "fruit", "apple",
        "fruit: sweet part of a plant", "apple",
        "fruit", "fruit > apple",
        "fruit", "apple, pomme",
    ]  # fmt: skip
    assert scorer.view_vectors_.shape == (4, 2, encoder.dim)


def test_contexts_apply_only_to_labels_without_a_description() -> None:
    labels = LabelSet([Label("a", "apple", description="a red fruit"), Label("b", "bank")])
    encoder = RecordingEncoder()
    scorer = label_text(labels, encoder, contexts=("finance", "rivers"))
    assert encoder.texts == ["apple: a red fruit", "finance: bank", "rivers: bank"]
    assert label_variants(labels, labels.text_views()["description"], ("finance", "rivers")) == [
        ["apple: a red fruit"], ["finance: bank", "rivers: bank"]]
    expected = HashingEncoder().encode(["finance: bank", "rivers: bank"]).mean(axis=0)
    np.testing.assert_allclose(scorer.view_vectors_[0, 1], expected / np.linalg.norm(expected), atol=1e-6)


def test_score_is_the_mean_cosine_over_views_and_minus_inf_at_padding() -> None:
    labels = LabelSet([Label("a", "apple", description="red fruit"), Label("b", "car", description="a vehicle")])
    encoder = HashingEncoder()
    scorer = label_text(labels, encoder, ("name", "description"))
    batch = batch_of(encoder, ["a red apple fruit", "fast car"])
    out = scorer.score(batch, np.array([[1, 0, -1], [0, 1, -1]]))
    names = encoder.encode(["apple", "car"])
    descs = encoder.encode(["apple: red fruit", "car: a vehicle"])
    expected = (batch.vectors @ names.T + batch.vectors @ descs.T) / 2
    np.testing.assert_allclose(out[:, :2], [[expected[0, 1], expected[0, 0]], expected[1]], atol=1e-6)
    assert np.isneginf(out[:, 2]).all()
    positions, _ = scorer.shortlist(batch, 2)
    np.testing.assert_array_equal(positions[:, 0], [0, 1])


def test_add_labels_makes_a_new_label_rank_first_for_its_own_text() -> None:
    encoder = RecordingEncoder()
    scorer = label_text(FLAT, encoder)
    grown = LabelSet([*FLAT.labels, Label("z", "zebra", description="striped horse")])
    encoder.texts.clear()
    before = scorer
    scorer = scorer.add_labels(FitInput(labels=grown, encoder=encoder), len(FLAT))
    assert encoder.texts == ["zebra: striped horse"]  # only the new label is embedded
    assert before.view_vectors_.shape[1] == len(before.index_) == 3  # the scorer it grew from is unchanged
    assert scorer.view_vectors_.shape[1] == len(scorer.index_) == 4
    batch = batch_of(encoder, ["zebra: striped horse"])
    positions, scores = scorer.shortlist(batch, 4)
    assert positions[0, 0] == 3 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert scorer.score(batch, np.array([[3]]))[0, 0] == pytest.approx(1.0, abs=1e-5)


# ---------------------------------------------------------------- domain context
COOKING = {"recipe", "oven", "flour", "bake", "butter"}


class TopicEncoder:
    """Cooking words point one way, every other word another: the corpus centre decides."""

    identity = "test:topic"
    dim = 2

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        return np.array([[1.0, 0.0] if t in COOKING else [0.0, 1.0] for t in texts], dtype=np.float32)


def test_domain_words_picks_the_corpus_domain() -> None:
    texts = [
        "the recipe says to bake it in the oven on monday",
        "mix flour and butter then bake the dough",
        "this recipe needs flour, butter and a hot oven",
        "monday weather: rain, so we bake 12 cakes in the oven",
        "bake bread with flour on a rainy weather day",
        "the butter recipe",
        "singleword appears once",
    ]
    vectors = np.tile([[0.9, 0.1]], (len(texts), 1)).astype(np.float32)
    words = domain_words(texts, vectors, TopicEncoder(), n=5)
    assert set(words) == COOKING
    everything = domain_words(texts, vectors, TopicEncoder(), n=50)
    assert set(everything) == COOKING | {"monday", "weather"}  # min_df=2: singletons and stop words dropped
    assert set(everything[:5]) == COOKING


def test_domain_words_reach_past_the_most_frequent_words() -> None:
    # 300 generic words in three documents each outnumber the cooking words, which are in two: the domain
    # is still found, as words that name a domain are rarer than generic ones.
    words = itertools.islice(itertools.product(string.ascii_lowercase, repeat=3), 300)
    generic = " ".join("w" + "".join(letters) for letters in words)
    texts = [generic] * 3 + [" ".join(sorted(COOKING))] * 2
    vectors = np.tile([[0.9, 0.1]], (len(texts), 1)).astype(np.float32)
    assert set(domain_words(texts, vectors, TopicEncoder(), n=5)) == COOKING


def test_domain_words_of_a_single_document_is_empty() -> None:
    text = ["bake the bread in the oven with flour and butter"]
    assert domain_words(text, HashingEncoder().encode(text), HashingEncoder()) == []


def _lexical_labels() -> LabelSet:
    return LabelSet([Label("c", "compiler"), Label("os", "operating system"),
                     Label("p", "person, individual, someone"), Label("n", "network", aliases=("LAN",))])


def test_lexical_finds_names_plurals_synonyms_and_aliases() -> None:
    scorer = LexicalScorer().fit(FitInput(labels=_lexical_labels()))
    mentions = scorer.mentions(["Compilers for an Operating System", "someone on the lan", "nothing here"]).toarray()
    assert mentions[0, 0] > 0 and mentions[0, 1] > 0 and mentions[0, 2:].sum() == 0
    assert mentions[1, 2] > 0 and mentions[1, 3] > 0  # one synonym of a listed name; an alias
    assert mentions[2].sum() == 0


def test_lexical_counts_an_early_mention_more_and_pads_with_minus_inf() -> None:
    scorer = LexicalScorer().fit(FitInput(labels=_lexical_labels()))
    early, late = "compiler " + "word " * 60, "word " * 60 + "compiler"
    scores = scorer.score(Batch([early, late], np.zeros((2, 2), np.float32)), np.array([[0, 1, -1], [0, 1, -1]]))
    assert scores[0, 0] > scores[1, 0] > 0 and scores[0, 1] == 0 == scores[1, 1]
    assert np.isneginf(scores[:, 2]).all()


def test_lexical_indexes_labels_added_later() -> None:
    labels = _lexical_labels()
    scorer = LexicalScorer().fit(FitInput(labels=labels))
    grown = LabelSet([*labels, Label("db", "database")])
    scorer = scorer.add_labels(FitInput(labels=grown), len(labels))
    assert scorer.mentions(["a database"]).toarray()[0, 4] > 0
