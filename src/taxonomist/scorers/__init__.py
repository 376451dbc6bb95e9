"""Scorers: each a way of knowing that a label fits a document, all scoring (document, candidate) pairs
(see scorers/base.py for the protocol and scorers/registry.py for the list)."""

from .base import EXAMPLES, LABEL_TEXTS, Batch, FitInput, Scorer, candidate_dots, gather

__all__ = ["EXAMPLES", "LABEL_TEXTS", "Batch", "FitInput", "Scorer", "candidate_dots", "gather"]
