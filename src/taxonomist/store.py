"""Model folders that survive crashes: content-addressed objects plus one manifest written last.

A save stages new files, moves them to ``objects/<stem>.<sha12><suffix>`` (reusing any object that is
already there, so an incremental save writes only what changed), and commits by atomically replacing
``manifest.json``. Until that replace the old manifest and every object it names are untouched, so a
crash or a full disk at any point leaves the previous model loadable.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import taxonomist
from taxonomist.atomic import atomic_output
from taxonomist.atomic import fsync_dir as _fsync_dir  # objects and staged folders; tests patch it
from taxonomist.errors import InputError, ModelError

# 2: nearest examples may be a faiss graph and the fusion boosted trees, which format-1 readers cannot load.
# 3: the model may carry its own fine-tuned encoder (an "encoder" folder), which a format-2 reader would ignore.
# 4: each part in its own entry under its registered name (persist.py), with the configuration and the
# out-of-fold record. Formats 1-3 stored parts by class and attribute name; they are refused with the advice to
# retrain (taxonomist 0.1 wrote them).
FORMAT_VERSION = 4
READABLE_FORMATS = (4,)
MANIFEST = "manifest.json"
STAGING_PREFIX = ".staging-"
_OBJECT_NAME = re.compile(r"\.[0-9a-f]{12}(\.|$)")  # what save names objects; anything else is not ours


@dataclass(frozen=True)
class StoredModel:
    """A verified model folder: the caller's meta and where each saved entry now lives."""

    path: Path
    meta: dict
    manifest: dict

    def entry(self, name: str) -> Path:
        """Real path of an entry given to save_model (the object, not the staging name)."""
        entries = self.manifest["entries"]
        if name not in entries:
            raise ModelError(f"the model has no {name!r}", where=str(self.path),
                             fix=f"it holds {sorted(entries) or 'nothing'}; retrain it with this taxonomist version")
        return self.path / entries[name]["object"]


def save_model(path: str | os.PathLike, meta: dict, write: Callable[[Path], None], *,
               overwrite: bool = True) -> StoredModel:
    """Let `write` fill a staging folder, then commit its top-level entries as the model at `path`."""
    model = Path(path)
    json.dumps(meta)  # fail on un-serialisable meta before doing any work
    had_model = _existing_model(model, overwrite)
    created_model = not model.exists()
    objects, staging, created = model / "objects", None, []
    try:
        model.mkdir(parents=True, exist_ok=True)
        for leftover in model.glob(f"{STAGING_PREFIX}*"):  # from a crashed save; nothing refers to them
            _remove(leftover)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=model))
        write(staging)
        entries = {item.name: _describe(item) for item in sorted(staging.iterdir())}
        objects.mkdir(exist_ok=True)
        for name, entry in entries.items():
            entry["object"] = f"objects/{Path(name).stem}.{entry['sha256'][:12]}{Path(name).suffix}"
            target = model / entry["object"]
            if target.exists() and _describe(target)["sha256"] == entry["sha256"]:
                continue  # kept from an earlier save; re-hashed so that a damaged copy is replaced, not reused
            _remove(target)
            os.rename(staging / name, target)
            created.append(target)
        _fsync_dir(objects)
        manifest = {"format": FORMAT_VERSION, "taxonomist_version": taxonomist.__version__,
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "meta": meta, "entries": entries}
        _write_manifest(model, manifest)
    except BaseException as error:
        # Whatever manifest is on disk now (the old one, or the new one if interrupted just after the
        # replace) keeps every object it names; only this save's other leftovers go.
        for target in set(created) - _referenced(model):
            _remove(target)
        if staging is not None:
            _remove(staging)
        with contextlib.suppress(OSError):
            objects.rmdir()  # only goes if empty, i.e. this save made it
        if created_model and not (model / MANIFEST).exists():
            _remove(model)
        if isinstance(error, InputError) and isinstance(error.__cause__, OSError):
            error = error.__cause__  # a writer's failure (the manifest's temp file, say) is a failed save too
        elif not isinstance(error, OSError):
            raise
        full = error.errno in (errno.ENOSPC, errno.EDQUOT)
        unchanged = f"the previous model at {model} is unchanged" if had_model else "nothing was saved"
        raise ModelError(f"could not save the model: {'disk full' if full else error.strerror or error}",
                         where=str(model),
                         fix=f"{'free space' if full else 'check permissions and free space'} "
                             f"(or save elsewhere) and save again; {unchanged}") from error
    with contextlib.suppress(OSError):  # committed: tidying up must not turn a good save into an error
        for item in set(objects.iterdir()) - {model / entry["object"] for entry in entries.values()}:
            _remove(item)
        _remove(staging)
    return StoredModel(model, meta, manifest)


def load_model(path: str | os.PathLike, *, verify: bool = True) -> StoredModel:
    """Open a saved model, refusing one that is missing, half-written, from another version, or damaged.

    `verify` re-hashes every file (catches silent corruption); without it only existence and sizes
    are checked, which still catches truncation and costs no reading.
    """
    model = Path(path)
    retrain = _retrain(model)
    if not model.exists():
        raise ModelError("no model here", where=str(model), fix="check the path, or " + retrain)
    if not model.is_dir():
        raise ModelError("a model is a folder, but this is a file", where=str(model),
                         fix="give the folder that `taxonomist train --out` wrote")
    if not (model / MANIFEST).is_file():
        staged = any(model.glob(f"{STAGING_PREFIX}*"))
        raise ModelError("no manifest.json: not a taxonomist model, or a save was interrupted before it finished"
                         + (" (a leftover staging folder shows an interrupted save)" if staged else ""),
                         where=str(model), fix=retrain)
    manifest = _read_manifest(model)
    written = manifest.get("format")
    if written not in READABLE_FORMATS:
        version = manifest.get("taxonomist_version", "an unknown version")
        newer = isinstance(written, int) and written > FORMAT_VERSION
        raise ModelError(
            f"model format {written} was written by taxonomist {version}; taxonomist {taxonomist.__version__} "
            f"reads formats {', '.join(map(str, READABLE_FORMATS))}", where=str(model / MANIFEST),
            fix=f"upgrade taxonomist to {version} or newer, or {retrain}" if newer else retrain)
    try:
        for name, entry in manifest["entries"].items():
            obj = model / _inside("objects", entry["object"], depth=2)
            if entry["kind"] not in ("file", "folder"):
                raise ValueError(f"unknown kind {entry['kind']!r}")
            files = entry["files"] if entry["kind"] == "folder" else {".": entry}
            for relative, expected in files.items():
                _check(obj / _inside(".", relative), expected, verify, name, retrain)
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise ModelError(f"manifest.json is damaged ({type(error).__name__}: {error})",
                         where=str(model / MANIFEST), fix=retrain) from error
    return StoredModel(model, manifest.get("meta", {}), manifest)


def _existing_model(model: Path, overwrite: bool) -> bool:
    """Whether a model is already there; refuses anything save must not replace."""
    if not model.exists():
        return False
    if not model.is_dir():
        raise ModelError("cannot save a model here: it is a file", where=str(model), fix="give a folder path")
    if (model / MANIFEST).is_file():
        if not overwrite:
            raise ModelError("a model already exists here", where=str(model),
                             fix="choose another folder, or allow overwriting it")
        return True
    ours = (item.name.startswith(STAGING_PREFIX) or (item.name == "objects" and item.is_dir() and all(
        _OBJECT_NAME.search(obj.name) for obj in item.iterdir())) for item in model.iterdir())
    if not all(ours):
        raise ModelError("the folder is not empty and is not a taxonomist model; refusing to overwrite it",
                         where=str(model), fix="give an empty or new folder, or an existing model folder")
    return False


def _describe(item: Path) -> dict:
    """Size and sha256 of a staged entry (a folder hashes as its sorted file list), fsyncing as it reads."""
    if item.is_symlink() or not (item.is_file() or item.is_dir()):
        raise ValueError(f"{item} is neither a file nor a folder; save_model stores only those")
    if item.is_file():
        size, digest = _hash(item, sync=True)
        return {"kind": "file", "bytes": size, "sha256": digest}
    files = {}
    for folder, _, names in sorted(os.walk(item)):
        for name in sorted(names):
            size, digest = _hash(Path(folder, name), sync=True)
            files[Path(folder, name).relative_to(item).as_posix()] = {"bytes": size, "sha256": digest}
        _fsync_dir(Path(folder))
    tree = "".join(f"{relative}\0{file['sha256']}\n" for relative, file in files.items())
    return {"kind": "folder", "bytes": sum(f["bytes"] for f in files.values()),
            "sha256": hashlib.sha256(tree.encode()).hexdigest(), "files": files}


def _hash(path: Path, *, sync: bool = False) -> tuple[int, str]:
    """Streamed sha256, so verifying a large model never holds a file in memory."""
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
        if sync:
            os.fsync(f.fileno())
        return os.fstat(f.fileno()).st_size, digest


def _write_manifest(model: Path, manifest: dict) -> None:
    """Readers see the old manifest or the new one. The temp file carries the staging prefix, so that a crash
    leaves only what the next save already removes."""
    with atomic_output(model / MANIFEST, prefix=f"{STAGING_PREFIX}{MANIFEST}.") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)


def _read_manifest(model: Path) -> dict:
    try:
        manifest = json.loads((model / MANIFEST).read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as error:
        raise ModelError(f"manifest.json cannot be read, the model is damaged ({error})",
                         where=str(model / MANIFEST), fix=_retrain(model)) from error
    return manifest


def _retrain(model: Path) -> str:
    return f"retrain it with `taxonomist train ... --out {model}`"


def _inside(base: str, relative: str, *, depth: int | None = None) -> str:
    """A manifest path must stay inside the model folder, whoever wrote the manifest."""
    parts = Path(relative).parts
    if Path(relative).is_absolute() or ".." in parts or (depth and (len(parts) != depth or parts[0] != base)):
        raise ValueError(f"path {relative!r} points outside {base}")
    return relative


def _referenced(model: Path) -> set[Path]:
    """Objects that the manifest now on disk names: a failed save must never delete these."""
    try:
        return {model / entry["object"] for entry in _read_manifest(model)["entries"].values()}
    except (ModelError, KeyError, TypeError, AttributeError):
        return set()


def _check(path: Path, expected: dict, verify: bool, entry: str, fix: str) -> None:
    if not path.is_file():
        raise ModelError(f"model file for {entry!r} is missing (incomplete copy?)", where=str(path), fix=fix)
    size = path.stat().st_size
    if size != expected["bytes"]:
        raise ModelError(f"model file for {entry!r} is truncated or altered: {size} bytes, expected "
                         f"{expected['bytes']}", where=str(path), fix="copy the model again, or " + fix)
    if verify and _hash(path)[1] != expected["sha256"]:
        raise ModelError(f"model file for {entry!r} is corrupt: its sha256 does not match the manifest",
                         where=str(path), fix="copy the model again, or " + fix)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
