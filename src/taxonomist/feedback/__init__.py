"""Reviewers' feedback: the SQLite store (store.py), the review queue (queue.py) and folding the verdicts into a
model (fold.py). Not to be confused with taxonomist.store, the model folder."""

from .fold import FeedbackExamples, examples_from, resolve_project
from .queue import ReviewItem, review_queue
from .store import (ACCEPT, ADD, REJECT, VERDICTS, Document, Feedback, FeedbackStore, StoredSuggestion, Verdict,
                    text_sha256)

__all__ = ["ACCEPT", "ADD", "REJECT", "VERDICTS", "Document", "Feedback", "FeedbackExamples", "FeedbackStore",
           "ReviewItem", "StoredSuggestion", "Verdict", "examples_from", "resolve_project", "review_queue",
           "text_sha256"]
