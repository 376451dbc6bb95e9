"""What every registered scorer promises (scorers/base.py), checked on each of them in the spirit of
scikit-learn's check_estimator: a new scorer that registers itself is held to the same contract."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from conftest import HashingEncoder

from taxonomist.labels import Label, LabelSet
from taxonomist.scorers import EXAMPLES, LABEL_TEXTS, Batch, FitInput, Scorer
from taxonomist.scorers.registry import SCORERS
from taxonomist.state import from_params, params_of

LABELS = LabelSet([
    Label("fruit", "fruit", description="apples, pears and other sweet fruit"),
    Label("music", "music", aliases=("song",)),
    Label("sport", "sport, game", description="football, tennis and matches"),
    Label("space", "space"),
])
WORDS = {"fruit": "apple pear fruit", "music": "guitar song drum", "sport": "football match goal",
         "space": "comet galaxy star"}
FILLER = ["one", "two", "three", "four", "five", "six", "seven", "eight"]
TEXTS = [f"{WORDS[label]} {a} {b}" for label in ("fruit", "music", "sport") for a in FILLER for b in FILLER[:2]]
IDS = [[label] for label in ("fruit", "music", "sport") for _ in range(len(FILLER) * 2)]  # "space": no examples
QUERIES = ["a ripe apple and a pear", "the guitar song", "a football match", "a comet in the galaxy"]
CANDIDATES = np.array([[0, 1, 2, 3, -1], [3, 2, 1, -1, -1], [2, -1, -1, -1, -1], [1, 3, 0, 2, -1]])
GROWN = LabelSet([*LABELS, Label("ocean", "ocean", description="sea, waves and whales")])


def training_input() -> FitInput:
    encoder = HashingEncoder()
    label_vectors = SCORERS["label_text"]().fit(FitInput(labels=LABELS, encoder=encoder)).label_vectors
    return FitInput(labels=LABELS, encoder=encoder, label_vectors=label_vectors, texts=TEXTS,
                    vectors=encoder.encode(TEXTS), targets=LABELS.matrix(IDS))


def prepared(scorer: Scorer, data: FitInput) -> FitInput:
    """The input with what the scorer prepares once per training, as the trainer gives it."""
    return dataclasses.replace(data, prepared={scorer.name: scorer.prepare(data)}) if hasattr(scorer, "prepare") else data


def queries(scorer: Scorer, data: FitInput, texts: list[str] = QUERIES) -> Batch:
    return Batch(texts, data.encoder.encode(texts))


@pytest.fixture(params=sorted(SCORERS))
def name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def fitted(name: str) -> tuple[Scorer, FitInput]:
    scorer = SCORERS[name]()
    data = prepared(scorer, training_input())
    return scorer.fit(data), data


def test_it_is_registered_under_its_name_and_declares_what_it_needs(name: str) -> None:
    cls = SCORERS[name]
    assert cls.name == name
    assert cls.needs and cls.needs <= {LABEL_TEXTS, EXAMPLES}
    assert isinstance(cls.proposes, bool) and isinstance(cls.fusion_only, bool)
    assert cls.retrieval is None or isinstance(cls.retrieval, int)
    assert cls.retrieval is None or hasattr(cls, "shortlist"), "a retriever shortlists"
    assert not cls.proposes or hasattr(cls, "shortlist"), "a proposing scorer shortlists"
    assert isinstance(cls(), Scorer)
    params = params_of(cls())
    assert from_params(cls, params) == cls(), "its parameters survive saving"


def test_scores_have_the_candidates_shape_and_minus_inf_exactly_at_padding(fitted) -> None:
    scorer, data = fitted
    scores = scorer.score(queries(scorer, data), CANDIDATES)
    assert scores.shape == CANDIDATES.shape and scores.dtype == np.float32
    assert np.isneginf(scores[CANDIDATES < 0]).all()
    assert np.isfinite(scores[CANDIDATES >= 0]).all()


def test_an_empty_batch_gets_an_empty_answer(fitted) -> None:
    scorer, data = fitted
    empty = Batch([], np.zeros((0, data.encoder.dim), np.float32))
    assert scorer.score(empty, np.zeros((0, 3), np.int64)).shape == (0, 3)


def test_a_shortlist_is_best_first_among_the_labels(fitted) -> None:
    scorer, data = fitted
    if not hasattr(scorer, "shortlist"):
        pytest.skip(f"{scorer.name} has no shortlist (optional)")
    batch = queries(scorer, data)
    positions, values = scorer.shortlist(batch, 3)
    assert positions.shape == values.shape == (len(QUERIES), 3)
    assert ((positions >= -1) & (positions < len(LABELS))).all()
    real = positions >= 0
    lowest = np.finfo(np.float32).min
    assert np.all(np.diff(np.where(real, values, lowest), axis=1) <= 1e-6), "best first, padding last"
    assert all(len(set(row[row >= 0])) == (row >= 0).sum() for row in positions), "no label twice"


def test_it_survives_saving_and_loading(fitted, tmp_path: Path) -> None:
    scorer, data = fitted
    batch = queries(scorer, data)
    scorer.save(tmp_path)
    assert not list(tmp_path.rglob("*.pkl"))
    loaded = type(scorer).load(tmp_path, LABELS)
    assert params_of(loaded) == params_of(scorer)
    np.testing.assert_allclose(loaded.score(batch, CANDIDATES), scorer.score(batch, CANDIDATES), rtol=1e-5, atol=1e-6)


def test_a_fold_fit_scores_the_same_documents(name: str) -> None:
    scorer = SCORERS[name]()
    data = prepared(scorer, training_input())
    fold = scorer.fit(data.rows(np.arange(0, len(TEXTS), 2)))
    scores = fold.score(queries(fold, data), CANDIDATES)
    assert scores.shape == CANDIDATES.shape and np.isneginf(scores[CANDIDATES < 0]).all()


def test_update_makes_a_new_scorer_and_leaves_this_one_as_it_was(fitted) -> None:
    scorer, data = fitted
    if not hasattr(scorer, "update"):
        pytest.skip(f"{scorer.name} takes no new examples (optional)")
    batch = queries(scorer, data)
    before = scorer.score(batch, CANDIDATES)
    space = [f"comet galaxy star {word}" for word in FILLER]
    more = FitInput(labels=LABELS, encoder=data.encoder, vectors=data.encoder.encode(space), texts=space,
                    targets=LABELS.matrix([["space"]] * len(space)))
    grown = scorer.update(more)
    assert grown is not scorer
    np.testing.assert_array_equal(scorer.score(batch, CANDIDATES), before)
    space_slot = CANDIDATES[3] == LABELS.index_of("space")
    assert grown.score(batch, CANDIDATES)[3, space_slot] > before[3, space_slot], "the new examples count"


def test_add_labels_makes_a_new_scorer_for_the_grown_label_set(fitted) -> None:
    scorer, data = fitted
    batch = queries(scorer, data, ["whales in the sea", "a comet"])
    candidates = np.array([[4, 0, -1], [3, 4, 1]])
    with_new = dataclasses.replace(data, labels=GROWN, label_vectors=SCORERS["label_text"]().fit(
        FitInput(labels=GROWN, encoder=data.encoder)).label_vectors)
    grown = scorer.add_labels(with_new, len(LABELS))
    assert grown is not scorer
    scores = grown.score(batch, candidates)
    assert scores.shape == candidates.shape and np.isneginf(scores[candidates < 0]).all()
    assert np.isfinite(scores[candidates >= 0]).all()
    old = np.array([[0, 1, -1], [3, 2, 1]])
    np.testing.assert_allclose(scorer.score(batch, old), grown.score(batch, old), rtol=1e-5, atol=1e-6)


def test_a_new_scorer_is_its_class_and_one_registry_entry(monkeypatch, tmp_path: Path) -> None:
    """A scorer written elsewhere joins training, the fusion, ranking and saving by registering itself."""
    from taxonomist.config import Config, default_scorers
    from taxonomist.persist import read_model, write_model
    from taxonomist.scorers.base import gather
    from taxonomist.state import read_state, write_state
    from taxonomist.train import Trainer

    @dataclasses.dataclass
    class ShareScorer:
        """Each label's share of the examples, whatever the document."""

        name = "share"
        needs = frozenset({EXAMPLES})
        proposes = fusion_only = False
        retrieval = None

        smoothing: float = 1.0

        def fit(self, data: FitInput) -> "ShareScorer":
            counts = np.asarray(data.targets.sum(axis=0)).ravel() + self.smoothing
            self.log_share_ = np.log(counts / counts.sum()).astype(np.float32)
            return self

        def score(self, batch: Batch, candidates: np.ndarray) -> np.ndarray:
            return gather(self.log_share_, candidates)

        def add_labels(self, data: FitInput, start: int) -> "ShareScorer":
            grown = dataclasses.replace(self)
            grown.log_share_ = np.concatenate([self.log_share_, np.full(len(data.labels) - start, self.log_share_.min())])
            return grown

        def save(self, folder: Path) -> None:
            write_state(folder, params=params_of(self), log_share=self.log_share_)

        @classmethod
        def load(cls, folder: Path, labels: LabelSet) -> "ShareScorer":
            state = read_state(folder)
            scorer = from_params(cls, state["params"])
            scorer.log_share_ = state["log_share"]
            return scorer

    monkeypatch.setitem(SCORERS, "share", ShareScorer)  # the one line in scorers/registry.py
    config = Config(scorers={name: s for name, s in default_scorers().items() if name != "sparse"})
    assert "share" in config.scorers
    texts = [f"{WORDS[label]} {a} {b}" for label in ("fruit", "music", "sport") for a in FILLER for b in FILLER]
    ids = [[label] for label in ("fruit", "music", "sport") for _ in range(len(FILLER) ** 2)]  # enough to hold out
    model = Trainer(dataclasses.replace(config, label_text=dataclasses.replace(config.label_text, context=""))).fit(
        LABELS, HashingEncoder(), texts, ids)
    assert "share" in model.record.scores and "share" in model.fusion.scorers_
    write_model(model, tmp_path / "model")
    loaded = read_model(tmp_path / "model", encoder=HashingEncoder())
    assert isinstance(loaded.scoring.scorers["share"], ShareScorer)
    np.testing.assert_allclose(loaded.rank(QUERIES, 3).scores, model.rank(QUERIES, 3).scores, rtol=1e-5)
