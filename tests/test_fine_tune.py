"""Fine-tuning the bundled MiniLM on a few examples: what it learns, what it leaves alone, how it is saved."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import HashingEncoder

from taxonomist.classifier import Classifier
from taxonomist.config import Config
from taxonomist.encoders.fine_tune import TUNED_TAG, base_identity, fine_tune
from taxonomist.encoders.transformer import TransformerEncoder
from taxonomist.errors import InputError, ModelError
from taxonomist.labels import Label, LabelSet
from taxonomist.train import Trainer

# Label names that say nothing about their documents: only the examples tell the encoder what they share.
LABELS = LabelSet([Label("a", "alpha"), Label("b", "beta"), Label("c", "gamma")])
TEXTS = ["tomato soup with basil", "garlic bread and olive oil", "a pasta sauce of fresh tomatoes",
         "the guitar solo was loud", "a violin concerto in D", "drums and bass all night",
         "the referee showed a red card", "the goalkeeper saved a penalty", "a stadium full of football fans"]
IDS = [[label] for label in "abc" for _ in range(3)]


@pytest.fixture(scope="module")
def minilm(tmp_path_factory) -> TransformerEncoder:
    return TransformerEncoder("default", cache_dir=tmp_path_factory.mktemp("cache"))


def _targets() -> sp.csr_matrix:
    return LABELS.matrix(IDS)


def _margin(encoder) -> float:
    """Mean similarity of each example to its own label's name, minus that to the other labels' names."""
    sims = encoder.encode(TEXTS) @ encoder.encode(LABELS.names).T
    own = _targets().toarray() > 0
    return float(sims[own].mean() - sims[~own].mean())


def test_tuning_pulls_examples_towards_their_labels_and_leaves_the_base_encoder_alone(minilm):
    before = minilm.encode(TEXTS)
    tuned = fine_tune(minilm, TEXTS, _targets(), LABELS.names, epochs=2, batch_size=9)
    assert _margin(tuned) > _margin(minilm) + 0.03  # measured: 0.013 -> 0.061
    assert np.allclose(minilm.encode(TEXTS), before)  # a copy was tuned
    assert TUNED_TAG in tuned.identity and base_identity(tuned.identity) == minilm.identity
    again = fine_tune(minilm, TEXTS, _targets(), LABELS.names, epochs=2, batch_size=9)
    assert again.identity == tuned.identity  # same seed, same weights
    other = fine_tune(minilm, TEXTS, _targets(), LABELS.names, epochs=2, batch_size=9, random_state=1)
    assert other.identity != tuned.identity


def test_with_more_labels_than_negatives_each_example_meets_its_own_label_among_a_sample(minilm):
    tuned = fine_tune(minilm, TEXTS, _targets(), [[name] for name in LABELS.names], epochs=2, batch_size=9,
                      label_negatives=1)
    assert _margin(tuned) > _margin(minilm) + 0.03


def test_examples_are_pulled_towards_their_labels_texts_in_each_domain_context(minilm, monkeypatch):
    seen = {}

    def record(encoder, texts, targets, label_texts, **settings):
        seen["label_texts"] = label_texts
        return encoder

    monkeypatch.setattr("taxonomist.encoders.fine_tune.fine_tune", record)
    Classifier(LABELS, encoder=minilm, context="food,music", supervised=("prototypes",)).fit(TEXTS, IDS)
    assert seen["label_texts"] == [[f"{c}: {name}" for c in ("food", "music")] for name in LABELS.names]


def test_held_out_folds_are_seen_through_an_encoder_tuned_without_them(minilm, monkeypatch):
    tunings, folds = [], []

    class Tuned(HashingEncoder):
        """Vectors that tell which examples the encoder was tuned on."""

        def __init__(self, texts):
            self.seen = frozenset(texts)
            self.identity = f"tuned on {len(texts)}"

        def encode(self, texts, **options):
            return np.roll(super().encode(texts, **options), len(self.seen), axis=1)

    def tune(encoder, texts, targets, label_texts, **settings):
        tunings.append(Tuned(texts))
        return tunings[-1]

    import taxonomist.train.cross_fit as cross_fit

    fit_example_scorers = cross_fit.fit_example_scorers

    def spy(config, data, names):
        if data.fold:
            texts = list(data.texts)
            folds.append(([t for t in tunings if np.allclose(data.vectors, t.encode(texts))], set(TEXTS) - set(texts)))
        return fit_example_scorers(config, data, names)

    monkeypatch.setattr("taxonomist.encoders.fine_tune.fine_tune", tune)
    monkeypatch.setattr(cross_fit, "fit_example_scorers", spy)
    config = Config.from_options(context="")
    config = replace(config, train=replace(config.train, min_holdout=1))  # hold out folds even of 9 examples
    model = Trainer(config).fit(LABELS, minilm, TEXTS, IDS)
    first, second, final = (t.seen for t in tunings)
    assert not first & second and first | second == final == set(TEXTS)  # the two halves, then everything
    assert model.encoder is tunings[-1] and model.fusion is not None
    assert len(folds) >= 2 and set().union(*(held for _, held in folds)) == set(TEXTS)
    for (encoder,), held in folds:  # each fold is seen through one encoder, tuned without it
        assert encoder.seen in (first, second) and not encoder.seen & held


def test_examples_without_labels_are_left_out_of_tuning(minilm):
    targets = sp.vstack([_targets(), sp.csr_matrix((1, len(LABELS)), dtype=np.float32)]).tocsr()
    tuned = fine_tune(minilm, [*TEXTS, "a text with no label"], targets, LABELS.names, epochs=1, batch_size=10)
    assert TUNED_TAG in tuned.identity


def test_a_tuned_model_carries_its_encoder_and_ranks_the_same_after_loading(minilm, tmp_path):
    classifier = Classifier(LABELS, encoder=minilm, context="", supervised=("prototypes",)).fit(TEXTS, IDS)
    assert TUNED_TAG in classifier.model_.encoder.identity  # "auto": a handful of examples
    classifier.save(tmp_path / "model")
    loaded = Classifier.load(tmp_path / "model")
    assert loaded.model_.encoder.identity == classifier.model_.encoder.identity
    test = ["a bowl of tomato soup", "the goalkeeper and the referee"]
    (p1, s1), (p2, s2) = classifier.rank(test, 3), loaded.rank(test, 3)
    assert (p1 == p2).all() and np.allclose(s1, s2, atol=1e-5)
    with pytest.raises(ModelError, match="carries the encoder"):
        Classifier.load(tmp_path / "model", encoder=minilm)
    weights = next((tmp_path / "model" / "objects").glob("encoder.*")) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])
    with pytest.raises(ModelError, match="truncated"):
        Classifier.load(tmp_path / "model")


def test_auto_leaves_many_examples_one_per_label_and_other_encoders_untuned(minilm):
    config = Config.from_options(context="", supervised=("prototypes",))
    few_allowed = replace(config, train=replace(config.train, fine_tune_max_examples=len(TEXTS) - 1))
    many = Trainer(few_allowed).fit(LABELS, minilm, TEXTS, IDS)
    assert many.encoder.identity == minilm.identity
    one_each = Classifier(LABELS, encoder=minilm, context="", supervised=("prototypes",)).fit(TEXTS[::3], IDS[::3])
    assert one_each.model_.encoder.identity == minilm.identity  # no pairs of examples to learn from
    hashed = Classifier(LABELS, encoder=HashingEncoder(), context="", supervised=("prototypes",)).fit(TEXTS, IDS)
    assert hashed.model_.encoder.identity == HashingEncoder.identity


def test_fine_tune_settings_are_checked():
    with pytest.raises(InputError, match="needs a transformer encoder"):
        Classifier(LABELS, encoder=HashingEncoder(), fine_tune="on").fit(TEXTS, IDS)
    with pytest.raises(ValueError, match="fine_tune must be one of"):
        Classifier(LABELS, encoder=HashingEncoder(), fine_tune="sometimes").fit(TEXTS, IDS)
