"""What a model decided for the label set and corpus at hand, and why: suggest and eval show it, the model keeps it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    """A step the model took or left out (`choice`), and why."""

    step: str
    choice: str
    why: str


def replaced(decisions: Iterable[Decision], *new: Decision) -> tuple[Decision, ...]:
    """`decisions` with those of the same steps as `new` replaced by `new`."""
    steps = {d.step for d in new}
    return tuple(d for d in decisions if d.step not in steps) + new
