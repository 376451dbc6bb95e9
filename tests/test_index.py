"""Label search (exact LabelIndex, top_k; approximate GraphIndex) and the sparse candidate rows (to_csr,
csr_top_k, csr_lookup)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from taxonomist import sparse
from taxonomist.index import GraphIndex, LabelIndex, top_k
from taxonomist.sparse import csr_lookup, csr_top_k, to_csr


def unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def vectors() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return unit_rows(rng, 37, 16), unit_rows(rng, 23, 16)


# ---------------------------------------------------------------- LabelIndex
@pytest.mark.parametrize("block_bytes", [1, 4 * 37 * 5, 2**30])  # < one row, 5 rows per block, all at once
@pytest.mark.parametrize("k", [1, 5, 37, 50])
def test_search_equals_brute_force_argsort(vectors, block_bytes: int, k: int) -> None:
    labels, queries = vectors
    index = LabelIndex(labels, block_bytes=block_bytes)
    positions, scores = index.search(queries, k)

    full = queries @ labels.T
    expected = np.argsort(-full, axis=1, kind="stable")[:, : min(k, len(labels))]
    assert positions.shape == scores.shape == (len(queries), min(k, len(labels)))
    assert positions.dtype == np.int64 and scores.dtype == np.float32
    np.testing.assert_array_equal(positions, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(full, expected, axis=1), rtol=1e-5, atol=1e-6)
    assert np.all(np.diff(scores, axis=1) <= 0), "best first"


def test_block_smaller_than_a_row_still_takes_one_row(vectors) -> None:
    labels, _ = vectors
    assert LabelIndex(labels, block_bytes=1).rows_per_block() == 1
    assert LabelIndex(labels, block_bytes=4 * 37 * 5).rows_per_block() == 5


def test_add_makes_new_labels_findable(vectors) -> None:
    labels, queries = vectors
    index = LabelIndex(labels[:10])
    index.add(queries[:2])
    assert len(index) == 12
    positions, scores = index.search(queries[:2], 3)
    np.testing.assert_array_equal(positions[:, 0], [10, 11])
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


def test_top_k_caps_k_at_the_row_width() -> None:
    scores = np.array([[0.1, 0.9, 0.5], [3.0, -1.0, 2.0]], dtype=np.float32)
    positions, values = top_k(scores, 10)
    np.testing.assert_array_equal(positions, [[1, 2, 0], [0, 2, 1]])
    np.testing.assert_allclose(values, [[0.9, 0.5, 0.1], [3.0, 2.0, -1.0]])


# ---------------------------------------------------------------- GraphIndex
def test_graph_finds_nearly_all_exact_neighbours_best_first() -> None:
    rng = np.random.default_rng(3)
    vectors, queries = unit_rows(rng, 2000, 16), unit_rows(rng, 50, 16)
    positions, scores = GraphIndex(vectors).search(queries, 10)
    exact, _ = LabelIndex(vectors).search(queries, 10)
    assert positions.shape == scores.shape == (50, 10) and positions.dtype == np.int64 and scores.dtype == np.float32
    assert np.mean([len(set(a) & set(b)) for a, b in zip(positions, exact)]) >= 9.5
    np.testing.assert_allclose(scores, np.einsum("nd,nkd->nk", queries, vectors[positions]), atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_graph_search_beyond_its_candidate_list_and_its_size() -> None:
    rng = np.random.default_rng(4)
    vectors = unit_rows(rng, 300, 8)
    positions, _ = GraphIndex(vectors, search_effort=4).search(vectors[:3], 100)  # k > the graph's list
    assert (positions >= 0).all() and all(len(set(row)) == 100 for row in positions)
    assert GraphIndex(vectors[:5]).search(vectors[:2], 10)[0].shape == (2, 5)


def test_graph_add_and_round_trip_through_bytes(vectors) -> None:
    labels, queries = vectors
    index = GraphIndex(labels)
    index.add(queries[:2])
    assert len(index) == 39
    np.testing.assert_array_equal(index.search(queries[:2], 1)[0][:, 0], [37, 38])
    restored = GraphIndex.from_bytes(index.to_bytes())
    assert len(restored) == 39
    for got, expected in zip(restored.search(queries, 5), index.search(queries, 5)):
        np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------- sparse rows
def test_to_csr_sums_duplicates_and_drops_padding() -> None:
    candidates = np.array([[2, 2, -1], [0, -1, -1], [-1, -1, -1]])
    values = np.array([[0.1, 0.2, 9.0], [0.5, 7.0, 7.0], [4.0, 4.0, 4.0]])
    matrix = to_csr(candidates, values, n_labels=4)
    assert matrix.shape == (3, 4)
    assert matrix.nnz == 2  # one summed duplicate, one single entry; padding values never stored
    np.testing.assert_allclose(matrix.toarray(), [[0, 0, 0.3, 0], [0.5, 0, 0, 0], [0, 0, 0, 0]], rtol=1e-6)


def test_csr_top_k_rows_of_different_lengths_and_empty_rows() -> None:
    candidates = np.array([[4, 1, 3, 0], [2, -1, -1, -1], [-1, -1, -1, -1], [0, 1, -1, -1]])
    values = np.array([[0.2, 0.9, 0.5, 0.1], [0.7, 0, 0, 0], [0, 0, 0, 0], [0.3, 0.6, 0, 0]])
    positions, scores = csr_top_k(to_csr(candidates, values, 5), 3)
    np.testing.assert_array_equal(positions, [[1, 3, 4], [2, -1, -1], [-1, -1, -1], [1, 0, -1]])
    np.testing.assert_allclose(
        scores, [[0.9, 0.5, 0.2], [0.7, -np.inf, -np.inf], [-np.inf] * 3, [0.6, 0.3, -np.inf]], rtol=1e-6
    )
    assert positions.dtype == np.int64 and scores.dtype == np.float32


def test_csr_top_k_with_k_larger_than_every_row() -> None:
    matrix = to_csr(np.array([[3, 0], [1, 2]]), np.array([[0.4, 0.8], [0.5, 0.5]]), 4)
    positions, scores = csr_top_k(matrix, 6)
    assert positions.shape == (2, 6)
    np.testing.assert_array_equal(positions[0], [0, 3, -1, -1, -1, -1])
    assert set(positions[1, :2]) == {1, 2} and np.all(positions[1, 2:] == -1)
    assert np.all(np.isneginf(scores[:, 2:]))


def test_csr_top_k_of_an_all_empty_matrix() -> None:
    positions, scores = csr_top_k(to_csr(np.full((2, 3), -1), np.zeros((2, 3)), 5), 2)
    np.testing.assert_array_equal(positions, -1)
    assert np.all(np.isneginf(scores))


def test_csr_top_k_treats_stored_minus_inf_as_padding() -> None:
    matrix = to_csr(np.array([[0, 1, 2]]), np.array([[0.5, -np.inf, 0.2]]), 3)
    positions, scores = csr_top_k(matrix, 3)
    np.testing.assert_array_equal(positions, [[0, 2, -1]])
    assert np.isneginf(scores[0, 2])


@pytest.mark.parametrize("lookup_bytes", [1, 4 * 6 * 2, 2**20])  # a row per block, 2 rows per block, all at once
def test_csr_lookup_reads_stored_values_zero_elsewhere_and_minus_inf_at_padding(monkeypatch, lookup_bytes) -> None:
    monkeypatch.setattr(sparse, "LOOKUP_BYTES", lookup_bytes)
    dense = np.array([[0, 0.5, 0, 0.25, 0, 0], [0, 0, 0, 0, 0, 0], [1.0, 0, 0, 0, 0, 2.0], [0, 3.0, 0, 0, 4.0, 0],
                      [0, 0, 0.75, 0, 0, 0]], dtype=np.float32)
    # Unsorted column indices within rows, as sparse arithmetic leaves them.
    matrix = sp.csr_matrix((np.array([0.25, 0.5, 2.0, 1.0, 4.0, 3.0, 0.75], np.float32),
                            np.array([3, 1, 5, 0, 4, 1, 2]), np.array([0, 2, 2, 4, 6, 7])), shape=(5, 6))
    assert not matrix.has_sorted_indices
    candidates = np.array([[1, 3, 0, -1], [5, 4, -1, -1], [5, 0, 1, 2], [4, 1, 4, -1], [-1, -1, -1, -1]])
    out = csr_lookup(matrix, candidates)
    expected = np.where(candidates >= 0, np.take_along_axis(dense, np.maximum(candidates, 0), axis=1), -np.inf)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(csr_lookup(matrix, candidates), expected)  # the scratch rows are left clean
