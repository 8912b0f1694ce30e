"""Reading a surrogate's files from a directory or a ``.tar.gz`` archive in bounded time and memory.

Every check that needs no member's content comes before any member is read: the archive's
size; then, in one pass over the tar headers (member data skipped in small chunks), the number
of members, each declared size and their sum against hard ceilings; then every member's name
and type; then the manifest (read first, on its own) and the names and declared sizes of the
other members against it. Only then are the members hashed, streamed in chunks, against the
manifest, and only an archive whose every member matched is read into memory. A refused
archive costs at most ``MAX_TOTAL_BYTES`` of decompression and a few MB of memory.

Ceilings (the shipped surrogates are about 4 MB unpacked):

=====================  ===========  ======================================================
``MAX_ARCHIVE_BYTES``  256 MiB      the ``.tar.gz`` file itself
``MAX_FILE_BYTES``     64 MiB       any one file
``MAX_TOTAL_BYTES``    128 MiB      all files together (declared sizes, before reading)
``MAX_MANIFEST_BYTES`` 4 MiB        ``manifest.json``
``MAX_MEMBERS``        64           archive members or directory entries
=====================  ===========  ======================================================
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import tarfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Callable

__all__ = [
    "MANIFEST", "MAX_ARCHIVE_BYTES", "MAX_FILE_BYTES", "MAX_TOTAL_BYTES", "MAX_MANIFEST_BYTES", "MAX_MEMBERS",
    "SAFE_NAME", "SurrogateFileError", "fail", "sha256_file", "check_sizes", "read_dir", "read_archive",
]

MANIFEST = "manifest.json"
MAX_ARCHIVE_BYTES = 256 * 2**20
MAX_FILE_BYTES = 64 * 2**20
MAX_TOTAL_BYTES = 128 * 2**20
MAX_MANIFEST_BYTES = 4 * 2**20
MAX_MEMBERS = 64
_MAX_META_BYTES = 64 * 2**10  # a pax or GNU long-name header
_CHUNK = 2**20
_META_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
               tarfile.GNUTYPE_LONGLINK)
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

CheckManifest = Callable[[bytes], "dict[str, Any]"]


class SurrogateFileError(ValueError):
    """A surrogate directory or archive that must not be loaded (the message says why)."""


def fail(origin: str, message: str) -> SurrogateFileError:
    return SurrogateFileError(f"{origin}: {message}")


def sha256_file(fileobj: BinaryIO, limit: int | None = None) -> tuple[str, int]:
    """sha256 and length of what ``fileobj`` still holds, read in chunks (at most ``limit`` bytes)."""
    digest, n = hashlib.sha256(), 0
    while True:
        chunk = fileobj.read(_CHUNK if limit is None else min(_CHUNK, limit - n))
        if not chunk:
            return digest.hexdigest(), n
        digest.update(chunk)
        n += len(chunk)


def check_sizes(sizes: dict[str, int], manifest: dict[str, Any], origin: str) -> dict[str, dict]:
    """Raise unless the files (name → size) are exactly those the manifest lists, of the listed
    sizes; returns the listing."""
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise fail(origin, f"{MANIFEST} lists no files")
    for fname, entry in listed.items():
        if fname == MANIFEST or not SAFE_NAME.match(str(fname)):
            raise fail(origin, f"{MANIFEST} lists an invalid file name {fname!r}")
        if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
                and isinstance(entry.get("bytes"), int) and not isinstance(entry.get("bytes"), bool)):
            raise fail(origin, f"{MANIFEST} entry of {fname!r} needs a sha256 and a size in bytes")
    for fname in sorted(sizes):
        if fname != MANIFEST and fname not in listed:
            raise fail(origin, f"unexpected file {fname!r} (not listed in {MANIFEST})")
    for fname, entry in sorted(listed.items()):
        if fname not in sizes:
            raise fail(origin, f"{fname} is listed in {MANIFEST} but missing")
        size = sizes[fname]
        if size < entry["bytes"]:
            raise fail(origin, f"{fname} is truncated ({size} bytes, {MANIFEST} says {entry['bytes']})")
        if size != entry["bytes"]:
            raise fail(origin, f"{fname} has {size} bytes, {MANIFEST} says {entry['bytes']}: damaged or tampered")
    return listed


def _check_count_and_total(sizes: dict[str, int], origin: str) -> None:
    if len(sizes) > MAX_MEMBERS:
        raise fail(origin, f"holds more than {MAX_MEMBERS} files")
    total = sum(sizes.values())
    if total > MAX_TOTAL_BYTES:
        raise fail(origin, f"holds {total} bytes of files, more than a surrogate may ({MAX_TOTAL_BYTES})")


# --------------------------------------------------------------------------------------- directory


def read_dir(directory: Path, check_manifest: CheckManifest) -> dict[str, bytes]:
    """The files of a surrogate directory: entries, sizes and manifest checked before any other file is read."""
    origin = str(directory)
    sizes: dict[str, int] = {}
    entries = []
    for entry in directory.iterdir():  # counted before anything else: a folder of a million files is refused
        entries.append(entry)
        if len(entries) > MAX_MEMBERS:
            raise fail(origin, f"holds more than {MAX_MEMBERS} entries")
    for entry in sorted(entries):
        if entry.is_symlink() or not entry.is_file():
            raise fail(origin, f"unexpected entry {entry.name!r} (only the plain files listed in {MANIFEST} belong here)")
        size = entry.stat().st_size
        if size > MAX_FILE_BYTES:
            raise fail(origin, f"{entry.name} is {size} bytes, more than any surrogate file may be")
        sizes[entry.name] = size
    _check_count_and_total(sizes, origin)
    if MANIFEST not in sizes:
        raise fail(origin, f"{MANIFEST} is missing (not a surrogate directory)")
    if sizes[MANIFEST] > MAX_MANIFEST_BYTES:
        raise fail(origin, f"{MANIFEST} is {sizes[MANIFEST]} bytes, more than a manifest may be ({MAX_MANIFEST_BYTES})")
    raw_manifest = _read_at_most(directory / MANIFEST, MAX_MANIFEST_BYTES)
    check_sizes(sizes, check_manifest(raw_manifest), origin)
    files = {MANIFEST: raw_manifest}
    for fname in sorted(sizes):
        if fname != MANIFEST:
            files[fname] = _read_at_most(directory / fname, sizes[fname])
    return files


def _read_at_most(path: Path, limit: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(limit + 1)  # one byte more: a file that grew is caught by the size check later


# ----------------------------------------------------------------------------------------- archive


def _check_sha_file(archive: Path, fileobj: BinaryIO) -> None:
    sha_path = archive.with_name(archive.name + ".sha256")
    if not sha_path.exists():
        return
    with open(sha_path, "rb") as f:
        text = f.read(4096).decode("utf-8", errors="replace").strip()
    token = text.split()[0].lower() if text else ""
    if not re.fullmatch(r"[0-9a-f]{64}", token):
        raise fail(str(sha_path), "is not a sha256 checksum file (expected '<64 hex digits>  <archive name>')")
    fileobj.seek(0)
    actual, _ = sha256_file(fileobj)
    if actual != token:
        raise fail(
            str(archive),
            f"does not match {sha_path.name} (sha256 {actual[:16]}..., expected {token[:16]}...): damaged or tampered",
        )


def _scan_headers(fileobj: BinaryIO, origin: str) -> None:
    """First pass over the raw tar stream: every header's declared size against the ceilings,
    member data skipped in chunks (never held), so that tarfile itself never reads a huge
    header and no later pass decompresses more than ``MAX_TOTAL_BYTES``."""
    fileobj.seek(0)
    with gzip.GzipFile(fileobj=fileobj, mode="rb") as gz:
        count = total = 0
        while True:
            block = gz.read(tarfile.BLOCKSIZE)
            if len(block) < tarfile.BLOCKSIZE or block.count(0) == tarfile.BLOCKSIZE:
                return  # end of archive (a short block is left to tarfile to call truncated)
            try:
                info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
            except tarfile.HeaderError as exc:
                raise fail(origin, f"is damaged (tar header {count + 1}: {exc})") from None
            count += 1
            if count > 2 * MAX_MEMBERS:  # each member may carry one pax header
                raise fail(origin, f"holds more than {MAX_MEMBERS} members")
            limit = _MAX_META_BYTES if info.type in _META_TYPES else MAX_FILE_BYTES
            if not 0 <= info.size <= limit:
                raise fail(origin, f"member {info.name!r} declares {info.size} bytes, more than any surrogate file may be")
            total += info.size
            if total > MAX_TOTAL_BYTES:
                raise fail(origin, f"declares more than {MAX_TOTAL_BYTES} bytes of members, more than a surrogate may be")
            left = -(-info.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
            while left:
                chunk = gz.read(min(_CHUNK, left))
                if not chunk:
                    return  # truncated: tarfile says so in the next pass
                left -= len(chunk)


def _check_member(member: tarfile.TarInfo, origin: str) -> tuple[str, ...]:
    name = member.name
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or "\\" in name:
        raise fail(origin, f"member {name!r} has an absolute or non-POSIX path; refusing to unpack")
    if ".." in parts:
        raise fail(origin, f"member {name!r} points outside the target folder ('..'); refusing to unpack")
    if member.issym() or member.islnk():
        raise fail(origin, f"member {name!r} is a link (to {member.linkname!r}); refusing to unpack")
    if member.issparse() or not (member.isfile() or member.isdir()):
        raise fail(origin, f"member {name!r} is not a plain file or folder (device, fifo or other); refusing to unpack")
    if hasattr(tarfile, "data_filter"):
        try:
            tarfile.data_filter(member, "/nonexistent-surrobench-target")
        except tarfile.FilterError as exc:
            raise fail(origin, f"member {name!r} refused by tarfile's data filter ({exc})") from None
    if not parts or len(parts) > 2 or (member.isfile() and len(parts) != 2) or (member.isdir() and len(parts) != 1):
        raise fail(origin, f"member {name!r}: a surrogate archive holds one folder with plain files only")
    if member.isfile() and not SAFE_NAME.match(parts[-1]):
        raise fail(origin, f"member {name!r} has an unexpected file name")
    if not 0 <= member.size <= MAX_FILE_BYTES:
        raise fail(origin, f"member {name!r} is {member.size} bytes, more than any surrogate file may be")
    return parts


def _members(tar: tarfile.TarFile, origin: str) -> tuple[str, dict[str, tarfile.TarInfo]]:
    """Second pass, headers only: names, types, one folder, no duplicates."""
    members: dict[str, tarfile.TarInfo] = {}
    top: str | None = None
    for i, member in enumerate(tar):
        if i >= MAX_MEMBERS:
            raise fail(origin, f"holds more than {MAX_MEMBERS} members")
        parts = _check_member(member, origin)
        if top is None:
            top = parts[0]
        elif parts[0] != top:
            raise fail(origin, f"member {member.name!r} lies outside the archive's folder {top!r}")
        if member.isfile():
            if parts[1] in members:
                raise fail(origin, f"member {member.name!r} appears twice")
            members[parts[1]] = member
    if top is None or not members:
        raise fail(origin, "is an empty archive")
    return top, members


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, origin: str) -> bytes:
    fobj = tar.extractfile(member)
    content = fobj.read(member.size) if fobj is not None else b""
    if len(content) != member.size:
        raise fail(origin, f"member {member.name!r} is truncated")
    return content


def read_archive(archive: Path, check_manifest: CheckManifest) -> tuple[str, dict[str, bytes]]:
    """The folder name and files of a surrogate archive, every check of the module docstring passed.

    ``check_manifest`` turns the manifest's bytes into the manifest (raising if it is invalid)."""
    origin = str(archive)
    size = archive.stat().st_size
    if size > MAX_ARCHIVE_BYTES:
        raise fail(origin, f"is {size} bytes, more than a surrogate archive may be ({MAX_ARCHIVE_BYTES})")
    try:
        with open(archive, "rb") as raw:
            _check_sha_file(archive, raw)
            _scan_headers(raw, origin)
            raw.seek(0)
            with tarfile.open(fileobj=raw, mode="r:gz") as tar:
                top, members = _members(tar, origin)
                sizes = {name: m.size for name, m in members.items()}
                _check_count_and_total(sizes, origin)
                if MANIFEST not in members:
                    raise fail(origin, f"{MANIFEST} is missing (not a surrogate directory)")
                if sizes[MANIFEST] > MAX_MANIFEST_BYTES:
                    raise fail(origin, f"{MANIFEST} is {sizes[MANIFEST]} bytes, more than a manifest may be")
                raw_manifest = _read_member(tar, members[MANIFEST], origin)
                listed = check_sizes(sizes, check_manifest(raw_manifest), origin)
                for fname, entry in listed.items():  # hashes streamed: nothing kept of a member that fails
                    fobj = tar.extractfile(members[fname])
                    digest, n = sha256_file(fobj, members[fname].size) if fobj is not None else ("", 0)
                    if n != members[fname].size:
                        raise fail(origin, f"member {members[fname].name!r} is truncated")
                    if digest != entry["sha256"]:
                        raise fail(origin, f"{fname} does not match its sha256 in {MANIFEST}: damaged or tampered")
                files = {MANIFEST: raw_manifest}
                files.update((fname, _read_member(tar, members[fname], origin)) for fname in listed)
    except SurrogateFileError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise fail(origin, f"is damaged or truncated (not a readable .tar.gz: {type(exc).__name__}: {exc})") from None
    return top, files


def is_archive(path: os.PathLike | str) -> bool:
    return str(path).endswith((".tar.gz", ".tgz"))
