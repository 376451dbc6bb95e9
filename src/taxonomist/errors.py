"""Errors a user can fix, by kind: each says what is wrong, where, and how to fix it, and maps to an HTTP status
so that the CLI prints it without a traceback and a server answers with the right code."""

from __future__ import annotations


class TaxonomistError(Exception):
    """A problem the user can fix. Printed as two lines: what is wrong (after where, when known), then the fix."""

    http_status = 400

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what, self.where, self.fix = what, where, fix
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        return f"{text}\n  fix: {self.fix}" if self.fix else text


class InputError(TaxonomistError, ValueError):
    """Bad input: a labels or documents file, an option or an argument that cannot be used as given (a
    ValueError too, as scikit-learn's estimators raise for bad parameters)."""


class NotFoundError(TaxonomistError):
    """Something named does not exist: a project, a label, a document."""

    http_status = 404


class NotSupportedError(TaxonomistError):
    """A request this model or project cannot serve as it is (learning on a read-only project, updating a model
    trained without examples): not wrong in itself, so not bad input."""

    http_status = 403


class ModelError(TaxonomistError):
    """An encoder or model that cannot be loaded or does not match what it claims to be: until it is replaced,
    the service it backs is unavailable."""

    http_status = 503
