"""tools/bench_protocol.py: the runs of several seeds pooled per optimizer, and the estimate they give."""

from __future__ import annotations

import argparse
import time

import pytest

from conftest import load_tool


def _run(optimizer, seed, jobs, cpu, opt, bench, ms_median):
    return {"optimizer": optimizer, "seed": seed, "jobs": jobs, "decisions": jobs + 1, "wall_s": cpu + 0.5,
            "cpu_s": cpu, "ms_median": ms_median, "ms_mean": 1e3 * opt / (jobs + 1), "optimizer_s": opt,
            "benchmark_s": bench}


RUNS = [_run("ehvi", 0, 10, 2.0, 1.0, 0.5, 1.0), _run("ehvi", 1, 30, 4.0, 2.0, 1.0, 3.0),
        _run("ehvi", 2, 20, 9.0, 3.0, 3.0, 2.0), _run("random", 0, 7, 1.0, 0.25, 0.5, 0.01)]


def test_pooled_takes_medians_of_counts_and_means_of_seconds_per_optimizer():
    tool = load_tool("bench_protocol")
    ehvi, random = tool.pooled(RUNS)
    assert [ehvi["optimizer"], random["optimizer"]] == ["ehvi", "random"]
    assert (ehvi["seeds"], ehvi["jobs"], ehvi["decisions"], ehvi["ms_median"]) == (3, 20, 21, 2.0)
    assert ehvi["cpu_s"] == pytest.approx(5.0) and (ehvi["cpu_min"], ehvi["cpu_max"]) == (2.0, 9.0)
    assert ehvi["optimizer_s"] == pytest.approx(2.0) and ehvi["benchmark_s"] == pytest.approx(1.5)
    assert ehvi["ms_mean"] == pytest.approx(1e3 * 6.0 / 63)  # all optimizer seconds over all decisions
    # benchmark + simulator (cpu - optimizer) over all jobs: (1 + 2 + 6) s over 60 jobs
    assert ehvi["outside_us_per_job"] == pytest.approx(1e6 * 9.0 / 60)
    assert {k: random[k] for k in ("jobs", "cpu_s", "ms_median", "ms_mean")} == \
        {k: RUNS[3][k] for k in ("jobs", "cpu_s", "ms_median", "ms_mean")}  # one run stays itself


def test_report_estimates_the_protocol_from_the_mean_run_of_each_optimizer(capsys):
    tool = load_tool("bench_protocol")
    args = argparse.Namespace(hours=24.0, seed=0, costed_seeds=3, settings={}, seeds=10, cores=2, goal_minutes=10.0)
    tool.report({"runs": RUNS}, None, args)
    out = capsys.readouterr().out
    assert "seeds 0..2 per optimizer" in out and "2.0-9.0" in out
    # (5.0 + 1.0) cpu s per seed, 10 seeds on 2 cores: 30 s = 0.5 min
    assert "sum over optimizers: 6.0 cpu s per seed (the mean run of each over 3 seeds)" in out
    assert "perfect packing): 0.5 min" in out


def test_report_says_when_an_optimizer_named_twice_is_pooled(capsys):
    tool = load_tool("bench_protocol")
    args = argparse.Namespace(hours=24.0, seed=0, costed_seeds=1, settings={}, seeds=10, cores=2, goal_minutes=10.0)
    twice = [_run("ehvi", 0, 10, 2.0, 1.0, 0.5, 1.0), _run("ehvi", 0, 10, 4.0, 3.0, 0.5, 3.0)]
    tool.report({"runs": twice}, None, args)
    out = capsys.readouterr().out
    assert "each row pools its runs (both sides): ehvi 2x" in out
    assert "sum over optimizers: 3.0 cpu s per seed" in out  # the mean of the two runs
    tool.report({"runs": twice[:1]}, None, args)
    assert "pools" not in capsys.readouterr().out


def test_report_says_what_the_goal_leaves_the_optimizers(capsys):
    tool = load_tool("bench_protocol")
    # per seed: ehvi 5.0 cpu s (2.0 optimizer), random 1.0 (0.25): 6.0 in all, 3.75 outside the optimizers
    args = argparse.Namespace(hours=24.0, seed=0, costed_seeds=3, settings={}, seeds=10, cores=2, goal_minutes=0.05)
    tool.report({"runs": RUNS}, None, args)
    out = capsys.readouterr().out
    # 0.05 min on 2 cores for 10 seeds: 0.6 cpu s per seed, less than the 3.75 outside
    assert "benchmark + simulator: 3.8 of the 6.0 cpu s per seed (62 %) (the 2 optimizers measured" in out
    assert "(0.6 cpu s per seed) is exceeded by the benchmark and simulator alone" in out
    args.goal_minutes = 0.5  # 6.0 cpu s per seed: 2.25 left for optimizers that spend 2.25
    tool.report({"runs": RUNS}, None, args)
    assert capsys.readouterr().out.rstrip().endswith("leaves the optimizers 2.2 cpu s per seed, more than their 2.2")
    args.goal_minutes = 0.4375  # 5.25 cpu s per seed: 1.5 left, 2.25 needed
    tool.report({"runs": RUNS}, None, args)
    assert "leaves the optimizers 1.5 cpu s per seed, 1.5x less than their 2.2" in capsys.readouterr().out


def test_the_goal_line_of_some_optimizers_says_so_and_never_that_the_goal_is_met():
    tool = load_tool("bench_protocol")
    args = argparse.Namespace(seeds=10, cores=2, goal_minutes=10.0)
    some = tool.goal_line(20.0, 5.0, args, ["ehvi", "random", "ehvi"])
    assert "(the 2 optimizers measured, not the protocol's nine)" in some
    assert "more than their 15.0" in some and "goal is met" not in some
    every = tool.goal_line(20.0, 5.0, args, list(tool.DEFAULT_ORDER))
    assert "not the protocol's nine" not in every and every.endswith("more than their 15.0: the goal is met")


def _spin(n):
    return sum(i * i for i in range(n))


def test_profile_lines_rank_functions_by_own_time_with_their_shares():
    import cProfile

    tool = load_tool("bench_protocol")
    # this thread's CPU time: threads an earlier test left behind (a dask cluster's, retrying its
    # connections) take the GIL now and then, and wall time would charge their turns to whichever
    # function of ours was waiting
    profile = cProfile.Profile(time.thread_time)
    profile.enable()
    for _ in range(20):
        _spin(20000)
    profile.disable()
    lines = tool.profile_lines(profile, 3)
    assert len(lines) == 4 and lines[0].split()[:4] == ["own", "s", "own", "%"]
    # the generator expression inside _spin and the sum that drives it do the work (their own shares
    # split about 56/44, by how the profiler charges each resumption: not a fixed ratio under load);
    # _spin itself holds it (inclusive) and owns next to nothing
    rows = {line.split(None, 5)[5]: [float(v) for v in line.split()[:4]] for line in lines[1:]}
    genexpr = next(k for k in rows if "<genexpr>" in k)
    summed = next(k for k in rows if "builtins.sum" in k)
    spin = next(k for k in rows if "(_spin)" in k)
    assert rows[genexpr][1] + rows[summed][1] > 90 and rows[genexpr][1] > 20 and rows[summed][1] > 20
    assert rows[spin][1] < 5 and rows[spin][3] > 90
    assert all(0 <= r[1] <= r[3] <= 100.0 + 1e-9 for r in rows.values())  # own <= inclusive <= all
    assert [r[0] for r in rows.values()] == sorted((r[0] for r in rows.values()), reverse=True)


def test_profile_is_refused_with_before_and_when_negative(capsys):
    tool = load_tool("bench_protocol")
    for argv in (["--profile", "5", "--before", "HEAD"], ["--profile", "-1"]):
        with pytest.raises(SystemExit) as e:
            tool.main(argv)
        assert e.value.code == 2
        assert "--profile" in capsys.readouterr().err


def test_a_short_profiled_run_prints_its_costliest_functions_and_the_table(capsys):
    tool = load_tool("bench_protocol")
    assert tool.main(["--hours", "0.05", "--optimizers", "random", "--scan-jobs", "0", "--optuna-trials", "0",
                      "--profile", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    head = next(i for i, line in enumerate(out) if line.startswith("profile of random seed 0 ("))
    assert out[head + 1].split()[:2] == ["own", "s"] and len(out[head + 2].split()) >= 6
    assert out[head + 5].startswith("one seed (0) per optimizer")  # a header, three functions, then the table
    assert any(line.startswith("random ") for line in out)
    assert out[-1].startswith("benchmark + simulator:") and "not the protocol's nine" in out[-1]


def test_moasha_fronts_watches_every_add_without_changing_a_decision(capsys):
    from toybench import ToyBenchmark

    from surrobench.optimizers import MOASHA
    from surrobench.optimizers._fronts import Fronts
    from surrobench.simulator import Budget, simulate

    tool = load_tool("moasha_fronts")
    add = Fronts.add
    problem = ToyBenchmark().problem(n_workers=1, budget=Budget(seconds=4 * 3600.0))
    plain = simulate(ToyBenchmark(), MOASHA(problem, seed=1), problem, seed=2)
    optimizer = MOASHA(problem, seed=1)
    table, seen = tool.watch(lambda: simulate(ToyBenchmark(), optimizer, problem, seed=2))
    assert Fronts.add is add and table.equals(plain)  # put back, and the same jobs
    rows = tool.rung_rows(optimizer, seen)
    assert [r["results"] for r in rows] == optimizer.rung_sizes() and rows[0]["results"] > 50
    assert all(r["to_pool"] + r["entered"] == r["results"] for r in rows)
    assert rows[0]["entered"] > 0 and rows[0]["fronts_end"] > 0  # rung 0's top third was peeled into kept fronts
    assert rows[-1]["fronts_end"] == 0 and rows[-1]["entered"] == 0  # nothing is promoted from the top rung
    assert tool.main(["--benchmark", "toy", "--hours", "4", "--seed", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("MO-ASHA, run 0 of `surrobench compare`, 4 simulated hours, 1 worker, toy: ")
    assert [line.split()[0] for line in out[2:6]] == ["0", "1", "2", "3"]
