"""``collect --dry-run``: the runs a collect command would start, in its order, without training."""

from __future__ import annotations

import pytest

from conftest import make_record, write_records
from surrobench.cli import main
from surrobench.logs import iter_records
from surrobench.space import config_id
from surrobench.training.collect import pending_runs, plan_items


def _rows(out: str) -> list[list[str]]:
    """The table rows of a dry run's output (the lines that start with a run key)."""
    return [line.split() for line in out.splitlines() if line.startswith("digits/e")]


def test_pending_runs_are_the_plan_in_order_when_nothing_is_logged(tmp_path):
    items = plan_items(7, 6, replicate_fraction=0.5)
    todo, planned, name = pending_runs("digits", out_dir=tmp_path, plan_seed=7, n_configs=6, epochs=1,
                                       replicate_fraction=0.5)
    assert todo == items and planned == len(items) > 6
    assert name == "plan 7 shard 0/1 of digits"
    assert not list(tmp_path.iterdir())  # nothing written, not even the dataset's folder
    shard, _, _ = pending_runs("digits", out_dir=tmp_path, plan_seed=7, n_configs=6, epochs=1,
                               replicate_fraction=0.5, shard=(1, 2))
    assert shard == plan_items(7, 6, replicate_fraction=0.5, shard=(1, 2)) and len(shard) < len(items)


def test_pending_runs_leave_out_what_collect_logged_and_collect_runs_them_in_that_order(tmp_path):
    pytest.importorskip("torch")
    from surrobench.training.collect import collect

    args = dict(out_dir=tmp_path, plan_seed=3, epochs=1, replicate_fraction=0.0, device="cpu")
    collect("digits", n_configs=2, **args)  # configs 0 and 1 of plan 3
    before, planned, _ = pending_runs("digits", n_configs=4, **args)
    assert planned == 4 and [it.index for it in before] == [2, 3]
    collect("digits", n_configs=4, **args)
    logged = [rec["key"] for rec in iter_records(tmp_path / "digits")]
    assert logged[2:] == [it.key("digits", 1) for it in before]
    assert pending_runs("digits", n_configs=4, **args)[0] == []


def test_the_cli_lists_the_runs_and_writes_nothing(tmp_path, capsys):
    rc = main(["collect", "--dataset", "digits", "--plan-seed", "5", "--n-configs", "4", "--epochs", "2",
               "--replicate-fraction", "0", "--out", str(tmp_path), "--dry-run"])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.splitlines()[0] == "plan 5 shard 0/1 of digits: 4 runs, 0 logged, 4 to run"
    rows = _rows(out)
    assert [r[0] for r in rows] == [it.key("digits", 2) for it in plan_items(5, 4, replicate_fraction=0.0)]
    assert all(len(r) == 3 for r in rows)  # run, parameters, batch size: no clock, no seconds
    assert not list(tmp_path.iterdir())


def test_the_cli_predicts_seconds_on_a_clock(tmp_path, capsys):
    import surrobench

    rc = main(["collect", "--dataset", "flowers17", "--plan-seed", "5", "--n-configs", "4", "--epochs", "3",
               "--replicate-fraction", "0", "--out", str(tmp_path), "--dry-run", "--clock", "flowers17-cpu"])
    out = capsys.readouterr().out  # no dataset files needed: nothing is trained
    assert rc == 0
    rows = [line.split() for line in out.splitlines() if line.startswith("flowers17/e")]
    assert len(rows) == 4 and all(len(r) == 5 for r in rows)
    bench = surrobench.load("flowers17-cpu", noise=False)
    for row, item in zip(rows, plan_items(5, 4, replicate_fraction=0.0)):
        curve = bench.trajectory(item.config)[:3]  # three epochs, an evaluation after each
        evals = sum(r.eval_time for r in curve)
        assert evals > 0.02 and float(row[3]) == pytest.approx(curve[-1].train_time + evals, abs=0.006)
    seconds = [float(r[3]) for r in rows]
    assert float(rows[-1][4]) == pytest.approx(sum(seconds), abs=0.06)
    assert "predicted on the clock of flowers17-cpu-surrogate (cpu:AMD EPYC)" in out
    assert out.splitlines()[-1].startswith("predicted: ") and "for the 4 runs one at a time" in out
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("argv, words", [
    (["--clock", "digits"], "--clock: predicts the runs of --dry-run"),
    (["--dry-run", "--clock", "flowers17-cpu"], "is a surrogate of flowers17, not of digits"),
    (["--dry-run", "--clock", "no-such-surrogate"], "neither a path nor a shipped surrogate"),
])
def test_bad_clock_arguments_are_one_line_and_exit_2(tmp_path, capsys, argv, words):
    rc = main(["collect", "--dataset", "digits", "--n-configs", "2", "--epochs", "1", "--out", str(tmp_path)] + argv)
    err = capsys.readouterr().err
    assert rc == 2 and words in err and err.count("\n") == 1 and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def _logged(tmp_path, item, *, config=None, seed=None, epochs=1):
    """A record for ``item`` of a digits plan, logged under its key, with another config or seed if given."""
    rec = make_record(config or item.config, seed=item.seed if seed is None else seed, epochs=epochs,
                      key=item.key("digits", epochs))
    write_records(tmp_path / "digits" / "plan9-shard0of1-test.jsonl", [rec])


def test_a_logged_key_with_the_plans_config_and_seed_counts_as_done(tmp_path):
    items = plan_items(9, 3, replicate_fraction=0.0)
    _logged(tmp_path, items[1])
    todo, planned, _ = pending_runs("digits", out_dir=tmp_path, plan_seed=9, n_configs=3, epochs=1,
                                    replicate_fraction=0.0)
    assert planned == 3 and todo == [items[0], items[2]]


@pytest.mark.parametrize("change", ["config", "seed"])
def test_a_logged_key_with_another_config_or_seed_is_refused_not_skipped(tmp_path, capsys, change):
    items = plan_items(9, 3, replicate_fraction=0.0)
    other = items[2].config if change == "config" else None
    _logged(tmp_path, items[0], config=other, seed=items[0].seed + 1 if change == "seed" else None)
    assert config_id(items[2].config) != config_id(items[0].config)
    with pytest.raises(ValueError, match=r"plan 9 shard 0/1 of digits: 1 logged run\(s\) have this plan's keys "
                                         r"but another config or seed \(first digits/e1/s9/c0/r0\)"):
        pending_runs("digits", out_dir=tmp_path, plan_seed=9, n_configs=3, epochs=1, replicate_fraction=0.0)
    before = (tmp_path / "digits" / "plan9-shard0of1-test.jsonl").read_bytes()
    for dry in (["--dry-run"], []):  # the dry run and the collector refuse alike, before any training
        rc = main(["collect", "--dataset", "digits", "--plan-seed", "9", "--n-configs", "3", "--epochs", "1",
                   "--replicate-fraction", "0", "--device", "cpu", "--out", str(tmp_path)] + dry)
        err = capsys.readouterr().err
        assert rc == 2 and "use a plan seed no earlier collection used" in err
        assert err.count("\n") == 1 and "Traceback" not in err
    assert [p.name for p in (tmp_path / "digits").iterdir() if p.suffix == ".jsonl"] == ["plan9-shard0of1-test.jsonl"]
    assert (tmp_path / "digits" / "plan9-shard0of1-test.jsonl").read_bytes() == before
