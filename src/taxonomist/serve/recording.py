"""What a server with a feedback store keeps of each suggest answer: the documents and the suggestions served
for them, with the model's checksum, so that the review queue reads its uncertainty off what people were shown."""

from __future__ import annotations

from collections.abc import Sequence

from ..feedback import FeedbackStore
from .projects import ServedProject

Served = Sequence[tuple[str, float, float | None]]  # (label id, score, probability or None), best first


def record(store: FeedbackStore | None, served: ServedProject, texts: Sequence[str],
           refs: Sequence[str | None], answers: Sequence[Served]) -> list[int] | None:
    """The documents' ids in the store (None without a store), all recorded in one transaction."""
    if store is None:
        return None
    return store.record_served(served.project_id, list(zip(texts, refs, answers)), model_checksum=served.checksum())
