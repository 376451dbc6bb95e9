"""WordTfidf computes sklearn's TfidfVectorizer features; the comparison pins it to that reference."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from taxonomist.tfidf import WordTfidf

TEXTS = ["The cat sat on the mat, the cat!", "A dog sat on a log.", "Cats and dogs: the CAT and the dog",
         "Über-naïve café, x y z, naïve café", "", "the mat the log the end", "42 is 42 and 4 is not"]
NEW = ["the cat and the dog sat", "café naïve über unknownword", "", "mat mat mat"]


def reference(**params) -> TfidfVectorizer:
    return TfidfVectorizer(dtype=np.float32, **params)


def aligned(ours: WordTfidf, matrix: sp.csr_matrix, theirs: TfidfVectorizer) -> np.ndarray:
    """Our matrix with its columns in the reference's order."""
    column = {term: i for i, term in enumerate(ours.terms())}
    assert sorted(column) == sorted(theirs.get_feature_names_out())
    return matrix[:, [column[t] for t in theirs.get_feature_names_out()]].toarray()


@pytest.mark.parametrize("params", [{"ngram_range": (1, 2), "min_df": 2, "sublinear_tf": True},
                                    {"ngram_range": (1, 1)}, {"ngram_range": (2, 3)},
                                    {"ngram_range": (1, 2), "max_features": 4}])  # no tie at the cut-off
def test_features_are_tfidfvectorizers(params: dict) -> None:
    ours, theirs = WordTfidf(**params), reference(**params)
    expected = theirs.fit_transform(TEXTS).toarray()
    matrix = ours.fit_transform(TEXTS)
    assert matrix.dtype == np.float32 and matrix.shape == expected.shape
    np.testing.assert_allclose(aligned(ours, matrix, theirs), expected, atol=1e-6)
    np.testing.assert_allclose(aligned(ours, ours.transform(NEW), theirs), theirs.transform(NEW).toarray(), atol=1e-6)


def test_saved_terms_rebuild_the_same_featurizer() -> None:
    ours = WordTfidf(ngram_range=(1, 2), min_df=2)
    ours.fit_transform(TEXTS)
    loaded = WordTfidf.from_terms(ours.terms(), ours.idf_, ngram_range=(1, 2), min_df=2)
    assert loaded.terms() == ours.terms()
    assert (loaded.transform(NEW + TEXTS) != ours.transform(NEW + TEXTS)).nnz == 0


def test_terms_from_tfidfvectorizer_load_unchanged() -> None:
    """A model saved when sklearn featurized (its vocabulary in alphabetical order) still predicts the same."""
    theirs = reference(ngram_range=(1, 2))
    theirs.fit(TEXTS)
    ours = WordTfidf.from_terms(theirs.get_feature_names_out().tolist(), theirs.idf_, ngram_range=(1, 2))
    np.testing.assert_allclose(ours.transform(NEW).toarray(), theirs.transform(NEW).toarray(), atol=1e-6)


def test_no_ngram_left_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="no word n-gram is in 2 or more documents"):
        WordTfidf(min_df=2).fit_transform(["alpha", "beta"])
    with pytest.raises(ValueError, match="no word n-gram"):
        WordTfidf().fit_transform(["", "!"])
