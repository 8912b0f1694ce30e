"""One training run with the paper's protocol, its record, and faults recorded as data (docs/problem.md §2)."""

from __future__ import annotations

import dataclasses
import json
import types

import numpy as np
import pytest

from surrobench import space
from surrobench.datasets import DATASETS, load
from surrobench.model_size import n_params

from conftest import CURVE_KEYS, TINY_CONFIG, make_record

torch = pytest.importorskip("torch")
from surrobench.training import trainer  # noqa: E402
from surrobench.training.network import build_network  # noqa: E402
from surrobench.training.trainer import choose_device, train  # noqa: E402

EPOCHS = 2


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    return load("digits")


@pytest.fixture(scope="module")
def run_seed0():
    torch.set_num_threads(1)
    return train(TINY_CONFIG, "digits", epochs=EPOCHS, seed=0, device="cpu", threads=1)


def test_same_seed_same_curve(run_seed0):
    again = train(TINY_CONFIG, "digits", epochs=EPOCHS, seed=0, device="cpu", threads=1)
    for k in ("train_loss", "train_acc", "val_error", "test_error"):
        assert again["curve"][k] == run_seed0["curve"][k], k


def test_different_seed_different_curve(run_seed0):
    other = train(TINY_CONFIG, "digits", epochs=EPOCHS, seed=1, device="cpu", threads=1)
    assert other["curve"]["train_loss"] != run_seed0["curve"]["train_loss"]


def test_seed_sets_the_initial_weights(monkeypatch, digits):
    first_weights = []

    def spy(*args, **kwargs):
        net = build_network(*args, **kwargs)
        first_weights.append(next(net.parameters()).detach().clone())
        return net

    monkeypatch.setattr(trainer, "build_network", spy)
    for seed in (0, 0, 1):
        train(TINY_CONFIG, digits, epochs=1, seed=seed, device="cpu")
    assert torch.equal(first_weights[0], first_weights[1])
    assert not torch.equal(first_weights[0], first_weights[2])


def test_record_fields(run_seed0):
    rec = run_seed0
    info = DATASETS["digits"]
    assert rec["status"] == "ok" and rec["message"] == ""
    assert rec["schema"] == trainer.SCHEMA_VERSION
    assert rec["dataset"] == "digits" and rec["epochs"] == EPOCHS and rec["seed"] == 0
    assert rec["config"] == space.validate(TINY_CONFIG)
    assert rec["config_id"] == space.config_id(TINY_CONFIG)
    assert rec["n_params"] == n_params(TINY_CONFIG, info.input_shape, info.n_classes)
    assert rec["device"].startswith("cpu") and rec["device_type"] == "cpu"
    assert rec["jobs_on_device"] == 1 and rec["threads"] == 1
    assert {"surrobench", "python", "torch", "numpy"} <= set(rec["versions"])
    assert rec["versions"]["torch"] == torch.__version__
    assert set(rec["curve"]) == set(CURVE_KEYS)
    for k in CURVE_KEYS:
        assert len(rec["curve"][k]) == EPOCHS, k
    for k in ("train_acc", "val_error", "test_error"):
        assert all(0.0 <= v <= 1.0 for v in rec["curve"][k]), k
    assert all(v > 0 for v in rec["curve"]["train_loss"])
    assert all(v > 0 for v in rec["curve"]["train_time"] + rec["curve"]["eval_time"])
    assert rec["wall_time"] >= sum(rec["curve"]["train_time"])
    json.dumps(rec, allow_nan=False)  # JSON-ready, as the collector writes it


def test_tiny_config_learns_digits(run_seed0):
    # two epochs of Adam at lr 1e-2 on a small CNN get far below chance (0.9) on digits
    assert run_seed0["curve"]["val_error"][-1] < 0.5
    assert run_seed0["curve"]["train_loss"][-1] < run_seed0["curve"]["train_loss"][0]


def test_synthetic_record_helper_matches_trainer_schema(run_seed0):
    fake = make_record(epochs=EPOCHS)
    real = dict(run_seed0)
    assert set(fake) - {"key", "plan"} == set(real)
    assert {k: type(v) for k, v in fake.items() if k in real} == {k: type(v) for k, v in real.items()}


def test_extra_fields_and_jobs_on_device_recorded(digits):
    rec = train(TINY_CONFIG, digits, epochs=1, seed=0, device="cpu", jobs_on_device=3, extra={"key": "k1"})
    assert rec["jobs_on_device"] == 3 and rec["key"] == "k1" and rec["dataset"] == "digits"


def test_divergence_is_data(digits):
    x = digits.x_train.copy()
    x[0, 0, 0, 0] = np.nan
    bad = dataclasses.replace(digits, x_train=x)
    rec = train(TINY_CONFIG, bad, epochs=3, seed=0, device="cpu")
    chance = 1 - 1 / 10
    assert rec["status"] == "diverged" and "non-finite" in rec["message"]
    assert rec["diverged_at"] == 1
    for k in CURVE_KEYS:
        assert len(rec["curve"][k]) == 3, k
    assert rec["curve"]["val_error"] == [pytest.approx(chance)] * 3
    assert rec["curve"]["test_error"] == [pytest.approx(chance)] * 3
    assert rec["curve"]["train_time"] == [None] * 3 and rec["curve"]["train_loss"] == [None] * 3
    json.dumps(rec, allow_nan=False)


def test_divergence_after_good_epochs_keeps_them(digits, monkeypatch):
    steps_per_epoch = -(-len(digits.x_train) // TINY_CONFIG["batch_size"])

    class LossGoingNaN(torch.nn.CrossEntropyLoss):
        calls = 0

        def forward(self, logits, target):
            LossGoingNaN.calls += 1
            loss = super().forward(logits, target)
            return loss * float("nan") if LossGoingNaN.calls > steps_per_epoch else loss

    monkeypatch.setattr(trainer, "nn", types.SimpleNamespace(CrossEntropyLoss=LossGoingNaN))
    rec = train(TINY_CONFIG, digits, epochs=4, seed=0, device="cpu")
    assert rec["status"] == "diverged" and rec["diverged_at"] == 2
    curve = rec["curve"]
    assert all(len(curve[k]) == 4 for k in CURVE_KEYS)
    assert curve["train_time"][0] > 0 and curve["train_loss"][0] > 0  # the good epoch is kept
    assert curve["train_time"][1:] == [None] * 3
    assert curve["val_error"][1:] == [pytest.approx(0.9)] * 3


def test_generic_failure_is_error(monkeypatch, digits):
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(trainer, "build_network", boom)
    rec = train(TINY_CONFIG, digits, epochs=2, seed=0, device="cpu")
    assert rec["status"] == "error" and "boom" in rec["message"] and "RuntimeError" in rec["message"]
    assert rec["curve"]["val_error"] == [] and rec["wall_time"] >= 0


@pytest.mark.parametrize(
    "exc",
    [RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), MemoryError()],
    ids=["cuda-oom", "memory-error"],
)
def test_out_of_memory_is_oom(monkeypatch, digits, exc):
    def oom(*args, **kwargs):
        raise exc

    monkeypatch.setattr(trainer, "build_network", oom)
    rec = train(TINY_CONFIG, digits, epochs=2, seed=0, device="cpu")
    assert rec["status"] == "oom"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"config": {**TINY_CONFIG, "batch_size": 0}}, "batch_size"),
        ({"config": {**TINY_CONFIG, "n_conv_1": 16}}, "n_conv_1"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": 26}, "epochs"),
        ({"epochs": 2.0}, "epochs"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_invalid_input_raises_before_training(monkeypatch, kwargs, message):
    def never(*args, **kwargs):  # pragma: no cover - reached only if validation is skipped
        raise AssertionError("training started")

    monkeypatch.setattr(trainer, "_run", never)
    args = {"config": TINY_CONFIG, "dataset": "digits", "epochs": 1, "seed": 0, "device": "cpu"} | kwargs
    with pytest.raises(ValueError, match=message):
        train(args.pop("config"), args.pop("dataset"), **args)


def test_choose_device():
    assert choose_device("cpu").type == "cpu"
    for bad in ("tpu", "meta", "cuda:x", "", 3.5):  # torch's own error (or a device no run can train on): one line
        with pytest.raises(ValueError, match=r"device: expected cpu, cuda, cuda:N or mps, got "):
            choose_device(bad)
    if not torch.cuda.is_available():
        assert choose_device().type in ("cpu", "mps")
        with pytest.raises(ValueError, match="CUDA is not available"):
            choose_device("cuda")
        with pytest.raises(ValueError, match="cuda:1"):
            choose_device("cuda:1")
    else:
        assert choose_device().type == "cuda"
