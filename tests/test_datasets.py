"""Dataset loaders: digits (embedded), flowers17 (shared arrays), fashion_mnist (synthetic IDX files)."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import struct

import numpy as np
import pytest

from surrobench import datasets
from surrobench.datasets import DATASETS, load, read_idx

SPLITS = ("train", "val", "test")


def _arrays(s):
    return [(getattr(s, f"x_{p}"), getattr(s, f"y_{p}")) for p in SPLITS]


def _check_layout(s, name):
    info = DATASETS[name]
    for x, y in _arrays(s):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.ndim == 4 and x.shape[1:] == info.input_shape and x.flags.c_contiguous
        assert y.shape == (len(x),)
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert set(np.unique(y)) == set(range(info.n_classes))  # stratified: every class everywhere


# --- digits -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def test_digits_layout(digits):
    assert digits.name == "digits" and digits.info is DATASETS["digits"]
    assert tuple(len(x) for x, _ in _arrays(digits)) == DATASETS["digits"].sizes
    _check_layout(digits, "digits")


def test_digits_split_is_stratified_partition(digits):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    assert sum(DATASETS["digits"].sizes) == len(bunch.target)
    full = np.bincount(bunch.target)
    for (_, y), frac in zip(_arrays(digits), (0.6, 0.2, 0.2)):
        assert np.all(np.abs(np.bincount(y, minlength=10) - frac * full) <= 1)
    # pixels / 16, and no image lands in two splits
    x_all = np.concatenate([x for x, _ in _arrays(digits)]).reshape(len(bunch.target), -1)
    assert np.array_equal(np.unique(x_all * 16, axis=0), np.unique(bunch.data.astype(np.float32), axis=0))


def test_digits_deterministic(digits):
    again = load("digits")
    for (xa, ya), (xb, yb) in zip(_arrays(digits), _arrays(again)):
        assert np.array_equal(xa, xb) and np.array_equal(ya, yb)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        load("mnist")
    with pytest.raises(ValueError, match="mnist"):
        datasets.info("mnist")


def test_chance_error():
    assert DATASETS["flowers17"].chance_error == pytest.approx(16 / 17)
    assert DATASETS["digits"].chance_error == pytest.approx(0.9)


# --- flowers17 --------------------------------------------------------------------------


def test_flowers17(flowers_dir):
    s = load("flowers17", flowers_dir)
    assert tuple(len(x) for x, _ in _arrays(s)) == DATASETS["flowers17"].sizes
    _check_layout(s, "flowers17")
    for (_, y), per_class in zip(_arrays(s), (40, 20, 20)):
        assert np.array_equal(np.bincount(y, minlength=17), np.full(17, per_class))
    raw = np.load(flowers_dir / "x_val.npy")  # NHWC on disk
    assert np.allclose(s.x_val, raw.transpose(0, 3, 1, 2))


@pytest.fixture
def flowers_copy(flowers_dir, tmp_path):
    for f in flowers_dir.iterdir():
        shutil.copy(f, tmp_path / f.name)
    return tmp_path


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_flowers17_copy_with_valid_sums_loads(flowers_copy):
    (flowers_copy / "SHA256SUMS").write_text(
        "".join(f"{_sha256(f)}  {f.name}\n" for f in sorted(flowers_copy.glob("*.npy")))
    )
    assert len(load("flowers17", flowers_copy).x_train) == 680


def test_flowers17_wrong_digest_refused(flowers_copy):
    lines = [f"{_sha256(f)}  {f.name}" for f in sorted(flowers_copy.glob("*.npy"))]
    lines = [("0" * 64 + "  x_val.npy") if line.endswith("x_val.npy") else line for line in lines]
    (flowers_copy / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="x_val.npy"):
        load("flowers17", flowers_copy)


def test_flowers17_tampered_file_refused(flowers_copy):
    path = flowers_copy / "x_test.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # one pixel changes; the header stays valid
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="x_test.npy"):
        load("flowers17", flowers_copy)


def test_flowers17_missing_file_refused(flowers_copy):
    (flowers_copy / "y_train.npy").unlink()
    with pytest.raises(ValueError, match="y_train.npy"):
        load("flowers17", flowers_copy)


def test_flowers17_empty_dir_refused(tmp_path):
    with pytest.raises(ValueError, match="flowers17.*x_train.npy"):
        load("flowers17", tmp_path)


def test_flowers17_wrong_shapes_refused(tmp_path):
    for s, n in zip(SPLITS, (4, 2, 2)):
        np.save(tmp_path / f"x_{s}.npy", np.zeros((n, 8, 8, 3)))  # 8x8 instead of 16x16
        np.save(tmp_path / f"y_{s}.npy", np.eye(17)[:n])
    with pytest.raises(ValueError, match="unexpected shapes"):
        load("flowers17", tmp_path)


# --- fashion_mnist (synthetic IDX files) ----------------------------------------------------


def _idx_bytes(array: np.ndarray) -> bytes:
    array = np.asarray(array, dtype=np.uint8)
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def _write_idx(path, array):
    data = _idx_bytes(array)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


N_TRAIN, N_TEST = 200, 50


@pytest.fixture
def fashion_dir(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(N_TRAIN, 28, 28), dtype=np.uint8)
    x[:, 0, 0] = np.arange(N_TRAIN)  # tag each image with its index
    y = np.repeat(np.arange(10), N_TRAIN // 10)
    rng.shuffle(y)
    x_test = rng.integers(0, 256, size=(N_TEST, 28, 28), dtype=np.uint8)
    x_test[0, 0, 0], x_test[1, 0, 0] = 0, 255
    y_test = np.arange(N_TEST) % 10
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", x)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", y)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", x_test)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", y_test)
    return tmp_path, (x, y, x_test, y_test)


def test_fashion_mnist_from_idx(fashion_dir):
    directory, (x, y, x_test, y_test) = fashion_dir
    s = load("fashion_mnist", directory, download=False)
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (160, 40, 50)
    _check_layout(s, "fashion_mnist")
    assert np.array_equal(np.bincount(s.y_train), np.full(10, 16))  # 80/20 per class
    assert np.array_equal(np.bincount(s.y_val), np.full(10, 4))
    idx_train = np.rint(s.x_train[:, 0, 0, 0] * 255).astype(int)
    idx_val = np.rint(s.x_val[:, 0, 0, 0] * 255).astype(int)
    assert sorted(np.concatenate([idx_train, idx_val])) == list(range(N_TRAIN))  # a partition
    assert np.array_equal(s.y_train, y[idx_train]) and np.array_equal(s.y_val, y[idx_val])
    assert np.array_equal(s.x_train[:, 0], x[idx_train].astype(np.float32) / 255)
    assert np.array_equal(s.x_test[:, 0], x_test.astype(np.float32) / 255)
    assert s.x_test.min() == 0.0 and s.x_test.max() == 1.0
    assert np.array_equal(s.y_test, y_test)
    again = load("fashion_mnist", directory, download=False)
    assert np.array_equal(again.x_val, s.x_val)


def test_fashion_mnist_missing_file_without_download(fashion_dir):
    directory, _ = fashion_dir
    (directory / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz"):
        load("fashion_mnist", directory, download=False)


def test_fashion_mnist_inconsistent_files(fashion_dir):
    directory, (x, y, *_) = fashion_dir
    _write_idx(directory / "train-labels-idx1-ubyte.gz", y[:-10])
    with pytest.raises(ValueError, match="inconsistent"):
        load("fashion_mnist", directory, download=False)


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda d: b"\x01" + d[1:], "magic"),
        (lambda d: d[:-7], "body"),
        (lambda d: d + b"\x00", "body"),
        (lambda d: d[:2] + b"\x0d" + d[3:], "type"),
        (lambda d: d[:6], "IDX"),  # the header itself is cut short
    ],
    ids=["bad-magic", "short-body", "long-body", "float-type", "short-header"],
)
def test_corrupt_idx_refused(fashion_dir, corrupt, message):
    directory, (x, *_) = fashion_dir
    path = directory / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(corrupt(_idx_bytes(x)))
    with pytest.raises(ValueError, match=message):
        read_idx(path)
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz"):
        load("fashion_mnist", directory, download=False)


@pytest.mark.parametrize("name", ["images.idx", "images.idx.gz"])
def test_read_idx_plain_and_gzip(tmp_path, name):
    a = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    out = read_idx(_write_idx(tmp_path / name, a))
    assert out.dtype == np.uint8 and np.array_equal(out, a)
    labels = read_idx(_write_idx(tmp_path / ("labels" + name[6:]), np.array([3, 1, 4])))
    assert labels.shape == (3,) and labels.tolist() == [3, 1, 4]


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SURROBENCH_DATA", str(tmp_path))
    assert datasets.default_data_dir("flowers17") == tmp_path / "flowers17"
    monkeypatch.delenv("SURROBENCH_DATA")
    assert datasets.default_data_dir("fashion_mnist").parts[-3:] == (".cache", "surrobench", "fashion_mnist")
