"""The shared atomic writer: whole file or old file, durable (file and folder fsynced), normal permissions,
and errors that say how to fix them."""

from __future__ import annotations

import errno
import os
import stat
import sys

import pytest

from taxonomist import atomic
from taxonomist.atomic import atomic_output, atomic_write
from taxonomist.errors import InputError


class Boom(Exception):
    pass


def names(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def umask():
    """Set the process umask for one test and put the old one back."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def test_a_finished_block_replaces_the_file(tmp_path):
    path = tmp_path / "out.tsv"
    path.write_text("old\n", encoding="utf-8")
    with atomic_output(path) as handle:
        handle.write("new\r\nrow\n")
        assert path.read_text(encoding="utf-8") == "old\n"  # nothing shows until the block finishes
    assert path.read_bytes() == b"new\r\nrow\n"  # newline="": written as given (csv writes its own \r\n)
    assert names(tmp_path) == ["out.tsv"]


@pytest.mark.parametrize("error", [Boom("mid-write"), KeyboardInterrupt(), OSError(errno.ENOSPC, "No space")])
@pytest.mark.parametrize("existed", [True, False])
def test_an_error_mid_write_keeps_the_old_file_or_none(tmp_path, error, existed):
    path = tmp_path / "out.txt"
    if existed:
        path.write_text("old", encoding="utf-8")
    with pytest.raises(type(error)):  # the block's own error comes out unchanged
        with atomic_output(path) as handle:
            handle.write("half of the new" * 10_000)
            handle.flush()
            raise error
    assert names(tmp_path) == (["out.txt"] if existed else [])  # no temp file left either
    if existed:
        assert path.read_text(encoding="utf-8") == "old"


def test_a_failed_rename_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "out.txt"
    path.write_text("old", encoding="utf-8")

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", full)
    with pytest.raises(InputError, match="No space left on device") as info:
        atomic_write(path, "new")
    assert info.value.where == str(path) and "free disk space" in info.value.fix
    assert path.read_text(encoding="utf-8") == "old" and names(tmp_path) == ["out.txt"]


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_permissions_follow_the_umask_not_mkstemp(tmp_path, umask, mask, mode):
    umask(mask)
    atomic_write(tmp_path / "report.html", "<html>")
    assert stat.S_IMODE((tmp_path / "report.html").stat().st_mode) == mode
    assert os.umask(mask) == mask  # reading it put it back


def test_binary_mode_writes_bytes_as_they_are(tmp_path):
    data = bytes(range(256)) + b"\r\n\n"
    atomic_write(tmp_path / "blob.bin", data)
    assert (tmp_path / "blob.bin").read_bytes() == data
    with atomic_output(tmp_path / "blob.bin", binary=True) as handle:
        handle.write(b"\x00")
    assert (tmp_path / "blob.bin").read_bytes() == b"\x00"


@pytest.mark.parametrize("path", [None, "-"])
def test_none_and_dash_are_standard_output(capsys, path):
    with atomic_output(path) as handle:
        assert handle is sys.stdout
        handle.write("to stdout\n")
    assert capsys.readouterr().out == "to stdout\n"
    with pytest.raises(ValueError, match="binary"):
        with atomic_output(path, binary=True):
            pass


def test_file_then_folder_are_fsynced(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    atomic_write(tmp_path / "out.txt", "data")
    assert synced == (["file"] if os.name == "nt" else ["file", "folder"])


def test_a_failed_folder_fsync_does_not_undo_a_committed_write(tmp_path, monkeypatch):
    def fail(folder):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(atomic, "fsync_dir", fail)
    atomic_write(tmp_path / "out.txt", "new")
    assert (tmp_path / "out.txt").read_text(encoding="utf-8") == "new"


def test_a_missing_folder_says_to_create_it(tmp_path):
    path = tmp_path / "no-such-folder" / "out.tsv"
    with pytest.raises(InputError) as info:
        with atomic_output(path):
            pytest.fail("the block must not run")
    assert info.value.what == "the output folder does not exist"
    assert info.value.where == str(path) and info.value.fix == "create the folder first"
    atomic_write(path, "made", parents=True)  # unless asked to make it
    assert path.read_text(encoding="utf-8") == "made"


def test_a_folder_is_not_a_file(tmp_path):
    with pytest.raises(InputError) as info:
        atomic_write(tmp_path, "x")
    assert info.value.what == "the output is a folder, not a file" and info.value.fix


def test_no_temp_file_names_the_folder_and_the_fix(tmp_path, monkeypatch):
    def refuse(**kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    with pytest.raises(InputError) as info:
        atomic_write(tmp_path / "out.txt", "x")
    assert info.value.what == f"cannot write in {tmp_path}: Permission denied"
    assert "permissions" in info.value.fix and "disk space" in info.value.fix


def test_the_temp_file_sits_beside_the_target_with_the_callers_prefix(tmp_path):
    with atomic_output(tmp_path / "manifest.json", prefix=".staging-manifest.json.") as handle:
        (temp,) = tmp_path.iterdir()
        assert temp.name.startswith(".staging-manifest.json.")
        assert temp.stat().st_ino == os.fstat(handle.fileno()).st_ino
        handle.write("{}")
    assert names(tmp_path) == ["manifest.json"]
