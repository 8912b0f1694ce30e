"""Surrogate files: round trip, refusal of damaged / tampered / future / escaping files, no pickle."""

from __future__ import annotations

import io
import json
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from surrobench.surrogate import SCHEMA_VERSION, SurrogateFileError, load_surrogate, publish, unpack_archive
from surrobench.surrogate.features import FEATURES
from surrobench.surrogate.files import manifest_digest
from test_surrogate_synth import fitted


@pytest.fixture()
def surrogate_dir(tmp_path) -> Path:
    _, _, directory = fitted()
    copy = tmp_path / directory.name
    shutil.copytree(directory, copy)
    return copy


def _probe(n=32):
    x = np.random.default_rng(3).random((n, len(FEATURES)))
    x[:, -3:] *= 6
    return x


def _rewrite_manifest(directory: Path, change) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    change(manifest)
    manifest["manifest_sha256"] = manifest_digest(manifest)
    (directory / "manifest.json").write_text(json.dumps(manifest))


def test_round_trip_predicts_identically(surrogate_dir):
    _, original, _ = fitted()
    loaded = load_surrogate(surrogate_dir)
    x = _probe()
    keys = np.arange(len(x), dtype=np.uint64)
    for a, b in zip(original.predict(x, keys, keys), loaded.predict(x, keys, keys)):
        np.testing.assert_array_equal(a, b)
    assert loaded.manifest["schema_version"] == SCHEMA_VERSION == 2
    assert {"learns.ubj", "curves.ubj", "runtime.ubj", "fast.ubj", "parity.png"} == set(loaded.manifest["files"])


def test_manifest_holds_what_spec_8_lists(surrogate_dir):
    m = load_surrogate(surrogate_dir).manifest
    for key in ("schema_version", "search_space", "objectives", "reference_point", "fidelity", "dataset", "devices",
                "training_data", "versions", "quality", "files", "tuning", "noise"):
        assert key in m, key
    assert m["reference_point"] == [1.0, 8.0]
    assert m["fidelity"] == {"name": "epoch", "min": 1, "max": 25}
    assert [o["name"] for o in m["objectives"]] == ["val_error", "log10_params"]
    assert all(o["direction"] == "min" for o in m["objectives"])
    assert len(m["training_data"]["sha256"]) == 64 and "xgboost" in m["versions"]
    tuned = {"max_depth", "min_child_weight", "subsample", "learning_rate", "n_rounds"}
    assert set(m["tuning"]["curves"]["params"]) == tuned
    assert len(m["search_space"]) == 13


@pytest.mark.parametrize("fname", ["curves.ubj", "fast.ubj", "parity.png"])
def test_tampered_file_is_refused(surrogate_dir, fname):
    data = bytearray((surrogate_dir / fname).read_bytes())
    data[len(data) // 2] ^= 0x01
    (surrogate_dir / fname).write_bytes(bytes(data))
    with pytest.raises(SurrogateFileError, match=f"{fname} does not match its sha256 in manifest.json"):
        load_surrogate(surrogate_dir)


def test_truncated_file_is_refused(surrogate_dir):
    path = surrogate_dir / "learns.ubj"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(SurrogateFileError, match=r"learns.ubj is truncated \(\d+ bytes, manifest.json says \d+\)"):
        load_surrogate(surrogate_dir)


def test_truncated_manifest_is_refused(surrogate_dir):
    path = surrogate_dir / "manifest.json"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(SurrogateFileError, match="manifest.json is damaged or truncated"):
        load_surrogate(surrogate_dir)


def test_edited_manifest_is_refused(surrogate_dir):
    manifest = json.loads((surrogate_dir / "manifest.json").read_text())
    manifest["noise"]["sigma_val"] = 0.0
    (surrogate_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SurrogateFileError, match="altered or damaged after it was written"):
        load_surrogate(surrogate_dir)


def test_future_schema_is_refused_with_upgrade_advice(surrogate_dir):
    _rewrite_manifest(surrogate_dir, lambda m: m.update(schema_version=99))
    with pytest.raises(SurrogateFileError, match="schema_version 99, newer than this surrobench supports .2.: upgrade"):
        load_surrogate(surrogate_dir)


def test_model_swapped_for_another_listed_file_is_refused(surrogate_dir):
    # consistent hashes, but the fast model no longer matches the separate models
    def swap(m):
        m["models"]["curves"]["file"], m["models"]["learns"]["file"] = "learns.ubj", "curves.ubj"

    _rewrite_manifest(surrogate_dir, swap)
    with pytest.raises(SurrogateFileError, match="outputs|disagrees"):
        load_surrogate(surrogate_dir)


def test_malformed_manifest_field_is_named(surrogate_dir):
    _rewrite_manifest(surrogate_dir, lambda m: m["models"]["curves"].pop("pca_mean"))
    with pytest.raises(SurrogateFileError, match="manifest.json is malformed: missing field 'pca_mean'"):
        load_surrogate(surrogate_dir)


def test_unlisted_and_missing_files_are_refused(surrogate_dir):
    (surrogate_dir / "extra.py").write_text("print('hi')\n")
    with pytest.raises(SurrogateFileError, match="unexpected file 'extra.py'"):
        load_surrogate(surrogate_dir)
    (surrogate_dir / "extra.py").unlink()
    (surrogate_dir / "runtime.ubj").unlink()
    with pytest.raises(SurrogateFileError, match="runtime.ubj is listed in manifest.json but missing"):
        load_surrogate(surrogate_dir)


def test_nothing_in_the_load_path_unpickles(surrogate_dir, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle used while loading")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    archive, _ = publish(surrogate_dir, surrogate_dir.parent / "pub")
    load_surrogate(surrogate_dir)
    load_surrogate(archive)
    root = Path(__file__).resolve().parents[1] / "surrobench"
    for path in [*root.glob("surrogate/*.py"), root / "benchmark.py"]:
        text = path.read_text()
        for banned in ("import pickle", "joblib.load", "allow_pickle=True", "np.load(", "torch.load"):
            assert banned not in text, f"{path.name}: {banned}"


# ------------------------------------------------------------------------------------- archives


def test_publish_is_reproducible_and_loads(surrogate_dir, tmp_path):
    a1, s1 = publish(surrogate_dir, tmp_path / "one")
    a2, s2 = publish(surrogate_dir, tmp_path / "two")
    assert a1.read_bytes() == a2.read_bytes()
    assert s1.read_text() == s2.read_text()
    assert s1.read_text().endswith(f"  {a1.name}\n")
    loaded = load_surrogate(a1)
    np.testing.assert_array_equal(loaded.predict(_probe())[0], load_surrogate(surrogate_dir).predict(_probe())[0])
    out = unpack_archive(a1, tmp_path / "unpacked")
    assert out == (tmp_path / "unpacked" / surrogate_dir.name).resolve()
    load_surrogate(out)


def test_archive_not_matching_its_sha256_is_refused(surrogate_dir, tmp_path):
    archive, sha = publish(surrogate_dir, tmp_path)
    sha.write_text("0" * 64 + f"  {archive.name}\n")
    with pytest.raises(SurrogateFileError, match="does not match .*sha256.*damaged or tampered"):
        load_surrogate(archive)
    sha.write_text("not a checksum\n")
    with pytest.raises(SurrogateFileError, match="is not a sha256 checksum file"):
        load_surrogate(archive)


def test_truncated_archive_is_refused(surrogate_dir, tmp_path):
    archive, sha = publish(surrogate_dir, tmp_path)
    sha.unlink()
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(SurrogateFileError, match="damaged or truncated"):
        load_surrogate(archive)


def _evil_archive(path: Path, members) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _special(name, kind, link=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info, None


@pytest.mark.parametrize(
    "members, message",
    [
        ([_file("../evil.txt")], "outside the target folder"),
        ([_file("s/../../evil.txt")], "outside the target folder"),
        ([_file("/etc/evil.txt")], "absolute"),
        ([_file("s\\..\\evil.txt")], "absolute or non-POSIX"),
        ([_special("s/link", tarfile.SYMTYPE, "/etc/passwd")], "is a link"),
        ([_special("s/hard", tarfile.LNKTYPE, "/etc/passwd")], "is a link"),
        ([_special("s/dev", tarfile.CHRTYPE)], "not a plain file or folder"),
        ([_special("s/fifo", tarfile.FIFOTYPE)], "not a plain file or folder"),
        ([_file("s/a/b.txt")], "one folder with plain files only"),
        ([_file("s/manifest.json"), _file("t/manifest.json")], "outside the archive's folder"),
    ],
)
def test_path_escaping_archives_are_refused(tmp_path, members, message):
    archive = _evil_archive(tmp_path / "evil.tar.gz", members)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(SurrogateFileError, match=message):
        load_surrogate(archive)
    with pytest.raises(SurrogateFileError, match=message):
        unpack_archive(archive, dest)
    assert list(dest.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_archive_with_a_valid_manifest_and_a_smuggled_file_is_refused(surrogate_dir, tmp_path):
    members = [_file(f"s/{p.name}", p.read_bytes()) for p in sorted(surrogate_dir.iterdir())]
    members.append(_file("s/run.sh", b"rm -rf /\n"))
    archive = _evil_archive(tmp_path / "s.tar.gz", members)
    with pytest.raises(SurrogateFileError, match="unexpected file 'run.sh'"):
        load_surrogate(archive)
    dest = tmp_path / "dest"
    with pytest.raises(SurrogateFileError, match="unexpected file 'run.sh'"):
        unpack_archive(archive, dest)
    assert not dest.exists() or list(dest.iterdir()) == []


def test_not_an_archive_or_directory(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_surrogate(tmp_path / "nope")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="neither a surrogate directory nor a .tar.gz archive"):
        load_surrogate(tmp_path / "x.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SurrogateFileError, match="manifest.json is missing"):
        load_surrogate(tmp_path / "empty")


def test_save_replaces_only_a_surrogate_directory(tmp_path):
    from surrobench.surrogate import save_surrogate

    _, surrogate, _ = fitted()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="exists and is not empty"):
        save_surrogate(surrogate, other)
    with pytest.raises(ValueError, match="not a surrogate directory"):
        save_surrogate(surrogate, other, overwrite=True)
    assert (other / "keep.txt").read_text() == "mine"
    target = save_surrogate(surrogate, tmp_path / "s")
    save_surrogate(surrogate, target, overwrite=True)
    load_surrogate(target)
