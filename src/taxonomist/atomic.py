"""The one way taxonomist replaces a file: readers see the old file or the whole new one, and after a crash or
power loss the new one is on disk if the write returned.

A temp file beside the target is written, flushed, fsynced, renamed over the target (os.replace, atomic on
one file system) and then the folder is fsynced so that the rename itself survives a power loss.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from .errors import InputError


@contextmanager
def atomic_output(path: str | os.PathLike[str] | None, *, binary: bool = False, newline: str | None = "",
                  parents: bool = False, prefix: str | None = None) -> Iterator[IO]:
    """stdout for None or "-" (text only); else a handle on a temp file beside `path`, put in its place only
    when the block finishes without error. On any error the temp file goes and the old file is untouched.

    Problems found before the block runs (no folder, the path is a folder, no temp file can be made) are
    InputErrors; the block's own errors, and a failed flush, fsync or rename, come out unchanged, because only
    the caller knows what its block was doing. `parents` creates missing folders (caches, reports); `prefix`
    names the temp file so that the caller can recognise leftovers of a crash (store.py's staging prefix).
    """
    if path is None or os.fspath(path) == "-":
        if binary:
            raise ValueError("binary output needs a file path, not standard output")
        yield sys.stdout
        return
    target = Path(path)
    fd, tmp = _temp_beside(target, parents, prefix)
    try:
        text = {} if binary else {"encoding": "utf-8", "newline": newline}
        with os.fdopen(fd, "wb" if binary else "w", **text) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    with suppress(OSError):  # committed: a folder that cannot be fsynced must not turn this into an error
        fsync_dir(target.parent)


def atomic_write(path: str | os.PathLike[str], data: str | bytes, *, parents: bool = False,
                 prefix: str | None = None) -> None:
    """Replace `path` by `data` (bytes are written as they are, text as UTF-8). Here the block is only the
    write, so any OSError (a full disk) is the write's and becomes an InputError that says so."""
    try:
        with atomic_output(path, binary=isinstance(data, bytes), parents=parents, prefix=prefix) as handle:
            handle.write(data)
    except OSError as e:
        raise InputError(f"cannot write the file: {e.strerror or e}", where=str(path),
                         fix="check free disk space and the folder's permissions, then run again") from e


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make renames in `folder` durable; Windows cannot open folders and journals renames itself."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_beside(target: Path, parents: bool, prefix: str | None) -> tuple[int, str]:
    """An open temp file in the target's folder (a rename across file systems would not be atomic), with the
    permissions a plain open() would give: mkstemp's 0600 would hide a report from the other users."""
    if parents:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"cannot create the output folder: {e.strerror or e}", where=str(target),
                             fix="check the permissions of the folders above it, or write elsewhere") from e
    if not target.parent.is_dir():
        raise InputError("the output folder does not exist", where=str(target), fix="create the folder first")
    if target.is_dir():
        raise InputError("the output is a folder, not a file", where=str(target), fix="give the path of a file")
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=prefix or f".{target.name}.", suffix=".part")
    except OSError as e:
        raise InputError(f"cannot write in {target.parent}: {e.strerror or e}", where=str(target),
                         fix="check the folder's permissions and free disk space") from e
    if os.name != "nt":  # Windows has no modes beyond read-only, and mkstemp's file is writable there
        with suppress(OSError):  # a file system without Unix modes (FAT, some network shares) keeps its own
            os.fchmod(fd, 0o666 & ~_umask())
    return fd, tmp


def _umask() -> int:
    """The process umask. It can only be read by setting it; 0o077 for that instant means that a file another
    thread creates meanwhile is private rather than world-writable."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask
