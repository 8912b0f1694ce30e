"""Targeted collection plans: where optimizers go, where the surrogate is unsure."""

from __future__ import annotations

import json

import numpy as np
import pytest

from surrobench.compare import compare, write_results
from surrobench.metrics import pareto_mask
from surrobench.plans import configs_from_results, configs_from_table, uncertain_configs
from surrobench.simulator import Budget
from surrobench.space import config_id, sample, validate
from surrobench.training.collect import PlanItem, retime_items, seeded_items

from conftest import tiny_sample
from test_surrogate_synth import fitted


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    write_results(compare(None, ["random", "nsga2"], seeds=range(2), budget=Budget(evaluations=40)), out)
    return out


def test_configs_from_a_runs_table_round_trip(results_dir):
    from surrobench.compare import read_results

    runs = read_results(results_dir).runs
    configs = configs_from_table(runs)
    assert [config_id(c) for c in configs] == runs["config_id"].tolist()


def test_where_optimizers_go(results_dir):
    from surrobench.compare import read_results

    picked = configs_from_results(results_dir, 1000, 0)
    ids = [config_id(c) for c in picked]
    assert len(ids) == len(set(ids))  # deduplicated
    runs = read_results(results_dir).runs
    for _, run in runs.groupby(["optimizer", "seed"]):
        front = run[pareto_mask(run[["val_error", "log10_params"]].to_numpy())]
        assert set(front["config_id"]) <= set(ids)  # every final Pareto config is in
        last = run.sort_values("end").iloc[-1]
        assert last["config_id"] in ids  # and the late trials
    assert len(ids) < runs["config_id"].nunique()  # but not every config
    assert configs_from_results(results_dir, 5, 0) == configs_from_results(results_dir, 5, 0)
    assert configs_from_results(results_dir, 5, 0) != configs_from_results(results_dir, 5, 1)
    with pytest.raises(ValueError, match="n_configs"):
        configs_from_results(results_dir, 0, 0)
    with pytest.raises(ValueError, match="holds no metadata.json"):
        configs_from_results(results_dir / "nowhere", 5, 0)


def test_where_the_surrogate_is_unsure():
    logs, surrogate, _ = fitted()
    picked = uncertain_configs(logs, 10, 0, pool=400, n_boot=3)
    assert picked == uncertain_configs(logs, 10, 0, pool=400, n_boot=3)
    assert len({config_id(c) for c in picked}) == 10
    assert all(validate(c) == c for c in picked)
    # The synthetic truth is sure of configs far from the learn boundary (lr >= 0.05 or batch < 4
    # stays at chance): the picks sit nearer that boundary than random configs do.
    def boundary_distance(c):
        return min(abs(np.log10(c["lr_init"]) - np.log10(0.05)), abs(np.log2(c["batch_size"]) - 2.0))

    randoms = sample(seed=5, n=200)
    assert np.median([boundary_distance(c) for c in picked]) < np.median([boundary_distance(c) for c in randoms])


def test_targeted_items_are_seeded_keyed_and_recorded():
    configs = [validate(c) for c in sample(seed=1, n=4)]
    items = seeded_items("optimizers", 7, configs, source="results/main")
    assert items == seeded_items("optimizers", 7, configs, source="results/main")
    assert [it.key("flowers17", 25) for it in items][:2] == ["flowers17/e25/optimizers7/c0/r0",
                                                             "flowers17/e25/optimizers7/c1/r0"]
    assert items[0].record() == {"seed": 7, "index": 0, "replicate": 0, "retime": False, "kind": "optimizers",
                                 "source": "results/main"}
    assert items[0].stem == "optimizers7"
    assert PlanItem(3, 0, 0, configs[0], 1).record() == {"seed": 3, "index": 0, "replicate": 0, "retime": False}


def test_targeted_plans_replicate_a_seeded_share_of_their_configs():
    rng = np.random.default_rng(2)
    configs = [tiny_sample(rng) for _ in range(300)]
    single = seeded_items("optimizers", 5, configs, source="r")
    assert [it.replicate for it in single] == [0] * 300  # the default: one run per config, as before
    some = seeded_items("optimizers", 5, configs, source="r", replicate_fraction=0.2, n_replicates=3)
    assert some == seeded_items("optimizers", 5, configs, source="r", replicate_fraction=0.2, n_replicates=3)
    firsts = [it for it in some if it.replicate == 0]
    assert firsts == single  # a config's first run does not depend on the fraction
    extra = [it for it in some if it.replicate > 0]
    replicated = {it.index for it in extra}
    assert 30 <= len(replicated) <= 90 and len(extra) == 2 * len(replicated)
    for k in replicated:  # right after the first run, the same config, seeds all different
        runs = [it for it in some if it.index == k]
        assert [it.replicate for it in runs] == [0, 1, 2]
        assert all(it.config == runs[0].config and it.kind == "optimizers" for it in runs)
        assert len({it.seed for it in runs}) == 3
        assert some.index(runs[0]) + 2 == some.index(runs[2])
    assert len({it.key("digits", 25) for it in some}) == len(some)
    # the same draw per config: a larger fraction replicates a superset, more replicates extend the seeds
    more = seeded_items("optimizers", 5, configs, source="r", replicate_fraction=0.5, n_replicates=4)
    assert replicated < {it.index for it in more if it.replicate > 0}
    assert {(it.index, it.replicate, it.seed) for it in extra} < {(it.index, it.replicate, it.seed) for it in more}
    assert len(seeded_items("optimizers", 5, configs, replicate_fraction=1.0, n_replicates=2)) == 600
    with pytest.raises(ValueError, match="replicate_fraction"):
        seeded_items("optimizers", 5, configs, replicate_fraction=1.5)
    with pytest.raises(ValueError, match="n_replicates"):
        seeded_items("optimizers", 5, configs, replicate_fraction=0.5, n_replicates=0)


def test_collect_cli_replicates_targeted_plans(results_dir):
    """--replicate-fraction and --replicates reach a --plan-from plan (they were once ignored there)."""
    from surrobench.cli import _targeted_items, build_parser

    def items(*extra):
        return _targeted_items(build_parser().parse_args(
            ["collect", "--plan-from", str(results_dir), "--plan-seed", "3", "--n-configs", "20", *extra]))

    both = items("--replicate-fraction", "1", "--replicates", "2")
    assert len(both) >= 4 and [it.replicate for it in both] == [0, 1] * (len(both) // 2)
    assert [it for it in both if it.replicate == 0] == items("--replicate-fraction", "0")


def test_targeted_plans_retime_a_seeded_sample_alone():
    rng = np.random.default_rng(1)
    items = seeded_items("optimizers", 9, [tiny_sample(rng) for _ in range(300)], source="r")
    assert retime_items(items, 0.0) == []
    alone = retime_items(items, 0.2)
    assert alone == retime_items(items, 0.2) and 30 <= len(alone) <= 90
    assert all(it.retime and it.key("digits", 25).endswith("-alone") for it in alone)
    by_index = {it.index: it for it in items}
    assert all((it.config, it.seed, it.kind) == (by_index[it.index].config, by_index[it.index].seed, "optimizers")
               for it in alone)
    # the same draw for a config whichever shard it lands in
    assert [it for it in alone if it.index % 3 == 1] == retime_items([it for it in items if it.index % 3 == 1], 0.2)
    with pytest.raises(ValueError, match="retime_fraction"):
        retime_items(items, 1.5)


def test_collect_retimes_a_targeted_plan_on_a_shared_device(tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from surrobench.logs import iter_records
    from surrobench.training.collect import collect

    rng = np.random.default_rng(0)
    items = seeded_items("optimizers", 4, [tiny_sample(rng) for _ in range(4)], source="r")
    collect("digits", out_dir=tmp_path, epochs=1, device="cpu", items=items, n_jobs=2, backend="threading",
            retime_fraction=0.5)
    records = list(iter_records(tmp_path / "digits"))
    expected = retime_items(items, 0.5) + items
    assert 1 <= len(expected) - len(items) < 4
    assert sorted(r["key"] for r in records) == sorted(it.key("digits", 1) for it in expected)
    assert {r["jobs_on_device"] for r in records if r["plan"]["retime"]} == {1}
    assert {r["jobs_on_device"] for r in records if not r["plan"]["retime"]} == {2}


def test_collect_runs_a_targeted_plan_by_shards_and_resumes(tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from surrobench.logs import iter_records
    from surrobench.training.collect import collect

    rng = np.random.default_rng(0)
    items = seeded_items("uncertain", 2, [tiny_sample(rng) for _ in range(3)], source="logs")
    first = collect("digits", out_dir=tmp_path, epochs=1, device="cpu", items=items, shard=(0, 2))
    second = collect("digits", out_dir=tmp_path, epochs=1, device="cpu", items=items, shard=(1, 2))
    assert (first.finished, second.finished) == (2, 1)
    records = list(iter_records(tmp_path / "digits"))
    assert sorted(r["key"] for r in records) == sorted(it.key("digits", 1) for it in items)
    assert all(r["plan"]["kind"] == "uncertain" and r["plan"]["source"] == "logs" for r in records)
    assert sorted(p.name.split("-")[0] + "-" + p.name.split("-")[1] for p in (tmp_path / "digits").glob("*.jsonl")) == [
        "uncertain2-shard0of2", "uncertain2-shard1of2"]
    again = collect("digits", out_dir=tmp_path, epochs=1, device="cpu", items=items)
    assert again.finished == 0 and again.skipped == 3
    assert json.loads(json.dumps(records[0]["plan"]))["index"] in (0, 1, 2)


def test_collect_cli_refuses_bad_targeted_plans(tmp_path, capsys, results_dir):
    pytest.importorskip("torch")
    from surrobench.cli import main

    assert main(["collect", "--plan-from", str(tmp_path / "none"), "--out", str(tmp_path / "logs")]) == 2
    assert "holds no metadata.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["collect", "--plan-from", str(results_dir), "--plan-uncertain", "x", "--out", str(tmp_path / "logs")])
    assert exc.value.code == 2
    assert "not allowed with" in capsys.readouterr().err
    assert not (tmp_path / "logs").exists()


def test_plan_value_tool_compares_arms_at_equal_cost(tmp_path, capsys):
    """tools/plan_value.py on synthetic logs split into a held-out plan, a random and a targeted arm."""
    import importlib.util

    from test_surrogate_synth import synthetic_logs

    src = synthetic_logs(tmp_path / "src") / "synthetic.jsonl"
    out = tmp_path / "logs"
    out.mkdir()
    with open(src) as fh, open(out / "runs.jsonl", "w") as dst:
        for line in fh:
            rec = json.loads(line)
            _, c, r = rec["key"].split("/")  # synth/c<i>/r<j>: a config's seeds stay in one plan
            plan = ["s5", "s6", "optimizers7", "s1"][int(c[1:]) % 4]
            rec["key"] = f"flowers17/e25/{plan}/{c}/{r}"
            rec["wall_time"] = 10.0
            dst.write(json.dumps(rec) + "\n")
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("plan_value", Path(__file__).parent.parent / "tools" / "plan_value.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.plan_of("flowers17/e25/optimizers7/c3/r0") == "optimizers7"
    assert tool.main([str(out), "--heldout", "5", "--random", "6", "--targeted", "optimizers7"]) == 0
    text = capsys.readouterr().out
    assert "base + random arm" in text and "base + targeted arm" in text
    assert "90 % paired bootstrap" in text
    assert tool.main([str(out), "--heldout", "5", "--random", "6", "--targeted", "uncertain9"]) == 2
    assert "90 % paired bootstrap" in text


def test_plan_value_bootstrap_interval_sees_a_better_arm():
    """The paired interval is [0, 0] for identical predictions and above 0 where one arm is the truth."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("plan_value", Path(__file__).parent.parent / "tools" / "plan_value.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    rng = np.random.default_rng(0)
    truth = rng.random(60)
    noisy = truth + rng.normal(0, 0.3, 60)
    same = tool.paired_bootstrap(noisy, noisy, truth, n_boot=50)
    assert same["tau"] == (0.0, 0.0) and same["top20_tau"] == (0.0, 0.0)
    better = tool.paired_bootstrap(noisy, truth, truth, n_boot=50)
    assert better["tau"][0] > 0.2
    worse = tool.paired_bootstrap(truth, noisy, truth, n_boot=50)
    assert worse["tau"][1] < -0.2


def test_plan_value_clock_costs_runs_alike(tmp_path):
    """--clock costs every run by one device clock: a run's cost is its config's, not its logged time."""
    import importlib.util
    from pathlib import Path

    from surrobench.benchmark import load
    spec = importlib.util.spec_from_file_location("plan_value", Path(__file__).parent.parent / "tools" / "plan_value.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)

    class Data:
        configs = sample(1, n=3)

    got = tool.clock_seconds(Data, "flowers17-cpu")
    bench = load("flowers17-cpu")
    assert got.tolist() == [bench.cost(c, 25) for c in Data.configs] and (got > 0).all()


def test_runs_per_plan_names_random_and_targeted_plans():
    """The quality card says which plans a surrogate was fitted on, counted from the run keys."""
    from surrobench.surrogate.build import runs_per_plan

    keys = ["flowers17/e25/s5/c3/r0", "flowers17/e25/s5/c4/r1", "flowers17/e25/optimizers7/c3/r0",
            "flowers17/e25/s1000/c1/r0-alone", "flowers17/e25/uncertain8/c0/r0", "odd"]
    assert runs_per_plan(keys) == "optimizers 7 (1), other (1), random 5 (2), random 1000 (1), uncertain 8 (1)"
