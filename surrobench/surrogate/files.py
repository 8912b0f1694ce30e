"""Surrogate files: a directory of XGBoost model files plus a manifest, and its archive.

Layout of a surrogate directory ``<name>/``::

    manifest.json   schema version, space, objectives, reference point, fidelity, dataset,
                    devices, training-data hash, library versions, quality card, noise and
                    XGBoost parameters, and the sha256 and size of every other file
    learns.ubj      XGBoost's own model format (UBJSON), written by Booster.save_raw
    curves.ubj
    runtime.ubj
    fast.ubj        the three merged into one booster (one call per prediction), checked
                    against them on every load
    parity.png      predicted vs measured on held-out configs

Nothing here unpickles: the manifest is JSON, the models are read by XGBoost's own
loader from bytes whose sha256 was checked first. A directory or archive is refused with
a message saying what is wrong when a file is missing, unlisted, truncated, altered, of a
future schema version, or when an archive member is not a plain file inside one folder;
names, types and sizes are checked against the manifest and hard ceilings before any other
member is read (see :mod:`surrobench.surrogate.archive`).
``manifest_sha256`` guards the manifest against damage; it is no signature — for
provenance compare the archive with the ``.sha256`` published beside it.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import io
import json
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from .._paths import check_writable_dir
from .archive import MANIFEST, SAFE_NAME, SurrogateFileError, check_sizes, is_archive, read_archive, read_dir
from .archive import fail as _fail
from ..space import MAX_EPOCH
from .build import SCHEMA_VERSION
from .features import FEATURES
from .fast import TOLERANCE, check_agreement
from .clock import Clock
from .model import N_OUT, CurveModel, RuntimeModel, Surrogate, TailMap
from .noise import NoiseModel

__all__ = [
    "SUPPORTED_SCHEMA",
    "save_surrogate",
    "check_surrogate_out",
    "load_surrogate",
    "read_files",
    "publish",
    "unpack_archive",
    "manifest_digest",
    "SurrogateFileError",
]

SUPPORTED_SCHEMA = SCHEMA_VERSION
MODEL_KEYS = ("learns", "curves", "runtime", "fast")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON, without its own ``manifest_sha256`` field."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return _sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode())


def check_name(name: str) -> str:
    if not isinstance(name, str) or not SAFE_NAME.match(name) or name.endswith((".tar.gz", ".tgz")):
        raise ValueError(f"name: {name!r} must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name


# ----------------------------------------------------------------------------------------- writing


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def surrogate_files(surrogate: Surrogate) -> dict[str, bytes]:
    """Every file of the surrogate directory, the manifest last (it lists the others)."""
    files = {
        "learns.ubj": bytes(surrogate.curve.learns.save_raw("ubj")),
        "curves.ubj": bytes(surrogate.curve.curves.save_raw("ubj")),
        "runtime.ubj": bytes(surrogate.runtime.booster.save_raw("ubj")),
        "fast.ubj": bytes(surrogate.fast.save_raw("ubj")),
    }
    if surrogate.parity_png:
        files["parity.png"] = bytes(surrogate.parity_png)
    manifest = {k: v for k, v in surrogate.manifest.items() if k not in ("files", "manifest_sha256")}
    manifest["files"] = {n: {"sha256": _sha256(b), "bytes": len(b)} for n, b in sorted(files.items())}
    manifest["manifest_sha256"] = manifest_digest(manifest)
    surrogate.manifest = manifest
    files[MANIFEST] = (json.dumps(manifest, indent=1, allow_nan=False) + "\n").encode()
    return files


def check_surrogate_out(directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Raise ``ValueError`` unless :func:`save_surrogate` may write ``directory``: a folder that is
    absent or empty, or (with ``overwrite``) an earlier surrogate directory, in a writable place.
    Changes nothing; returns ``directory`` as a :class:`~pathlib.Path`."""
    directory = check_writable_dir(directory, "out")
    if directory.is_dir() and any(directory.iterdir()):
        if not overwrite:
            raise ValueError(f"out: {directory} exists and is not empty (pass overwrite / --force to replace it)")
        if not _is_surrogate_dir(directory):
            raise ValueError(f"out: {directory} is not a surrogate directory (no surrogate manifest.json); not replacing it")
        for entry in directory.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                raise ValueError(
                    f"out: {directory} holds a folder {entry.name!r}; not a surrogate directory, not replacing it"
                )
    return directory


def save_surrogate(surrogate: Surrogate, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write the surrogate directory (refuses a non-empty directory unless ``overwrite``, and then
    replaces only an earlier surrogate directory, see :func:`check_surrogate_out`)."""
    check_name(surrogate.name)
    directory = check_surrogate_out(directory, overwrite=overwrite)
    if directory.is_dir():
        for entry in directory.iterdir():
            entry.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    files = surrogate_files(surrogate)
    for fname, data in files.items():  # manifest last: a half-written directory fails its checks
        _write_atomic(directory / fname, data)
    return directory


def _is_surrogate_dir(directory: Path) -> bool:
    try:
        return json.loads((directory / MANIFEST).read_text()).get("format") == "surrobench-surrogate"
    except (OSError, ValueError, AttributeError):
        return False


# ----------------------------------------------------------------------------------------- reading


def read_files(path: str | os.PathLike) -> tuple[str, dict[str, bytes]]:
    """The files of a surrogate directory or archive (archive members checked, nothing written)."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"surrogate: {path} does not exist")
    if path.is_dir():
        return str(path), read_dir(path, lambda raw: _manifest_of(raw, str(path)))
    if is_archive(path):
        top, files = read_archive(path, lambda raw: _manifest_of(raw, str(path)))
        return f"{path}:{top}", files
    raise ValueError(f"surrogate: {path} is neither a surrogate directory nor a .tar.gz archive")


def _parse_manifest(files: dict[str, bytes], origin: str) -> dict[str, Any]:
    if MANIFEST not in files:
        raise _fail(origin, f"{MANIFEST} is missing (not a surrogate directory)")
    return _manifest_of(files[MANIFEST], origin)


def _manifest_of(raw: bytes, origin: str) -> dict[str, Any]:
    try:
        manifest = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        raise _fail(origin, f"{MANIFEST} is damaged or truncated (not valid JSON: {exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "surrobench-surrogate":
        raise _fail(origin, f"{MANIFEST} is not a surrobench surrogate manifest")
    version = manifest.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _fail(origin, f"{MANIFEST} has an invalid schema_version {version!r}")
    if version > SUPPORTED_SCHEMA:
        raise _fail(
            origin,
            f"{MANIFEST} has schema_version {version}, newer than this surrobench supports ({SUPPORTED_SCHEMA}): "
            "upgrade surrobench to load it",
        )
    if manifest.get("manifest_sha256") != manifest_digest(manifest):
        raise _fail(origin, f"{MANIFEST} was altered or damaged after it was written (manifest_sha256 does not match)")
    return manifest


def _no_constant(name: str):
    raise ValueError(f"non-standard JSON constant {name}")


def _check_listed(files: dict[str, bytes], manifest: dict[str, Any], origin: str) -> None:
    listed = check_sizes({fname: len(data) for fname, data in files.items()}, manifest, origin)
    for fname, entry in sorted(listed.items()):
        if _sha256(files[fname]) != entry["sha256"]:
            raise _fail(origin, f"{fname} does not match its sha256 in {MANIFEST}: damaged or tampered")


def _array(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.shape != shape or not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} must be finite numbers of shape {shape}, got shape {arr.shape}")
    return arr


def _booster(files: dict[str, bytes], fname: str, origin: str) -> xgb.Booster:
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(files[fname]))
    except (xgb.core.XGBoostError, UnicodeDecodeError) as exc:  # xgboost's message may quote the damaged bytes
        text = str(exc).strip() if isinstance(exc, xgb.core.XGBoostError) else "not a readable model"
        first = text.splitlines()[0] if text else type(exc).__name__
        raise _fail(origin, f"{fname} could not be read by xgboost {xgb.__version__}: {first}") from None
    booster.set_param({"nthread": 1})
    if booster.num_features() != len(FEATURES):
        raise _fail(origin, f"{fname} expects {booster.num_features()} features, this surrobench provides {len(FEATURES)}")
    return booster


def _build(files: dict[str, bytes], manifest: dict[str, Any], origin: str) -> Surrogate:
    try:
        if list(manifest["features"]) != list(FEATURES):
            raise ValueError(f"features {manifest['features']} differ from this surrobench's {list(FEATURES)}")
        check_name(manifest["name"])
        ds = manifest["dataset"]
        shape = [int(v) for v in ds["input_shape"]]
        sizes = [int(v) for v in ds["split_sizes"]]
        if len(shape) != 3 or min(shape) < 1 or len(sizes) != 3 or min(sizes) < 1 or int(ds["n_classes"]) < 2:
            raise ValueError("dataset input_shape, split_sizes or n_classes out of range")
        fid = manifest["fidelity"]
        if (fid["min"], fid["max"]) != (1, MAX_EPOCH):
            raise ValueError(f"fidelity {fid['min']}..{fid['max']} differs from this surrobench's 1..{MAX_EPOCH}")
        models = manifest["models"]
        cm = models["curves"]
        components = np.asarray(cm["pca_components"], dtype=float)
        k = components.shape[0] if components.ndim == 2 else -1
        if k < 1:
            raise ValueError("curves.pca_components must be a non-empty matrix")
        components = _array(components, (k, N_OUT), "curves.pca_components")
        vectors = {key: _array(cm[key], (N_OUT,), f"curves.{key}") for key in ("pca_mean", "chance_curve", "lower", "upper")}
        lower, upper = vectors["lower"], vectors["upper"]
        if not (np.all(lower > 0) and np.all(upper < 1) and np.all(lower < upper)):
            raise ValueError("curves.lower/upper must satisfy 0 < lower < upper < 1")
        if not np.all((vectors["chance_curve"] >= 0) & (vectors["chance_curve"] <= 1)):
            raise ValueError("curves.chance_curve must lie in [0, 1]")
        noise = NoiseModel.from_dict(manifest["noise"])
        device = str(models["runtime"]["device"])
        extras = _schema2_parts(manifest, models, cm)
        fnames = {key: str(models[key]["file"]) for key in MODEL_KEYS}
        for key, fname in fnames.items():
            if fname not in manifest["files"]:
                raise ValueError(f"model {key!r} file {fname!r} is not listed among the files")
        if not isinstance(manifest.get("quality"), dict):
            raise ValueError("quality card missing")
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise _fail(origin, f"{MANIFEST} is malformed: {what}") from None
    boosters = {key: _booster(files, fname, origin) for key, fname in fnames.items()}
    curve = CurveModel(boosters["learns"], boosters["curves"], vectors["pca_mean"], components,
                       vectors["chance_curve"], vectors["lower"], vectors["upper"], calibration=extras["calibration"],
                       tail=extras["tail"], chance_bank=extras["chance_bank"], learn_corr=extras["learn_corr"])
    runtime = RuntimeModel(boosters["runtime"], device, extras["clock"])
    probe = np.full((1, len(FEATURES)), np.nan)
    for key, booster, width in (("learns", curve.learns, 1), ("curves", curve.curves, k), ("runtime", runtime.booster, 2)):
        got = np.asarray(booster.inplace_predict(probe)).size
        if got != width:
            raise _fail(origin, f"{fnames[key]} has {got} outputs, {MANIFEST} implies {width}")
    fast = boosters["fast"]
    got = np.asarray(fast.inplace_predict(probe)).size
    if got != k + 3:
        raise _fail(origin, f"{fnames['fast']} has {got} outputs, {MANIFEST} implies {k + 3}")
    surrogate = Surrogate(manifest=manifest, curve=curve, runtime=runtime, noise=noise,
                          parity_png=files.get("parity.png"), fast=fast)
    gap = check_agreement(fast, surrogate.parts, len(FEATURES))
    if gap > TOLERANCE:
        raise _fail(
            origin, f"{fnames['fast']} disagrees with the separate models (by {gap:.3g}): damaged or not built from them"
        )
    return surrogate


def _schema2_parts(manifest: dict[str, Any], models: dict[str, Any], curves: dict[str, Any]) -> dict[str, Any]:
    """Calibration, tail map, draw parameters and clock (schema 2); schema-1 files have none."""
    out: dict[str, Any] = {"calibration": (1.0, 0.0), "tail": None, "chance_bank": None, "learn_corr": 0.0,
                           "clock": None}
    if int(manifest["schema_version"]) < 2:
        return out
    cal = models["learns_calibration"]
    a, b = float(cal["a"]), float(cal["b"])
    if not (np.isfinite(a) and np.isfinite(b) and a > 0):
        raise ValueError("learns_calibration needs finite a > 0 and b")
    out["calibration"] = (a, b)
    tail = curves.get("tail_map")
    if tail is not None:
        x = np.asarray(tail["x"], dtype=float)
        if x.ndim != 2 or x.shape[0] != N_OUT:
            raise ValueError(f"curves.tail_map needs {N_OUT} rows of knots")
        out["tail"] = TailMap(x, _array(tail["y"], x.shape, "curves.tail_map.y"))
    draws = models["draws"]
    corr = float(draws["learn_corr"])
    if not 0.0 <= corr < 1.0:
        raise ValueError(f"draws.learn_corr must lie in [0, 1), got {corr}")
    out["learn_corr"] = corr
    if draws.get("chance_bank") is not None:
        bank = np.asarray(draws["chance_bank"], dtype=float)
        bank = _array(bank, (bank.shape[0] if bank.ndim == 2 else -1, N_OUT), "draws.chance_bank")
        if len(bank) < 1 or not np.all((bank >= 0) & (bank <= 1)):
            raise ValueError("draws.chance_bank must hold curves in [0, 1]")
        out["chance_bank"] = bank
    out["clock"] = Clock.from_dict(models["runtime"]["clock"])
    return out


def load_surrogate(path: str | os.PathLike) -> Surrogate:
    """Load and verify a surrogate directory or ``.tar.gz`` archive (see the module docstring)."""
    origin, files = read_files(path)
    manifest = _parse_manifest(files, origin)
    _check_listed(files, manifest, origin)
    return _build(files, manifest, origin)


# ------------------------------------------------------------------------------------- publishing


def publish(directory: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Verify a surrogate directory and pack it as ``<name>.tar.gz`` plus ``<name>.tar.gz.sha256``.

    The archive is byte-reproducible: sorted members, fixed owner, modes and times.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"publish: {directory} is not a surrogate directory")
    surrogate = load_surrogate(directory)
    name = surrogate.name
    out = check_writable_dir(out_dir if out_dir is not None else directory.parent, "publish")
    out.mkdir(parents=True, exist_ok=True)
    _, files = read_files(directory)
    mtime = _created(surrogate.manifest)
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
            tar.addfile(info)
            for fname in [MANIFEST] + sorted(f for f in files if f != MANIFEST):
                info = tarfile.TarInfo(f"{name}/{fname}")
                info.size, info.mode, info.mtime = len(files[fname]), 0o644, mtime
                tar.addfile(info, io.BytesIO(files[fname]))
    data = raw.getvalue()
    archive = out / f"{name}.tar.gz"
    sha_path = out / f"{name}.tar.gz.sha256"
    _write_atomic(archive, data)
    _write_atomic(sha_path, f"{_sha256(data)}  {archive.name}\n".encode())
    load_surrogate(archive)  # what was written must load
    return archive, sha_path


def _created(manifest: dict[str, Any]) -> int:
    try:
        return int(_dt.datetime.fromisoformat(manifest["created"]).timestamp())
    except (KeyError, TypeError, ValueError):
        return 0


def unpack_archive(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Load ``archive`` exactly as :func:`load_surrogate` does (every member, the manifest and the
    models checked), then write its folder under ``dest``; a refused archive writes nothing.

    Members are written by this function, never by ``tarfile.extractall``; each lands at
    ``dest/<folder>/<plain name>``, which is checked to lie inside ``dest``.
    """
    archive, dest = Path(archive), Path(dest)
    if not is_archive(archive) or not archive.is_file():
        raise ValueError(f"unpack: {archive} is not a .tar.gz archive")
    origin = str(archive)
    top, files = read_archive(archive, lambda raw: _manifest_of(raw, origin))
    manifest = _parse_manifest(files, origin)
    _check_listed(files, manifest, origin)
    _build(files, manifest, f"{origin}:{top}")  # what load_surrogate would refuse is not written
    root = dest.resolve()
    target = (root / top).resolve()
    if target.parent != root:
        raise _fail(origin, f"folder {top!r} would land outside {dest}")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ValueError(f"unpack: {target} exists and is not an empty folder")
    target.mkdir(parents=True, exist_ok=True)
    for fname, data in files.items():
        path = (target / fname).resolve()
        if path.parent != target:
            raise _fail(origin, f"member {fname!r} would land outside {target}")
        _write_atomic(path, data)
    return target
