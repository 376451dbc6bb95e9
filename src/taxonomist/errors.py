"""One error type for everything a user can get wrong, so the CLI can print it without a traceback."""

from __future__ import annotations


class TaxonomistError(Exception):
    """A problem the user can fix: says what is wrong, where (file:line, field), and how to fix it."""

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what, self.where, self.fix = what, where, fix
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        return f"{text}\n  fix: {self.fix}" if self.fix else text


class InputError(TaxonomistError):
    """A labels or documents file that cannot be read as given."""


class ModelError(TaxonomistError):
    """An encoder or model that cannot be loaded or does not match what it claims to be."""
