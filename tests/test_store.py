"""Model folders: round trip, incremental saves, every refusal on load, and crashes that must lose nothing."""

from __future__ import annotations

import errno
import hashlib
import json
import os

import pytest

import taxonomist
from taxonomist import atomic, store
from taxonomist.errors import ModelError
from taxonomist.store import FORMAT_VERSION, load_model, save_model

FIRST = {"config.json": b'{"k": 3}', "arrays.npz": b"\x00\x01" * 10, "xmc/tree.bin": b"tree", "xmc/sub/w.bin": b"w1"}
SECOND = {**FIRST, "arrays.npz": b"\x09" * 7, "xmc/sub/w.bin": b"w2"}


def writer(files: dict[str, bytes]):
    """A `write` callback that lays out `files` (relative path -> bytes) in the staging folder."""

    def write(staging):
        for relative, content in files.items():
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            (staging / relative).write_bytes(content)

    return write


def contents(model) -> dict[str, bytes]:
    """Every saved file as the staging layout had it, read back through the manifest."""
    out = {}
    for name, entry in model.manifest["entries"].items():
        if entry["kind"] == "file":
            out[name] = model.entry(name).read_bytes()
        else:
            out.update({f"{name}/{rel}": (model.entry(name) / rel).read_bytes() for rel in entry["files"]})
    return out


def error(path, **options) -> ModelError:
    with pytest.raises(ModelError) as info:
        load_model(path, **options)
    assert info.value.fix and info.value.where
    return info.value


@pytest.fixture
def saved(tmp_path):
    """A model saved once with FIRST, plus what its folder held right after."""
    model = tmp_path / "model"
    save_model(model, {"labels": "abc"}, writer(FIRST))
    return model, sorted(p.name for p in (model / "objects").iterdir())


def test_round_trip_keeps_files_folders_and_meta(tmp_path):
    saved = save_model(tmp_path / "m", {"labels": "abc", "n": 2}, writer(FIRST))
    loaded = load_model(tmp_path / "m")
    assert loaded.meta == {"labels": "abc", "n": 2} == saved.meta
    assert contents(loaded) == FIRST
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["format"] == FORMAT_VERSION and manifest["taxonomist_version"] == taxonomist.__version__
    assert manifest["created"].endswith("+00:00")
    arrays, xmc = manifest["entries"]["arrays.npz"], manifest["entries"]["xmc"]
    assert arrays["kind"] == "file" and arrays["bytes"] == 20
    assert arrays["sha256"] == hashlib.sha256(FIRST["arrays.npz"]).hexdigest()
    assert arrays["object"] == f"objects/arrays.{arrays['sha256'][:12]}.npz"
    assert xmc["kind"] == "folder" and xmc["bytes"] == 6 and set(xmc["files"]) == {"tree.bin", "sub/w.bin"}
    assert loaded.entry("xmc").is_dir() and loaded.entry("xmc").parent.name == "objects"
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["manifest.json", "objects"]


def test_missing_entry_is_a_model_error(saved):
    with pytest.raises(ModelError, match="no 'labels.jsonl'"):
        load_model(saved[0]).entry("labels.jsonl")


def test_second_save_reuses_unchanged_objects_and_drops_unreferenced(saved):
    model, _ = saved
    before = load_model(model)
    config_inode = before.entry("config.json").stat().st_ino
    after = save_model(model, {"labels": "abd"}, writer(SECOND))
    assert after.entry("config.json") == before.entry("config.json")
    assert after.entry("config.json").stat().st_ino == config_inode  # not rewritten
    assert after.entry("arrays.npz") != before.entry("arrays.npz") and after.entry("xmc") != before.entry("xmc")
    assert not before.entry("arrays.npz").exists() and not before.entry("xmc").exists()
    assert {p.name for p in (model / "objects").iterdir()} == {
        after.entry(name).name for name in after.manifest["entries"]}
    assert contents(load_model(model)) == SECOND and load_model(model).meta == {"labels": "abd"}


def test_saving_again_replaces_a_damaged_object_instead_of_reusing_it(saved):
    model, _ = saved
    loaded = load_model(model)
    loaded.entry("arrays.npz").write_bytes(FIRST["arrays.npz"][::-1])
    (loaded.entry("xmc") / "tree.bin").write_bytes(b"TREE")
    save_model(model, {}, writer(FIRST))
    assert contents(load_model(model)) == FIRST


def test_overwrite_false_refuses_an_existing_model(saved):
    with pytest.raises(ModelError, match="already exists"):
        save_model(saved[0], {}, writer(SECOND), overwrite=False)
    assert contents(load_model(saved[0])) == FIRST


def test_refuses_to_save_over_a_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "objects").mkdir()
    (tmp_path / "objects" / "thesis.tex").write_text("years of work")
    with pytest.raises(ModelError, match="not a taxonomist model") as info:
        save_model(tmp_path, {}, writer(FIRST))
    assert info.value.fix
    assert (tmp_path / "objects" / "thesis.tex").read_text() == "years of work"
    assert [p.name for p in tmp_path.iterdir()] == ["objects"]
    with pytest.raises(ModelError, match="it is a file"):
        save_model(tmp_path / "objects" / "thesis.tex", {}, writer(FIRST))


def test_saves_into_an_empty_folder_and_over_a_crashed_first_save(tmp_path):
    (tmp_path / "empty").mkdir()
    save_model(tmp_path / "empty", {}, writer(FIRST))
    assert contents(load_model(tmp_path / "empty")) == FIRST
    crashed = tmp_path / "crashed"
    (crashed / ".staging-abc" / "xmc").mkdir(parents=True)
    (crashed / "objects").mkdir()
    (crashed / "objects" / "arrays.0123456789ab.npz").write_bytes(b"half")
    assert "interrupted" in str(error(crashed))
    save_model(crashed, {}, writer(FIRST), overwrite=False)
    assert contents(load_model(crashed)) == FIRST
    assert not list(crashed.glob(".staging-*")) and not (crashed / "objects" / "arrays.0123456789ab.npz").exists()


def test_leftover_staging_is_ignored_by_load_and_removed_by_the_next_save(saved):
    model, _ = saved
    (model / ".staging-x1" / "junk").mkdir(parents=True)
    (model / ".staging-manifest.json.x2").write_text("{")
    assert contents(load_model(model)) == FIRST
    save_model(model, {}, writer(SECOND))
    assert not list(model.glob(".staging-*"))


@pytest.mark.parametrize("setup, message", [
    (lambda m: None, "no model here"),
    (lambda m: m.write_text("x"), "is a file"),
    (lambda m: m.mkdir(), "not a taxonomist model, or a save was interrupted"),
])
def test_load_refuses_what_is_not_a_model(tmp_path, setup, message):
    setup(tmp_path / "m")
    assert message in str(error(tmp_path / "m"))
    assert "staging" not in str(error(tmp_path / "m"))


def edit_manifest(model, change):
    manifest = json.loads((model / "manifest.json").read_text())
    change(manifest)
    (model / "manifest.json").write_text(json.dumps(manifest))


def test_load_refuses_a_damaged_or_foreign_manifest(saved):
    model, _ = saved
    original = (model / "manifest.json").read_text()
    (model / "manifest.json").write_text(original[:-20])
    assert "manifest.json cannot be read" in str(error(model))
    (model / "manifest.json").write_text("[1, 2]")
    assert "not a JSON object" in str(error(model))

    (model / "manifest.json").write_text(original)
    edit_manifest(model, lambda m: m.update(format=FORMAT_VERSION + 1, taxonomist_version="9.0"))
    newer = error(model)
    assert f"format {FORMAT_VERSION + 1} was written by taxonomist 9.0" in newer.what
    assert "upgrade taxonomist to 9.0" in newer.fix
    edit_manifest(model, lambda m: m.update(format=0, taxonomist_version="0.0.1"))
    older = error(model)
    assert "taxonomist 0.0.1" in older.what and "retrain" in older.fix and "upgrade" not in older.fix
    edit_manifest(model, lambda m: m.update(format=3, taxonomist_version="0.1.0"))  # parts by class and attribute
    earlier = error(model)
    assert "format 3 was written by taxonomist 0.1.0" in earlier.what and "retrain" in earlier.fix

    (model / "manifest.json").write_text(original)
    edit_manifest(model, lambda m: m["entries"]["config.json"].update(object="../../etc/passwd"))
    assert "damaged" in str(error(model))
    (model / "manifest.json").write_text(original)
    edit_manifest(model, lambda m: m["entries"]["xmc"].pop("files"))
    assert "damaged" in str(error(model))


def test_load_refuses_missing_truncated_and_corrupt_files(saved):
    model, _ = saved
    loaded = load_model(model)
    arrays, weights = loaded.entry("arrays.npz"), loaded.entry("xmc") / "sub" / "w.bin"

    arrays.write_bytes(FIRST["arrays.npz"][::-1])  # same size, other bytes
    assert "corrupt" in str(error(model))
    assert load_model(model, verify=False).meta == {"labels": "abc"}  # sizes only
    arrays.write_bytes(FIRST["arrays.npz"])
    assert contents(load_model(model)) == FIRST

    weights.write_bytes(b"w")
    for verify in (True, False):
        problem = error(model, verify=verify)
        assert "truncated" in problem.what and problem.where == str(weights)
    weights.unlink()
    assert "missing" in str(error(model, verify=False))
    loaded.entry("config.json").unlink()
    assert "'config.json' is missing" in str(error(model))


def enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def fail_rename_into_objects(real):
    """os.rename that fills the disk on the second object, after one has already been moved."""
    calls = []

    def rename(source, target):
        if "objects" in str(target):
            calls.append(target)
            if len(calls) == 2:
                enospc()
        return real(source, target)

    return rename


@pytest.mark.parametrize("where", ["write callback", "object move", "manifest write", "manifest replace"])
def test_disk_full_during_save_leaves_the_previous_model_intact(saved, monkeypatch, where):
    model, objects_before = saved
    manifest_before = (model / "manifest.json").read_bytes()
    write = writer(SECOND)
    if where == "write callback":
        def write(staging):
            writer(SECOND)(staging)
            enospc()
    elif where == "object move":
        monkeypatch.setattr(os, "rename", fail_rename_into_objects(os.rename))
    elif where == "manifest write":
        monkeypatch.setattr(json, "dump", enospc)
    else:
        real_replace = os.replace
        monkeypatch.setattr(os, "replace", lambda s, t: enospc() if str(t).endswith("manifest.json")
                            else real_replace(s, t))

    with pytest.raises(ModelError) as info:
        save_model(model, {"labels": "new"}, write)
    monkeypatch.undo()
    assert "could not save the model: disk full" in info.value.what
    assert f"the previous model at {model} is unchanged" in info.value.fix and "free space" in info.value.fix
    assert (model / "manifest.json").read_bytes() == manifest_before
    assert sorted(p.name for p in (model / "objects").iterdir()) == objects_before
    assert sorted(p.name for p in model.iterdir()) == ["manifest.json", "objects"]
    loaded = load_model(model)
    assert contents(loaded) == FIRST and loaded.meta == {"labels": "abc"}


def test_a_bug_in_write_is_raised_unchanged_after_cleaning_up(saved):
    model, objects_before = saved

    def write(staging):
        writer(SECOND)(staging)
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        save_model(model, {}, write)
    assert sorted(p.name for p in (model / "objects").iterdir()) == objects_before
    assert not list(model.glob(".staging-*")) and contents(load_model(model)) == FIRST


def test_a_failed_first_save_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(json, "dump", enospc)
    with pytest.raises(ModelError, match="disk full") as info:
        save_model(tmp_path / "new" / "model", {}, writer(FIRST))
    assert "nothing was saved" in info.value.fix
    assert not (tmp_path / "new" / "model").exists()


def test_interrupted_right_after_the_manifest_replace_keeps_the_new_model(saved, monkeypatch):
    model, _ = saved
    real = atomic.fsync_dir

    def fsync_dir(folder):
        if folder == model:
            raise KeyboardInterrupt
        real(folder)

    monkeypatch.setattr(atomic, "fsync_dir", fsync_dir)  # the manifest's folder is fsynced by the shared writer
    with pytest.raises(KeyboardInterrupt):
        save_model(model, {"labels": "new"}, writer(SECOND))
    monkeypatch.undo()
    assert contents(load_model(model)) == SECOND
