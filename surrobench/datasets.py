"""The three datasets of the benchmark, loaded as numpy arrays (NCHW float32, int64 labels).

Metadata (input shape, classes) is available without loading anything, so that the
benchmark can compute model sizes on a machine that never saw the data.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
import struct
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DatasetInfo", "Splits", "DATASETS", "info", "load", "default_data_dir", "read_idx"]

logger = logging.getLogger(__name__)

SPLIT_SEED = 0
"""Seed of the stratified train/val(/test) splits: fixed, so every run sees the same splits."""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    input_shape: tuple[int, int, int]
    n_classes: int
    sizes: tuple[int, int, int]  # train, val, test

    @property
    def chance_error(self) -> float:
        return 1.0 - 1.0 / self.n_classes


DATASETS: dict[str, DatasetInfo] = {
    "flowers17": DatasetInfo("flowers17", (3, 16, 16), 17, (680, 340, 340)),
    "fashion_mnist": DatasetInfo("fashion_mnist", (1, 28, 28), 10, (48000, 12000, 10000)),
    "digits": DatasetInfo("digits", (1, 8, 8), 10, (1078, 360, 359)),
}


def info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"dataset: unknown dataset {name!r} (known: {', '.join(DATASETS)})") from None


@dataclass(frozen=True)
class Splits:
    """Train/val/test arrays: x as float32 (N, C, H, W) C-contiguous, y as int64 class indices."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def info(self) -> DatasetInfo:
        return DATASETS[self.name]


def default_data_dir(name: str) -> Path:
    """``$SURROBENCH_DATA/<name>`` if set, else ``~/.cache/surrobench/<name>``."""
    root = os.environ.get("SURROBENCH_DATA")
    base = Path(root) if root else Path.home() / ".cache" / "surrobench"
    return base / name


def load(name: str, data_dir: str | os.PathLike | None = None, *, download: bool = True) -> Splits:
    """Load dataset ``name``; ``data_dir`` is needed for flowers17 and fashion_mnist files."""
    info(name)
    if name == "digits":
        return _load_digits()
    directory = Path(data_dir) if data_dir is not None else default_data_dir(name)
    if name == "flowers17":
        return _load_flowers17(directory)
    return _load_fashion_mnist(directory, download=download)


def _stratified_split(y: np.ndarray, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Indices of a seeded stratified split into parts of the given fractions (per class)."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    bounds = np.cumsum(fractions)[:-1]
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        cuts = np.round(bounds * len(idx)).astype(int)
        for part, chunk in zip(parts, np.split(idx, cuts)):
            part.append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def _load_digits() -> Splits:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    tr, va, te = _stratified_split(y, (0.6, 0.2, 0.2), SPLIT_SEED)
    return Splits("digits", *(np.ascontiguousarray(a) for a in (x[tr], y[tr], x[va], y[va], x[te], y[te])))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _load_flowers17(directory: Path) -> Splits:
    files = [f"{p}_{s}.npy" for s in ("train", "val", "test") for p in ("x", "y")]
    missing = [f for f in files if not (directory / f).is_file()]
    if missing:
        raise ValueError(
            f"flowers17: {directory} lacks {', '.join(missing)} (pass --data-dir with the paper's x_*.npy/y_*.npy arrays)"
        )
    sums = directory / "SHA256SUMS"
    if sums.is_file():
        listed = {}
        for line in sums.read_text().splitlines():
            if line.strip():
                digest, fname = line.split(maxsplit=1)
                listed[fname.strip().lstrip("*")] = digest.lower()
        for fname in files:
            if fname not in listed:
                raise ValueError(f"flowers17: {directory / 'SHA256SUMS'} has no entry for {fname}")
            if _sha256(directory / fname) != listed[fname]:
                raise ValueError(f"flowers17: {directory / fname} does not match its SHA256SUMS entry")
    arrays = []
    for s in ("train", "val", "test"):
        x = np.load(directory / f"x_{s}.npy", allow_pickle=False)
        y = np.load(directory / f"y_{s}.npy", allow_pickle=False)
        if x.ndim != 4 or x.shape[1:] != (16, 16, 3) or y.shape != (len(x), 17):
            raise ValueError(f"flowers17: unexpected shapes x_{s} {x.shape}, y_{s} {y.shape}")
        arrays += [np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32), y.argmax(1).astype(np.int64)]
    return Splits("flowers17", *arrays)


FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST_FILES = {
    # The official files' MD5 digests, as published with the dataset.
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or plain) of unsigned bytes into an array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:  # not gzip, truncated, unreadable
        raise ValueError(f"{path}: cannot be read ({exc})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise ValueError(f"{path}: IDX type 0x{data[2]:02x} is not unsigned bytes")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path}: IDX header cut short ({len(data)} bytes for {ndim} dimensions)")
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: IDX body holds {body.size} values, header says {dims}")
    return body.reshape(dims)


def _download(directory: Path, fname: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    logger.info("downloading %s", FASHION_MNIST_URL + fname)
    with tempfile.NamedTemporaryFile(dir=directory, delete=False) as tmp:
        try:
            with urllib.request.urlopen(FASHION_MNIST_URL + fname, timeout=60) as resp:
                shutil.copyfileobj(resp, tmp)
        except OSError as exc:
            os.unlink(tmp.name)
            raise ValueError(f"fashion_mnist: {fname} is not in {directory} and could not be downloaded ({exc})") from None
    digest = hashlib.md5(Path(tmp.name).read_bytes(), usedforsecurity=False).hexdigest()
    if digest != FASHION_MNIST_FILES[fname]:
        os.unlink(tmp.name)
        raise ValueError(f"fashion_mnist: downloaded {fname} has MD5 {digest}, expected {FASHION_MNIST_FILES[fname]}")
    os.replace(tmp.name, directory / fname)


def _load_fashion_mnist(directory: Path, *, download: bool) -> Splits:
    for fname in FASHION_MNIST_FILES:
        if not (directory / fname).is_file():
            if not download:
                raise ValueError(f"fashion_mnist: {directory / fname} is missing (download disabled)")
            _download(directory, fname)
    x_full = read_idx(directory / "train-images-idx3-ubyte.gz")
    y_full = read_idx(directory / "train-labels-idx1-ubyte.gz").astype(np.int64)
    x_test = read_idx(directory / "t10k-images-idx3-ubyte.gz")
    y_test = read_idx(directory / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    if x_full.ndim != 3 or len(x_full) != len(y_full) or len(x_test) != len(y_test):
        raise ValueError(f"fashion_mnist: inconsistent IDX files in {directory}")
    tr, va = _stratified_split(y_full, (0.8, 0.2), SPLIT_SEED)

    def prep(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x[:, None, :, :], dtype=np.float32) / np.float32(255.0)

    return Splits("fashion_mnist", prep(x_full[tr]), y_full[tr], prep(x_full[va]), y_full[va], prep(x_test), y_test)
