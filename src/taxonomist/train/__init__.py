"""Training: the Trainer (trainer.py), cross-fitting into the out-of-fold record (cross_fit.py) and the
fine-tuning policy (tuning.py)."""

from .trainer import Trainer

__all__ = ["Trainer"]
