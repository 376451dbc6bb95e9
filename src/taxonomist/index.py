"""Exact top-k over label vectors by chunked matrix products, so memory stays bounded at 100k labels."""

from __future__ import annotations

import numpy as np
import torch

# Largest similarity block held at once (rows × labels × 4 bytes): 32 MB (~80 rows of 100k labels) searched
# 16.7k documents' top 100 of 17k labels 1.3× and their top 11 of 16.7k documents 1.6× faster than 128 MB.
BLOCK_BYTES = 32 * 2**20


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of a dense score block, best first: (positions, values).

    torch.topk rather than np.argpartition: ~20× faster on wide rows (100k labels), and torch is here anyway.
    """
    k = min(k, scores.shape[1])
    values, positions = torch.topk(torch.from_numpy(np.ascontiguousarray(scores)), k, dim=1, sorted=True)
    return positions.numpy().astype(np.int64), values.numpy()


class LabelIndex:
    """Label vectors (L2-normalised, float32) searched exactly by cosine similarity."""

    def __init__(self, vectors: np.ndarray, *, block_bytes: int = BLOCK_BYTES) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.block_bytes = block_bytes

    def __len__(self) -> int:
        return self.vectors.shape[0]

    def rows_per_block(self) -> int:
        return max(1, self.block_bytes // (4 * max(1, len(self))))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k labels per query row: (positions int64 (n, k), scores float32 (n, k))."""
        n = queries.shape[0]
        k = min(k, len(self))
        positions = np.empty((n, k), dtype=np.int64)
        scores = np.empty((n, k), dtype=np.float32)
        step = self.rows_per_block()
        for start in range(0, n, step):
            block = queries[start : start + step] @ self.vectors.T
            positions[start : start + step], scores[start : start + step] = top_k(block, k)
        return positions, scores

    def add(self, vectors: np.ndarray) -> None:
        """Append labels: a new label is suggestible as soon as its vector is in the index."""
        self.vectors = np.vstack([self.vectors, np.asarray(vectors, dtype=np.float32)])

    def copy(self) -> "LabelIndex":
        """An index to grow without changing this one (`add` replaces the vectors, never writes into them)."""
        return LabelIndex(self.vectors, block_bytes=self.block_bytes)


class GraphIndex:
    """Unit vectors searched approximately by cosine similarity through a navigable graph (faiss HNSW).

    For many vectors searched by many queries, where an exact search is a matrix product with all of them
    per query: on 65k wordnet-taxonomy training documents (static 256-d encoder, k=20) it finds 91% of the
    exact neighbours for a 4.5× smaller share of CPU, and the nearest-examples scorer built on it loses
    0.06 P@1. Building the graph costs about as much as 14k exact queries (11 s of CPU), so a set searched
    only a few times is better searched exactly. The graph holds its own copy of the vectors.
    """

    def __init__(self, vectors: np.ndarray, *, links: int = 16, build_effort: int = 40, search_effort: int = 64) -> None:
        import faiss

        self.graph = faiss.IndexHNSWFlat(vectors.shape[1], links, faiss.METRIC_INNER_PRODUCT)
        self.graph.hnsw.efConstruction = build_effort
        self.graph.hnsw.efSearch = search_effort
        self.add(vectors)

    def __len__(self) -> int:
        return self.graph.ntotal

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k vectors per query row, best first: (positions int64 (n, k), scores float32 (n, k))."""
        import faiss

        k = min(k, len(self))
        # The graph's candidate list must hold k results; faiss takes it per call, not per index.
        params = faiss.SearchParametersHNSW(efSearch=max(self.graph.hnsw.efSearch, k))
        scores, positions = self.graph.search(np.ascontiguousarray(queries, dtype=np.float32), k, params=params)
        return positions.astype(np.int64), scores

    def add(self, vectors: np.ndarray) -> None:
        self.graph.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def copy(self) -> "GraphIndex":
        """An independent graph, to grow without changing this one."""
        return GraphIndex.from_bytes(self.to_bytes())

    def to_bytes(self) -> np.ndarray:
        """The graph and its vectors as uint8, for saving; `from_bytes` reverses it."""
        import faiss

        return faiss.serialize_index(self.graph)

    @classmethod
    def from_bytes(cls, data: np.ndarray) -> "GraphIndex":
        import faiss

        index = object.__new__(cls)
        index.graph = faiss.deserialize_index(np.asarray(data, dtype=np.uint8))
        return index
