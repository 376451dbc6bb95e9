"""Sparse XMC scorer on tiny synthetic data: labels with their own words, so the right answer is known."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from taxonomist.errors import InputError, ModelError
from taxonomist.labels import Label, LabelSet
from taxonomist.scorers import Batch, FitInput
from taxonomist.scorers.sparse_xmc import Features, SparseXMCScorer, _write_xmc

# Labels 1 and 4 have no examples; the others have eight words of their own.
WORDS = {0: "apple pear plum fig grape melon cherry lemon",
         2: "piano violin cello flute drum harp oboe tuba",
         3: "granite basalt marble slate quartz shale flint chalk",
         5: "comet nebula quasar pulsar galaxy orbit moon star"}
N_LABELS = 6
LIBRARIES = ["omikuji", pytest.param("napkinxc", marks=pytest.mark.skipif(
    importlib.util.find_spec("napkinxc") is None, reason="napkinxc (an optional extra) is not installed"))]


def documents(n: int, seed: int) -> tuple[list[str], sp.csr_matrix]:
    """n documents of five words from one label, plus two words every label shares."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(sorted(WORDS), size=n)
    texts = [" ".join([*rng.choice(WORDS[label].split(), size=5), "the", "thing"]) for label in labels]
    return texts, sp.csr_matrix((np.ones(n, np.float32), (np.arange(n), labels)), shape=(n, N_LABELS))


def examples(texts: list[str], targets: sp.csr_matrix, features: Features | None = None) -> FitInput:
    """What the scorer learns from; `features`: the texts' TF-IDF rows, computed beforehand."""
    return FitInput(texts=texts, targets=targets, prepared={} if features is None else {"sparse": features})


@pytest.fixture(scope="module", params=LIBRARIES)
def fitted(request: pytest.FixtureRequest) -> SparseXMCScorer:
    texts, targets = documents(60, seed=0)
    return SparseXMCScorer(library=request.param, top_k=N_LABELS, n_threads=2).fit(examples(texts, targets))


def test_predict_recovers_each_documents_label(fitted: SparseXMCScorer) -> None:
    texts, targets = documents(20, seed=1)
    predicted = fitted.predict(texts)
    assert predicted.shape == (20, N_LABELS) and predicted.dtype == np.float32
    assert np.array_equal(predicted.toarray().argmax(axis=1), targets.indices)
    assert predicted.data.min() >= 0.0 and predicted.data.max() <= 1.0


def test_labels_without_examples_are_never_predicted(fitted: SparseXMCScorer) -> None:
    predicted = fitted.predict(documents(20, seed=2)[0] + ["", "unknown words only"])
    assert predicted[:, [1, 4]].nnz == 0 and (predicted.getnnz(axis=1) <= 4).all()  # top_k asks for all 6


def test_score_gives_model_scores_zero_when_absent_and_minus_inf_at_padding() -> None:
    texts, targets = documents(60, seed=0)
    scorer = SparseXMCScorer(top_k=1, n_threads=1).fit(examples(texts, targets))
    batch = Batch(texts=["apple pear plum", "piano violin"], vectors=np.zeros((2, 4), np.float32))
    candidates = np.array([[0, 2, -1], [3, 2, -1]])
    scores = scorer.score(batch, candidates)
    assert scores.shape == (2, 3) and scores.dtype == np.float32
    top = scorer.predict(batch.texts).toarray()
    assert scores[0, 0] == top[0, 0] > 0 and scores[1, 1] == top[1, 2] > 0
    assert scores[0, 1] == 0.0 and scores[1, 0] == 0.0  # top_k=1: the other labels get no score
    assert np.isneginf(scores[:, 2]).all()


@pytest.mark.parametrize("library", LIBRARIES)
def test_save_then_load_predicts_the_same(library: str, tmp_path: Path) -> None:
    texts, targets = documents(60, seed=0)
    scorer = SparseXMCScorer(library=library, top_k=4, n_threads=1).fit(examples(texts, targets))
    new = documents(20, seed=3)[0]
    before = scorer.predict(new)  # Omikuji's first prediction densifies weights: saved so too
    scorer.save(tmp_path)
    assert not list(tmp_path.rglob("*.pkl")) and (tmp_path / "config.json").exists()
    loaded = SparseXMCScorer.load(tmp_path)
    after = loaded.predict(new)
    assert np.array_equal(before.indptr, after.indptr) and np.array_equal(before.indices, after.indices)
    np.testing.assert_allclose(after.data, before.data, atol=1e-6)  # Omikuji's tree sum: float32 rounding
    assert loaded.n_labels_ == N_LABELS and loaded.library == library


def test_shared_features_are_the_texts_own_and_a_fold_fitted_on_them_predicts_alike() -> None:
    texts, targets = documents(80, seed=0)
    features = SparseXMCScorer().featurize(texts)  # the classifier's one featurization for every fit
    rest, held = np.arange(60), np.arange(60, 80)
    held_texts = [texts[i] for i in held]
    assert (features.rows(held).matrix != features.tfidf.transform(held_texts)).nnz == 0
    scorer = SparseXMCScorer(top_k=N_LABELS, n_threads=1).fit(examples([texts[i] for i in rest], targets[rest],
                                                                       features.rows(rest)))
    assert scorer.tfidf_ is features.tfidf
    shared, featurized = scorer.predict(held_texts, features=features.rows(held)), scorer.predict(held_texts)
    assert np.array_equal(shared.indices, featurized.indices) and np.array_equal(shared.data, featurized.data)
    assert np.array_equal(shared.toarray().argmax(axis=1), targets[held].indices)


def test_features_of_other_texts_are_input_errors() -> None:
    texts, targets = documents(20, seed=0)
    features = SparseXMCScorer().featurize(texts)
    with pytest.raises(InputError, match="20 texts but 19 rows of features"):
        SparseXMCScorer().fit(examples(texts, targets, features.rows(np.arange(19))))
    scorer = SparseXMCScorer(n_threads=1).fit(examples(texts, targets))  # a featurizer of its own
    with pytest.raises(InputError, match="another featurizer"):
        scorer.predict(texts, features=features)


def test_one_tree_when_the_root_is_a_leaf() -> None:
    """Fewer labels than Omikuji's min_branch_size: every tree would be the same one-vs-rest leaf."""
    texts, targets = documents(60, seed=0)
    assert SparseXMCScorer(n_threads=1).fit(examples(texts, targets)).model_.model.n_trees == 1
    many = 120
    words = [f"w{label}a w{label}b w{label}c" for label in range(many)]
    texts = [words[i % many] for i in range(2 * many)]
    targets = sp.csr_matrix((np.ones(2 * many, np.float32), (np.arange(2 * many), np.arange(2 * many) % many)))
    assert SparseXMCScorer(n_threads=1).fit(examples(texts, targets)).model_.model.n_trees == 3


def test_training_file_holds_the_matrices(tmp_path: Path) -> None:
    features = sp.csr_matrix(np.array([[0.6, 0, 0.8] + [0] * 9, [0] * 11 + [1.0], [0, 0.28, 0] + [0.96] + [0] * 8],
                                      np.float32))
    targets = sp.csr_matrix(np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]], np.float32))
    _write_xmc(tmp_path / "train.txt", features, targets)
    header, *lines = (tmp_path / "train.txt").read_text(encoding="ascii").split("\n")[:-1]
    assert header == "3 12 3" and len(lines) == 3
    for line, row, labels in zip(lines, features, targets):  # read as Omikuji reads it
        label_field, *pairs = line.split(" ")
        assert [int(x) for x in label_field.split(",") if x] == labels.indices.tolist()
        assert [int(p.split(":")[0]) for p in pairs] == row.indices.tolist()
        np.testing.assert_allclose([float(p.split(":")[1]) for p in pairs], row.data, atol=1e-8)


def test_add_labels_widens_predictions_without_predicting_them(tmp_path: Path) -> None:
    texts, targets = documents(60, seed=0)
    scorer = SparseXMCScorer(n_threads=1).fit(examples(texts, targets))
    grown = LabelSet([Label(str(i), f"label {i}") for i in range(N_LABELS + 2)])
    wider = scorer.add_labels(FitInput(labels=grown), N_LABELS)
    assert scorer.n_labels_ == N_LABELS  # the scorer it grew from is unchanged
    scorer = wider
    predicted = scorer.predict(texts[:5])
    assert predicted.shape == (5, N_LABELS + 2) and predicted[:, N_LABELS:].nnz == 0
    batch = Batch(texts=texts[:1], vectors=np.zeros((1, 4), np.float32))
    assert scorer.score(batch, np.array([[N_LABELS + 1]]))[0, 0] == 0.0
    scorer.save(tmp_path)
    assert SparseXMCScorer.load(tmp_path).n_labels_ == N_LABELS + 2


def test_fit_prints_nothing(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    texts, targets = documents(60, seed=0)
    scorer = SparseXMCScorer(n_threads=1).fit(examples(texts, targets))
    scorer.save(tmp_path)
    SparseXMCScorer.load(tmp_path).predict(texts[:3])
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize("texts", [["", " ", "!!"], ["alpha", "beta", "gamma"]], ids=["empty", "below-min-df"])
def test_no_usable_words_is_an_input_error(texts: list[str]) -> None:
    targets = sp.csr_matrix(np.ones((3, 2), np.float32))
    with pytest.raises(InputError, match="no words to learn from.*\n  fix: .*min_df"):
        SparseXMCScorer().fit(examples(texts, targets))


def test_bad_arguments_are_input_errors() -> None:
    texts, targets = documents(10, seed=0)
    with pytest.raises(InputError, match="10 texts but 9 rows"):
        SparseXMCScorer().fit(examples(texts, targets[:9]))
    with pytest.raises(InputError, match="has a label"):
        SparseXMCScorer().fit(examples(texts, sp.csr_matrix((10, 3), dtype=np.float32)))
    with pytest.raises(InputError, match="unknown sparse XMC library 'pecos'"):
        SparseXMCScorer(library="pecos").fit(examples(texts, targets))
    with pytest.raises(InputError, match="no hyper-parameter 'arity'"):
        SparseXMCScorer(library_params={"arity": 4}).fit(examples(texts, targets))


@pytest.mark.parametrize("lost, message", [("idf.npy", "cannot read the sparse XMC model"),
                                           ("model/*", "cannot load the omikuji model")])
def test_loading_an_incomplete_folder_is_a_model_error(lost: str, message: str, tmp_path: Path) -> None:
    texts, targets = documents(60, seed=0)
    SparseXMCScorer(n_threads=1).fit(examples(texts, targets)).save(tmp_path)
    for path in tmp_path.glob(lost):
        path.unlink()
    with pytest.raises(ModelError, match=message):
        SparseXMCScorer.load(tmp_path)
