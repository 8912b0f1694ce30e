"""tools/quality_vs_data.py: grouped, nested, stratified splits; the extrapolation; a run on synthetic logs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from conftest import load_tool
from test_surrogate_synth import GPU, synthetic_logs


@pytest.fixture(scope="module")
def qvd():
    return load_tool("quality_vs_data")


def test_split_is_grouped_nested_and_stratified(qvd):
    curve_ids = np.repeat([f"c{i:03d}" for i in range(100)], [3 if i % 7 == 0 else 1 for i in range(100)])
    rt_ids = np.array([f"c{i:03d}" for i in range(0, 100, 4)] + ["t000"])  # one timed config has no curve
    held, train = qvd.split(curve_ids, rt_ids, holdout=0.2, fractions=[0.25, 0.5, 1.0],
                            rng=np.random.default_rng(1))
    all_ids = set(curve_ids) | set(rt_ids)
    assert len(held) == len(set(held)) and not set(held) & set(train[-1])
    assert set(held) | set(train[-1]) == all_ids  # every config is used, each on one side only
    assert set(train[0]) < set(train[1]) < set(train[2])
    assert [len(t) for t in train] == [5 + 15, 10 + 30, 21 + 60]  # 26 timed, 75 untimed configs
    timed = set(rt_ids)
    assert len(timed & set(held)) == round(0.2 * len(timed)) and len(set(held) - timed) == round(0.2 * 75)
    again, _ = qvd.split(curve_ids, rt_ids, holdout=0.2, fractions=[1.0], rng=np.random.default_rng(1))
    assert list(again) == list(held)


def test_extrapolate(qvd):
    n = np.array([100.0, 200.0, 400.0])
    taus = 0.2 + 0.05 * np.log(n)
    assert qvd.extrapolate(n, taus, 0.2 + 0.05 * math.log(5000)) == pytest.approx(5000, rel=1e-9)
    assert qvd.extrapolate(n, taus[::-1], 0.9) is None  # falling with data: no answer
    assert qvd.extrapolate(n, taus, None) is None


def test_run_on_synthetic_logs(qvd, tmp_path, capsys):
    logs = synthetic_logs(tmp_path / "logs")
    out = tmp_path / "qvd.json"
    argv = [str(logs), "--grid", "quick", "--repeats", "2", "--device", GPU, "--json", str(out)]
    assert qvd.main(argv) == 0
    text = capsys.readouterr().out
    assert text.count("\n| ") == 5 and "| noise ceiling: rerun vs rerun | 24 replicated configs |" in text
    res = json.loads(out.read_text())
    assert res["device"] == GPU and res["n_replicated_configs"] == 24
    rows = res["results"]
    assert [(r["repeat"], r["fraction"]) for r in rows] == [(r, f) for r in (0, 1) for f in (0.25, 0.5, 1.0)]
    for r in (0, 1):
        mine = [x for x in rows if x["repeat"] == r]
        assert len({x["n_test_runs"] for x in mine}) == 1  # the same held-out configs for every fraction
        sizes = [x["n_train_configs"] for x in mine]
        assert sizes[0] < sizes[1] < sizes[2] == 112  # 80 % of 140 configs
        assert mine[-1]["val_tau"] >= 0.5  # the synthetic truth is learnable
    assert rows[0]["val_tau"] != rows[3]["val_tau"]  # the repeats draw different hold-outs
    assert len(res["extrapolated_configs_per_draw"]) == 2
    tau_full = np.mean([x["val_tau"] for x in rows if x["fraction"] == 1.0])
    if tau_full >= res["rerun"]["kendall_tau"]:  # the synthetic truth is smooth: it may beat a rerun
        assert "already reaches the noise ceiling" in text
    else:
        assert res["extrapolated_configs"] > 112 and "rough extrapolation" in text


@pytest.mark.parametrize("bad", [["--fractions", "0.5,2"], ["--holdout", "0.9"], ["--repeats", "0"]])
def test_bad_arguments_exit_2(qvd, tmp_path, bad):
    with pytest.raises(SystemExit) as exc:
        qvd.main([str(tmp_path), *bad])
    assert exc.value.code == 2


def test_unknown_device_exits_2(qvd, tmp_path, capsys):
    logs = synthetic_logs(tmp_path / "logs", n_configs=30, n_replicated=5)
    assert qvd.main([str(logs), "--device", "cuda:nope", "--grid", "quick"]) == 2
    assert "device: no run had 'cuda:nope' alone" in capsys.readouterr().err
