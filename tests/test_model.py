"""The Model, the Trainer and the Project on the hashing encoder: read-only ranking, the out-of-fold record, the
configuration kept with the model, the same model from the same data, and the project's lock."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import replace

import numpy as np
import pytest
from conftest import HashingEncoder
from test_supervised import IDS, LABELS, TEST, TEXTS

from taxonomist.config import Config, TrainConfig
from taxonomist.errors import InputError, ModelError, NotSupportedError
from taxonomist.labels import Label
from taxonomist.model import FUSED, POSTERIOR, Model, Suggestion
from taxonomist.persist import read_model, write_model
from taxonomist.project import Project
from taxonomist.train import Trainer

DENSE = Config.from_options(context="", supervised=("prototypes", "linear", "neighbours"))


def trained(config: Config = DENSE, **options) -> Model:
    return Trainer(config).fit(LABELS, HashingEncoder(), TEXTS, IDS, **options)


def state_digest(model: Model) -> str:
    """A digest of every array a model's scorers and adaptation hold: what ranking must never change."""
    digest = hashlib.sha256()
    parts = [*model.scoring.scorers.values(), model.adaptation]
    for part in parts:
        for name, value in sorted(vars(part).items()) if part is not None else ():
            if isinstance(value, np.ndarray):
                digest.update(name.encode() + value.tobytes())
            elif hasattr(value, "vectors"):
                digest.update(name.encode() + value.vectors.tobytes())
    return digest.hexdigest()


def test_ranking_leaves_the_model_as_it_was_and_two_threads_get_one_answer() -> None:
    model = trained(unlabeled=TEST + TEXTS)
    before = state_digest(model)
    alone = model.rank(TEST + TEXTS[:40], 4)
    results: dict[int, object] = {}

    def rank(i: int) -> None:
        results[i] = model.rank(TEST + TEXTS[:40], 4)

    threads = [threading.Thread(target=rank, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for ranking in results.values():
        np.testing.assert_array_equal(ranking.positions, alone.positions)
        np.testing.assert_array_equal(ranking.scores, alone.scores)
    assert state_digest(model) == before


def test_a_batch_ranked_is_never_adapted_to() -> None:
    model = Trainer(Config.from_options(context="")).fit(LABELS, HashingEncoder())
    first = model.rank(TEST, 3)
    assert model.adaptation is None
    np.testing.assert_array_equal(model.rank(TEST, 3).scores, first.scores)
    np.testing.assert_array_equal(model.rank(TEST[:1], 3).scores[0], first.scores[0])


def test_what_a_score_is_is_said_and_a_probability_only_from_a_calibration() -> None:
    zero_shot = Trainer(Config.from_options(context="")).fit(LABELS, HashingEncoder())
    ranking = zero_shot.rank(TEST, 2)
    assert ranking.kind == POSTERIOR and ranking.probabilities is None and zero_shot.calibration is None
    assert all(s.probability is None for row in zero_shot.suggest(TEST, 2) for s in row)
    model = trained()
    ranking = model.rank(TEST, 2)
    assert ranking.kind == FUSED and model.calibration is not None  # from the held-out examples
    suggestions = model.suggest(TEST, 2)
    assert all(isinstance(s, Suggestion) and 0 <= s.probability <= 1 for row in suggestions for s in row)
    assert [row[0].score for row in suggestions] == pytest.approx(ranking.scores[:, 0].tolist())
    assert [row[0].probability for row in suggestions] == pytest.approx(ranking.probabilities[:, 0].tolist())


def test_training_keeps_the_out_of_fold_record_and_it_survives_saving(tmp_path) -> None:
    model = trained()
    record = model.record
    n, width = record.candidates.shape
    assert 0 < n <= len(TEXTS) and len(set(record.rows.tolist())) == n  # each held-out document once
    assert list(record.scores) == ["label_text", "zero_shot", "lexical", "prototypes", "linear", "neighbours"]
    assert all(values.shape == (n, width) for values in record.scores.values())
    truth = record.truth
    for row, doc in enumerate(record.rows):  # the truth is the document's own gold labels, where proposed
        gold = {LABELS.index_of(label) for label in IDS[doc]}
        proposed = {int(c) for c, t in zip(record.candidates[row], truth[row]) if t}
        assert proposed <= gold and record.gold[row].indices.tolist() == sorted(gold)
    assert np.isneginf(record.scores["zero_shot"][record.candidates < 0]).all()
    write_model(model, tmp_path / "model")
    loaded = read_model(tmp_path / "model", encoder=HashingEncoder()).record
    np.testing.assert_array_equal(loaded.rows, record.rows)
    np.testing.assert_array_equal(loaded.truth, truth)
    assert list(loaded.scores) == list(record.scores)
    np.testing.assert_array_equal(loaded.scores["prototypes"], record.scores["prototypes"])


def test_the_same_data_and_random_state_give_the_same_model() -> None:
    """Every random step draws from random_state (the sparse XMC scorer is left out: Omikuji draws from an
    unseeded generator of its own, see the README)."""
    first, second = trained(unlabeled=TEST), trained(unlabeled=TEST)
    np.testing.assert_array_equal(first.record.rows, second.record.rows)
    for name in first.record.scores:
        np.testing.assert_array_equal(first.record.scores[name], second.record.scores[name])
    np.testing.assert_array_equal(first.rank(TEST, 4).scores, second.rank(TEST, 4).scores)
    other = trained(replace(DENSE, random_state=1), unlabeled=TEST)
    assert not np.array_equal(other.record.rows, first.record.rows)  # the folds follow the random state


def test_the_configuration_is_saved_with_the_model(tmp_path) -> None:
    config = replace(DENSE, train=replace(TrainConfig(), max_folds=2, min_fusion_docs=50), random_state=3)
    model = trained(config)
    write_model(model, tmp_path / "model")
    assert read_model(tmp_path / "model", encoder=HashingEncoder()).config == config
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    manifest["meta"]["config"]["train"]["folds_please"] = 3
    (tmp_path / "model" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="folds_please"):
        read_model(tmp_path / "model", encoder=HashingEncoder())


def test_bad_settings_are_input_errors() -> None:
    with pytest.raises(InputError, match="unknown supervised scorers"):
        Config.from_options(supervised=("prototypes", "magic"))
    with pytest.raises(InputError, match="label-text scorer"):
        Config(scorers={})
    with pytest.raises(InputError, match="hierarchy must be one of"):
        Config.from_options(hierarchy="deep")


def test_growing_a_model_makes_a_new_one() -> None:
    model = trained()
    grown, report = model.with_examples([f"comet galaxy telescope {w}" for w in ("one", "two")], [["d"], ["d"]])
    assert report["documents"] == 2 and model.counts[3] == 0 and grown.counts[3] == 2
    wider = model.with_labels([Label("e", "volcano lava eruption")])
    assert len(model.labels) == 4 and len(wider.labels) == 5
    assert wider.suggest(["the volcano eruption and its lava"], 1)[0][0].label_id == "e"
    with pytest.raises(NotSupportedError, match="without examples"):
        Trainer(DENSE).fit(LABELS, HashingEncoder()).with_examples(["x"], [["a"]])


def test_a_project_loads_lazily_learns_under_its_lock_and_saves(tmp_path, hashing_encoder) -> None:
    folder = tmp_path / "model"
    Project(model_dir=folder, labels=LABELS, config=DENSE).train(TEXTS, IDS)
    project = Project("tickets", model_dir=folder, allow_learning=True)
    assert project._model is None  # nothing read until asked
    assert project.info()["is_trained"] and project.info()["documents"] == len(TEXTS)
    in_flight = project.model
    report = project.learn([f"comet galaxy telescope {w}" for w in ("one", "two")], [["d"], ["d"]])
    assert report["labels"] == 1 and in_flight.counts[3] == 0  # a request in flight keeps its model
    assert Project(model_dir=folder).model.counts[3] == 2  # saved
    with pytest.raises(NotSupportedError, match="learning is not enabled"):
        Project(model_dir=folder).learn(["x"], [["a"]])
    with pytest.raises(InputError, match="label set or a model folder"):
        Project()


def test_the_held_out_metrics_are_the_record_ranked_as_the_model_ranks_and_are_saved(tmp_path) -> None:
    model = trained()
    held = model.held_out
    assert held is not None and held["documents"] == len(model.record.rows)
    assert set(held) == {"P@1", "P@5", "R@5", "nDCG@5", "candidate recall", "documents"}
    assert 50 < held["P@1"] <= 100 and held["R@5"] <= held["candidate recall"]  # the shortlist caps recall
    write_model(model, tmp_path / "model")
    assert read_model(tmp_path / "model", encoder=HashingEncoder()).held_out == held
    assert Trainer(DENSE).fit(LABELS, HashingEncoder()).held_out is None  # zero-shot: nothing was held out
