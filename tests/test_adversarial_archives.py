"""Hostile surrogate archives, generated: bombs refused in bounded time and memory, every
refusal a one-line SurrogateFileError, nothing written anywhere, and unpack_archive refusing
exactly what load_surrogate refuses."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from surrobench.surrogate import SurrogateFileError, load_surrogate, publish, unpack_archive
from surrobench.surrogate.archive import MAX_FILE_BYTES, MAX_TOTAL_BYTES
from surrobench.surrogate.files import manifest_digest
from test_surrogate_synth import fitted

MiB = 2**20


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """A published synthetic surrogate archive and its folder's files."""
    _, _, directory = fitted()
    root = tmp_path_factory.mktemp("good")
    archive, sha = publish(directory, root)
    sha.unlink()
    return archive, {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def _gz_zeros(n_bytes: int) -> bytes:
    """``n_bytes`` zeros as concatenated gzip members, built without compressing them all."""
    one = gzip.compress(bytes(MiB), compresslevel=9, mtime=0)
    out = [one] * (n_bytes // MiB)
    if n_bytes % MiB:
        out.append(gzip.compress(bytes(n_bytes % MiB), mtime=0))
    return b"".join(out)


def _bomb(path: Path, members: list[tuple[str, int]], prefix: list[tuple[str, bytes]] = ()) -> Path:
    """A .tar.gz whose members are ``prefix`` (real data) then zero-filled members of the given sizes."""
    parts = []
    for name, data in prefix:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        blob = info.tobuf(tarfile.GNU_FORMAT) + data + bytes(-len(data) % 512)
        parts.append(gzip.compress(blob, mtime=0))
    for name, size in members:
        info = tarfile.TarInfo(name)
        info.size = size
        parts.append(gzip.compress(info.tobuf(tarfile.GNU_FORMAT), mtime=0))
        parts.append(_gz_zeros(size + (-size % 512)))
    parts.append(gzip.compress(bytes(1024), mtime=0))
    path.write_bytes(b"".join(parts))
    return path


def _refused_quietly(archive: Path, tmp_path: Path, match: str) -> tuple[float, int]:
    """Refusal seconds and the peak of Python memory of load_surrogate, after unpack wrote nothing."""
    dest = tmp_path / "dest"
    dest.mkdir(exist_ok=True)
    with pytest.raises(SurrogateFileError, match=match):
        unpack_archive(archive, dest)
    assert list(dest.iterdir()) == []
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(SurrogateFileError, match=match) as info:
            load_surrogate(archive)
        seconds = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "\n" not in str(info.value)
    return seconds, peak


def test_zero_bomb_of_unlisted_members_is_refused_before_reading_them(tmp_path):
    # the bomb: many unlisted members of 64 MiB zeros, refused by the ceiling on the total
    archive = _bomb(tmp_path / "bomb.tar.gz", [(f"s/z{i}.bin", MAX_FILE_BYTES) for i in range(57)])
    assert archive.stat().st_size < 5 * MiB
    seconds, peak = _refused_quietly(archive, tmp_path, "more than .* bytes of members")
    assert peak < 16 * MiB and seconds < 10


def test_unlisted_member_under_the_ceilings_is_never_read(good, tmp_path):
    archive, files = good
    prefix = [(f"s/{n}", b) for n, b in files.items()]
    bomb = _bomb(tmp_path / "s.tar.gz", [("s/zeros.bin", 48 * MiB)], prefix=prefix)
    _, peak = _refused_quietly(bomb, tmp_path, "unexpected file 'zeros.bin'")
    assert peak < 16 * MiB  # 48 MiB were declared; none of it was held


def test_listed_member_with_wrong_content_is_hashed_not_held(good, tmp_path):
    # a consistently listed 32 MiB member whose bytes do not match: streamed through sha256, never kept
    _, files = good
    manifest = json.loads(files["manifest.json"])
    manifest["files"]["zeros.bin"] = {"sha256": "0" * 64, "bytes": 32 * MiB}
    manifest["manifest_sha256"] = manifest_digest(manifest)
    prefix = [("s/manifest.json", json.dumps(manifest).encode())] + [
        (f"s/{n}", b) for n, b in files.items() if n != "manifest.json"]
    bomb = _bomb(tmp_path / "s.tar.gz", [("s/zeros.bin", 32 * MiB)], prefix=prefix)
    _, peak = _refused_quietly(bomb, tmp_path, "zeros.bin does not match its sha256")
    assert peak < 16 * MiB


@pytest.mark.parametrize("size", [MAX_FILE_BYTES + 1, 2**40, 8**11 - 1])
def test_declared_size_over_the_ceiling_is_refused_from_the_header_alone(tmp_path, size):
    info = tarfile.TarInfo("s/big.bin")
    info.size = size
    blob = gzip.compress(info.tobuf(tarfile.GNU_FORMAT) + bytes(1024), mtime=0)  # no data at all follows
    archive = tmp_path / "big.tar.gz"
    archive.write_bytes(blob)
    _refused_quietly(archive, tmp_path, "declares .* bytes, more than any surrogate file may be")


def test_huge_pax_header_is_refused_before_tarfile_reads_it(tmp_path):
    info = tarfile.TarInfo("././@PaxHeader")
    info.type = tarfile.XHDTYPE
    info.size = 512 * MiB
    archive = tmp_path / "pax.tar.gz"
    archive.write_bytes(gzip.compress(info.tobuf(tarfile.USTAR_FORMAT), mtime=0) + _gz_zeros(2 * MiB))
    _refused_quietly(archive, tmp_path, "more than any surrogate file may be")


def test_total_ceiling_counts_declared_sizes(tmp_path):
    n = MAX_TOTAL_BYTES // (16 * MiB) + 1
    archive = _bomb(tmp_path / "many.tar.gz", [(f"s/m{i}.bin", 16 * MiB) for i in range(n)])
    _refused_quietly(archive, tmp_path, f"more than {MAX_TOTAL_BYTES} bytes of members")


# ------------------------------------------------------------------------ generated hostile archives

NAMES = ["../x", "s/../../x", "/etc/x", "s\\x", "C:/x", "s/a/b", "s/", "s/.hidden", "s/" + "n" * 200, "t/x",
         "s/manifest.json", "s/fast.ubj", "s/\u00e9t\u00e9.ubj", "s/x y", "", "s/run.sh"]
TYPES = [tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE,
         tarfile.DIRTYPE, tarfile.CONTTYPE, tarfile.GNUTYPE_SPARSE]


def _hostile(rng: np.random.Generator, files: dict[str, bytes]) -> bytes:
    """A tar.gz built from the good files with 1-3 random hostile changes."""
    members = [(f"s/{n}", tarfile.REGTYPE, b) for n, b in files.items()]
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(0, 7))
        if kind == 0:  # an extra member of a random name and type
            name, typ = NAMES[rng.integers(len(NAMES))], TYPES[rng.integers(len(TYPES))]
            members.insert(int(rng.integers(0, len(members) + 1)), (name, typ, rng.bytes(int(rng.integers(0, 64)))))
        elif kind == 1:  # a member dropped
            members.pop(int(rng.integers(len(members))))
        elif kind == 2:  # a member's bytes changed
            i = int(rng.integers(len(members)))
            data = bytearray(members[i][2] or b"?")
            data[int(rng.integers(len(data)))] ^= 1 + int(rng.integers(255))
            members[i] = (members[i][0], members[i][1], bytes(data))
        elif kind == 3:  # a member duplicated
            members.append(members[int(rng.integers(len(members)))])
        elif kind == 4:  # a member renamed
            i = int(rng.integers(len(members)))
            members[i] = (NAMES[rng.integers(len(NAMES))], members[i][1], members[i][2])
        elif kind == 5:  # the manifest re-signed with a file's listed size changed
            i = next((i for i, m in enumerate(members) if m[0].endswith("manifest.json")), None)
            try:
                m = json.loads(members[i][2])
                fname = sorted(m["files"])[int(rng.integers(len(m["files"])))]
                m["files"][fname]["bytes"] += int(rng.choice([-1, 1, 2**31]))
                m["manifest_sha256"] = manifest_digest(m)
                members[i] = (members[i][0], members[i][1], json.dumps(m).encode())
            except (ValueError, KeyError, TypeError):  # no manifest left to change (or not JSON)
                pass
        else:  # members shuffled (still valid if nothing else changed)
            order = rng.permutation(len(members))
            members = [members[j] for j in order]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, typ, data in members:
            info = tarfile.TarInfo(name)
            info.type = typ
            if typ in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = "/etc/passwd"
            payload = typ in (tarfile.REGTYPE, tarfile.CONTTYPE, tarfile.GNUTYPE_SPARSE)
            info.size = len(data) if payload else 0
            tar.addfile(info, io.BytesIO(data) if payload else None)
    blob = gzip.compress(raw.getvalue(), mtime=0)
    cut = int(rng.integers(0, 4))
    if cut == 0:  # truncated somewhere
        blob = blob[: int(rng.integers(1, len(blob)))]
    elif cut == 1:  # a flipped byte in the compressed stream
        b = bytearray(blob)
        b[int(rng.integers(10, len(b)))] ^= 0x40
        blob = bytes(b)
    return blob


@pytest.mark.parametrize("seed", range(12))
def test_generated_hostile_archives_are_refused_alike_by_load_and_unpack(good, tmp_path, seed):
    _, files = good
    rng = np.random.default_rng([18, seed])
    for k in range(3):
        archive = tmp_path / f"h{k}.tar.gz"
        archive.write_bytes(_hostile(rng, files))
        dest = tmp_path / f"dest{k}"
        dest.mkdir()
        try:
            load_surrogate(archive)
            loaded = True
        except SurrogateFileError as exc:
            loaded = False
            assert "\n" not in str(exc) and str(exc).startswith(str(archive))
        if loaded:
            out = unpack_archive(archive, dest)
            assert out.parent == dest.resolve()
            load_surrogate(out)
        else:
            with pytest.raises(SurrogateFileError):
                unpack_archive(archive, dest)
            assert list(dest.iterdir()) == []
        written = {p.name for p in tmp_path.iterdir()}
        assert written <= {f"h{j}.tar.gz" for j in range(3)} | {f"dest{j}" for j in range(3)}


# --------------------------------------------------- unpack refuses what load refuses (issue 18, item 2)


def _resign(directory: Path, change) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    change(manifest, directory)
    for p in sorted(directory.iterdir()):
        if p.name != "manifest.json" and p.name in manifest["files"]:
            data = p.read_bytes()
            manifest["files"][p.name] = {"sha256": __import__("hashlib").sha256(data).hexdigest(), "bytes": len(data)}
    manifest["manifest_sha256"] = manifest_digest(manifest)
    (directory / "manifest.json").write_text(json.dumps(manifest))


def _corrupt_model(m, d):
    data = bytearray((d / "curves.ubj").read_bytes())
    data[len(data) // 3: len(data) // 3 + 64] = bytes(64)
    (d / "curves.ubj").write_bytes(bytes(data))


def _swap_models(m, d):
    m["models"]["runtime"]["file"], m["models"]["learns"]["file"] = "learns.ubj", "runtime.ubj"


def _wrong_runtime(m, d):
    shutil.copy(d / "learns.ubj", d / "runtime.ubj")


CHANGES = {
    "corrupt model": _corrupt_model,
    "swapped models": _swap_models,
    "mismatched runtime model": _wrong_runtime,
    "pca of the wrong shape": lambda m, d: m["models"]["curves"].update(pca_mean=[0.5] * 3),
    "fidelity": lambda m, d: m.update(fidelity={"name": "epoch", "min": 1, "max": 99}),
    "bad name": lambda m, d: m.update(name="../evil"),
    "noise": lambda m, d: m.update(noise="loud"),
    "features": lambda m, d: m.update(features=["a"]),
    "dataset": lambda m, d: m["dataset"].update(n_classes=1),
    "bounds": lambda m, d: m["models"]["curves"].update(lower=[2.0] * len(m["models"]["curves"]["lower"])),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_unpack_refuses_consistently_resigned_archives_that_load_refuses(tmp_path, change):
    _, _, directory = fitted()
    bad = tmp_path / "synthetic-surrogate"
    shutil.copytree(directory, bad)
    _resign(bad, CHANGES[change])
    archive = tmp_path / "bad.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(bad, arcname=bad.name)
    with pytest.raises(SurrogateFileError) as from_load:
        load_surrogate(archive)
    dest = tmp_path / "dest"
    with pytest.raises(SurrogateFileError) as from_unpack:
        unpack_archive(archive, dest)
    assert str(from_unpack.value).split(": ", 1)[1] == str(from_load.value).split(": ", 1)[1]
    assert not dest.exists() or list(dest.iterdir()) == []


def test_corrupt_gzip_stream_is_one_line(tmp_path):
    archive = tmp_path / "x.tar.gz"
    archive.write_bytes(zlib.compress(b"not gzip") * 3)
    with pytest.raises(SurrogateFileError, match="damaged or truncated"):
        load_surrogate(archive)


def test_a_directory_of_many_files_is_refused_by_counting(tmp_path):
    d = tmp_path / "many"
    d.mkdir()
    for i in range(200):
        (d / f"f{i}.bin").write_bytes(b"")
    with pytest.raises(SurrogateFileError, match="holds more than 64 entries"):
        load_surrogate(d)
