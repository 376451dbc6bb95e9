"""Per-document candidate lists as sparse rows: the common currency between retrieval and re-scoring."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .index import top_k


def to_csr(candidates: np.ndarray, values: np.ndarray, n_labels: int) -> sp.csr_matrix:
    """(n, C) positions (-1 padding) and values → CSR (n, n_labels); duplicates are summed."""
    n, c = candidates.shape
    valid = candidates >= 0
    rows = np.repeat(np.arange(n), c).reshape(n, c)[valid]
    out = sp.csr_matrix((values[valid].astype(np.float32), (rows, candidates[valid])), shape=(n, n_labels))
    out.sum_duplicates()
    return out


# Dense scratch rows of csr_lookup: small enough to stay in cache (measured 2-4 MB best, 64 MB 1.6× slower).
LOOKUP_BYTES = 4 * 2**20


def csr_top_k(matrix: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of a CSR matrix's stored entries: (positions, values), padded with -1 / -inf."""
    n = matrix.shape[0]
    positions = np.full((n, k), -1, dtype=np.int64)
    values = np.full((n, k), -np.inf, dtype=np.float32)
    matrix = matrix.tocsr()
    lengths = np.diff(matrix.indptr)
    width = int(lengths.max()) if n else 0
    if width == 0:
        return positions, values
    # Pad rows into a dense (n, width) block: width is the longest candidate list, not the label count.
    dense_vals = np.full((n, width), -np.inf, dtype=np.float32)
    dense_pos = np.full((n, width), -1, dtype=np.int64)
    rows = np.repeat(np.arange(n), lengths)
    cols = np.arange(len(matrix.data)) - np.repeat(matrix.indptr[:-1], lengths)
    dense_vals[rows, cols] = matrix.data
    dense_pos[rows, cols] = matrix.indices
    take = min(k, width)
    slots, values[:, :take] = top_k(dense_vals, take)  # torch.topk: 4× faster here than argpartition + argsort
    positions[:, :take] = np.take_along_axis(dense_pos, slots, axis=1)
    positions[~np.isfinite(values)] = -1
    return positions, values


def csr_lookup(matrix: sp.csr_matrix, candidates: np.ndarray) -> np.ndarray:
    """matrix[i, candidates[i, j]] for every slot: 0.0 where the matrix stores nothing, -inf at padding (-1).

    A block of rows is scattered into dense scratch rows, read at the candidates, and zeroed again: ~7×
    faster than scipy's fancy indexing on rows of ~600 unsorted entries (it scans each row per lookup).
    The matrix must not hold duplicate entries (to_csr and sparse arithmetic leave none).
    """
    matrix = matrix.tocsr()
    n, n_labels = matrix.shape
    out = np.empty(candidates.shape, dtype=np.float32)
    step = max(1, LOOKUP_BYTES // (4 * max(1, n_labels)))
    scratch = np.zeros((min(step, n), n_labels), dtype=np.float32)
    indptr = matrix.indptr
    for start in range(0, n, step):
        stop = min(start + step, n)
        entries = slice(indptr[start], indptr[stop])
        rows = np.repeat(np.arange(stop - start), np.diff(indptr[start : stop + 1]))
        cols = matrix.indices[entries]
        scratch[rows, cols] = matrix.data[entries]
        out[start:stop] = np.take_along_axis(scratch[: stop - start], np.maximum(candidates[start:stop], 0), axis=1)
        scratch[rows, cols] = 0.0
    out[candidates < 0] = -np.inf
    return out


def union(*candidate_lists: np.ndarray) -> np.ndarray:
    """Per row, the distinct positions of several (n, C_i) candidate arrays, padded with -1 (order not kept)."""
    merged = np.sort(np.concatenate(candidate_lists, axis=1), axis=1)
    repeated = np.zeros(merged.shape, dtype=bool)
    repeated[:, 1:] = merged[:, 1:] == merged[:, :-1]
    merged[repeated] = -1
    merged = -np.sort(-merged, axis=1)  # real positions first, padding last
    width = int((merged >= 0).sum(axis=1).max()) if merged.size else 0
    return np.ascontiguousarray(merged[:, : max(width, 1)])
