"""JSON Lines: one object per line, for labels ({id, name, description, parent(s), aliases}) and documents
({id, text, labels})."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..corpus import Document
from ..errors import InputError
from ..labels import Label
from ._text import at, numbered_lines, open_bytes


def read_labels(path: Path) -> list[Label]:
    labels = []
    for _, where, obj in objects(path):
        if isinstance(obj, InputError):
            raise obj
        labels.append(
            Label(
                id=identifier(obj, "id", where),
                name=string_field(obj, "name", where, required=True),
                description=string_field(obj, "description", where),
                parents=_unique(_ids(obj, "parent", where) + _ids(obj, "parents", where)),
                aliases=_unique(_aliases(obj, where)),
                where=where,
                assignable=_flag(obj, "assignable", where, default=True),
            )
        )
    return labels


def _flag(obj: dict[str, Any], key: str, where: str, *, default: bool) -> bool:
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise InputError(f"{key!r} must be true or false, found {kind_of(value)}", where=at(where, field=key),
                         fix=f'write "{key}": false for a grouping-only label (never suggested), or leave it out')
    return value


def read_documents(path: Path) -> Iterator[Document | InputError]:
    for number, where, obj in objects(path):
        if isinstance(obj, InputError):
            yield obj
            continue
        try:
            yield Document(
                id=identifier(obj, "id", where, default=str(number)),
                text=string_field(obj, "text", where, required=True),
                labels=_doc_labels(obj, where),
                where=where,
            )
        except InputError as e:
            yield e


def objects(path: Path) -> Iterator[tuple[int, str, dict[str, Any] | InputError]]:
    """(line number, where, object) for each non-blank line; the object is an error when the line is not one."""
    source = str(path)
    with open_bytes(path) as f:
        for number, line, error in numbered_lines(f, source):
            where = at(source, number)
            if error is not None:
                yield number, where, error
            elif line.strip():
                yield number, where, _parse(line, where)


def _parse(line: str, where: str) -> dict[str, Any] | InputError:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        array = line.lstrip().startswith("[")
        return InputError(
            f"malformed JSON: {e.msg} (column {e.colno})",
            where=where,
            fix="write one JSON object per line (JSON Lines), not a JSON array"
            if array
            else "fix the JSON on this line (one complete object per line)",
        )
    if not isinstance(obj, dict):
        return InputError(
            f"expected a JSON object, found {kind_of(obj)}",
            where=where,
            fix='write one object per line: {"id": ..., ...}',
        )
    return obj


def kind_of(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), "a number"
    )


def identifier(obj: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    """Ids may be written as strings or integers; anything else is a mistake."""
    value = obj.get(key)
    if value is None and default is not None:
        return default
    if value is None:
        raise InputError(f"missing {key!r}", where=at(where, field=key), fix=f"give every line an {key!r}")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError(
            f"{key!r} must be a string, found {kind_of(value)}", where=at(where, field=key), fix=f'write "{key}": "..."'
        )
    return str(value)


def string_field(obj: dict[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = obj.get(key)
    if value is None:
        if required:
            raise InputError(f"missing {key!r}", where=at(where, field=key), fix=f"give every line a {key!r}")
        return ""
    if not isinstance(value, str):
        raise InputError(
            f"{key!r} must be a string, found {kind_of(value)}", where=at(where, field=key), fix=f'write "{key}": "..."'
        )
    return value


def _string_list(value: Any, key: str, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(
            f"{key!r} must be a list of strings, found {kind_of(value)}"
            + ("" if not isinstance(value, list) else " with non-string items"),
            where=at(where, field=key),
            fix=f'write "{key}": ["a", "b"]',
        )
    return [v.strip() for v in value if v.strip()]


def _ids(obj: dict[str, Any], key: str, where: str) -> list[str]:
    """A parent is one id (a string, never split) or a list of ids; null means none."""
    value = obj.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    return _string_list(value, key, where)


def _aliases(obj: dict[str, Any], where: str) -> list[str]:
    value = obj.get("aliases")
    if value is None:
        return []
    if isinstance(value, str):
        return [a.strip() for a in value.split("|") if a.strip()]
    return _string_list(value, "aliases", where)


def _doc_labels(obj: dict[str, Any], where: str) -> tuple[str, ...] | None:
    """A missing or null 'labels' means unlabeled; [] means labeled with none of the labels."""
    value = obj.get("labels")
    return None if value is None else _unique(_string_list(value, "labels", where))


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
