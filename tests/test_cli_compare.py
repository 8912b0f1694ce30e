"""End to end on a tiny surrogate: ``fit`` synthetic logs, ``compare`` on the result, ``report`` it.

Everything goes through :func:`surrobench.cli.main`, as a user's command line would; bad input
exits 2 with one line on stderr and no traceback.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from surrobench.cli import main

from test_surrogate_synth import synthetic_logs

PLOTS = ("hv_over_time.png", "hv_over_time_max_fidelity.png", "ranks_over_time.png", "pareto_fronts.png", "timeline.png")


@pytest.fixture(scope="module")
def fitted_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-compare")
    logs = synthetic_logs(root / "logs", n_configs=60, n_replicated=12)
    out = root / "tiny-surrogate"
    assert main(["fit", str(logs), "--grid", "quick", "--out", str(out), "--name", "tiny-surrogate"]) == 0
    return out


def _compare(bench, out, *extra):
    return main(["compare", "--benchmark", str(bench), "--optimizers", "random", "--seeds", "2", "--budget", "1h",
                 "--out", str(out), "--no-progress", *extra])


def _tables(directory):
    meta = json.loads((directory / "metadata.json").read_text())
    fmt = meta["table_format"]
    read = pd.read_parquet if fmt == "parquet" else pd.read_csv
    return meta, {name: read(directory / f"{name}.{fmt}") for name in ("runs", "hv", "final")}


def test_fit_compare_report(fitted_dir, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "results"
    assert _compare(fitted_dir, out) == 0
    printed = capsys.readouterr().out
    assert "hypervolume at the budget (1 simulated hour;" in printed and "median over 2 seeds" in printed
    summary = [line.split() for line in printed.splitlines()]
    assert any(row[:2] == ["1", "random"] for row in summary)  # n_workers, optimizer, then the numbers
    assert "Friedman test" not in printed  # one optimizer: nothing to separate

    meta, tables = _tables(out)
    manifest = json.loads((fitted_dir / "manifest.json").read_text())
    assert meta["seeds"] == [0, 1] and meta["n_workers"] == [1]
    assert meta["budget"] == {"seconds": 3600.0, "evaluations": None}
    assert meta["benchmark"]["surrogate"] == "tiny-surrogate"
    assert meta["benchmark"]["training_data"] == manifest["training_data"]["sha256"]
    assert meta["benchmark"]["checksum"] == manifest["manifest_sha256"]
    assert list(meta["optimizers"]) == ["random"]

    runs, final = tables["runs"], tables["final"]
    assert len(runs) > 0 and set(runs["optimizer"]) == {"random"} and set(runs["seed"]) == {0, 1}
    assert (runs["end"] <= 3600.0).all() and (runs["start"] < runs["end"]).all()
    assert runs["val_error"].between(0, 1).all() and (runs["epoch"] == 25).all()
    assert len(final) == 2 and set(final["seed"]) == {0, 1}
    assert list(final.sort_values("seed")["jobs"]) == [int((runs["seed"] == s).sum()) for s in (0, 1)]
    assert set(tables["hv"]["seed"]) == {0, 1}
    for name in PLOTS:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name

    # The same command again gives the same tables, byte for byte.
    again = tmp_path / "again"
    assert _compare(fitted_dir, again, "--no-plots") == 0
    _, tables_again = _tables(again)
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(frame, tables_again[name])
    assert not (again / PLOTS[0]).exists()

    # report reads the directory back: the same summary, the plots redrawn.
    for name in PLOTS:
        (out / name).unlink()
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    reported = capsys.readouterr().out
    assert printed.split("results and plots in")[0] == reported.split("plots:")[0]
    assert all((out / name).is_file() for name in PLOTS)
    median_png = (out / PLOTS[0]).read_bytes()
    assert main(["report", str(out), "--aggregate", "mean"]) == 0
    assert (out / PLOTS[0]).read_bytes() != median_png
    capsys.readouterr()
    assert _exit_code(["report", str(out), "--aggregate", "max"]) == 2
    assert "--aggregate" in capsys.readouterr().err
    before = {name: (out / name).read_bytes() for name in PLOTS}
    assert _exit_code(["report", str(out), "--control", "nsga2"]) == 2  # one optimizer ran: random
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "control: 'nsga2' is not among the optimizers (random)" in err, err
    assert {name: (out / name).read_bytes() for name in PLOTS} == before  # nothing redrawn


def _exit_code(argv):
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own errors
        return exc.code


BAD = {
    "missing-benchmark": lambda d, t: (["--benchmark", str(t / "nope")], "nope"),
    "unknown-optimizer": lambda d, t: (["--benchmark", str(d), "--optimizers", "nosuch"], "nosuch"),
    "zero-seeds": lambda d, t: (["--benchmark", str(d), "--seeds", "0"], "--seeds"),
    "bad-budget": lambda d, t: (["--benchmark", str(d), "--budget", "soon"], "--budget"),
    "zero-workers": lambda d, t: (["--benchmark", str(d), "--workers", "0"], "--workers"),
    "not-a-surrogate": lambda d, t: (["--benchmark", str(t)], str(t)),
    "unknown-control": lambda d, t: (["--benchmark", str(d), "--optimizers", "random,nsga2", "--control", "ehvi"],
                                     "--control: 'ehvi'"),
    "unknown-setting": lambda d, t: (["--benchmark", str(d), "--optimizers", "random,nsga2", "--set",
                                      "nsga2.population_sise=8"], "NSGA2 has no setting 'population_sise'; did you mean "
                                                                  "'population_size'?"),
    "setting-of-a-wrong-type": lambda d, t: (["--benchmark", str(d), "--optimizers", "nsga2", "--set",
                                              "nsga2.population_size=many"],
                                             "setting 'population_size' must be an int, got 'many'"),
    "refused-setting": lambda d, t: (["--benchmark", str(d), "--optimizers", "nsga2", "--set", "nsga2.population_size=1"],
                                     "refuses its settings: NSGA2: population_size must be >= 2, got 1"),
    "seed-is-no-setting": lambda d, t: (["--benchmark", str(d), "--optimizers", "nsga2", "--set", "nsga2.seed=3"],
                                        "'seed' is not a setting"),
    "set-of-no-optimizer": lambda d, t: (["--benchmark", str(d), "--optimizers", "random", "--set", "ehvi.n_init=5"],
                                         "no optimizer labelled 'ehvi' is compared (random)"),
    "set-without-key": lambda d, t: (["--benchmark", str(d), "--set", "random=3"], "--set: expected LABEL.KEY=VALUE"),
    "label-twice": lambda d, t: (["--benchmark", str(d), "--optimizers", "random,random=nsga2"],
                                 "'random' is given twice"),
    "bad-label": lambda d, t: (["--benchmark", str(d), "--optimizers", "a.b=nsga2"], "is not LABEL=NAME"),
    "empty-optimizers": lambda d, t: (["--benchmark", str(d), "--optimizers", ""],
                                      "--optimizers: expected comma-separated optimizer names"),
}


@pytest.mark.parametrize("case", BAD.values(), ids=BAD.keys())
def test_bad_compare_input_exits_2_with_one_line(fitted_dir, tmp_path, capsys, case):
    args, needle = case(fitted_dir, tmp_path)
    capsys.readouterr()
    code = _exit_code(["compare", *args, "--out", str(tmp_path / "out"), "--no-progress", "--no-plots"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert "error" in err and needle in err
    assert not (tmp_path / "out").exists()


def test_bad_report_and_fit_input_exit_2_with_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    cases = [(["report", str(tmp_path / "empty")], "metadata.json"),
             (["fit", str(tmp_path / "no-logs"), "--grid", "quick", "--out", str(tmp_path / "s")], "no-logs"),
             (["fit", str(tmp_path / "empty"), "--grid", "fast"], "--grid")]
    for argv, needle in cases:
        capsys.readouterr()
        code = _exit_code(argv)
        err = capsys.readouterr().err
        assert code == 2, (argv, err)
        assert "Traceback" not in err and err.count("\n") == 1 and needle in err, (argv, err)
    assert not (tmp_path / "s").exists()


def _fail_if_called(*args, **kwargs):
    raise AssertionError("the long work started before the output path was checked")


def test_an_unwritable_out_fails_before_any_run(fitted_dir, tmp_path, capsys, monkeypatch):
    import surrobench.compare

    monkeypatch.setattr(surrobench.compare, "compare", _fail_if_called)
    (tmp_path / "file").write_text("keep")
    capsys.readouterr()
    code = _exit_code(["compare", "--benchmark", str(fitted_dir), "--optimizers", "random", "--seeds", "1",
                       "--out", str(tmp_path / "file" / "results"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "out: cannot write to" in err and "is a file, not a folder" in err, err
    assert (tmp_path / "file").read_text() == "keep"


def test_fit_checks_where_it_will_write_before_fitting(fitted_dir, tmp_path, capsys, monkeypatch):
    import surrobench.surrogate

    monkeypatch.setattr(surrobench.surrogate, "fit_surrogate", _fail_if_called)
    monkeypatch.chdir(tmp_path)  # the default out, build/surrogates/NAME, is relative
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("keep")
    (tmp_path / "file").write_text("keep")
    logs = str(tmp_path)  # never read: every case fails first
    cases = [
        (["--out", str(tmp_path / "taken")], "is not empty"),
        (["--out", str(tmp_path / "taken"), "--force"], "not a surrogate directory"),
        (["--out", str(tmp_path / "file" / "s")], "is a file, not a folder"),
        (["--out", str(tmp_path / "s"), "--publish", str(tmp_path / "file")], "publish: cannot write"),
        (["--dataset", "flowers17", "--publish", str(tmp_path / "file")], "publish: cannot write"),
    ]
    for extra, needle in cases:
        capsys.readouterr()
        code = _exit_code(["fit", logs, "--grid", "quick", *extra])
        err = capsys.readouterr().err
        assert code == 2, (extra, err)
        assert err.count("\n") == 1 and needle in err, (extra, err)
    assert (tmp_path / "taken" / "notes.txt").read_text() == "keep"
    assert not (tmp_path / "s").exists()


def test_an_earlier_results_folder_is_replaced_whole(fitted_dir, tmp_path):
    out = tmp_path / "out"
    assert _compare(fitted_dir, out, "--no-plots") == 0
    assert _compare(fitted_dir, out, "--no-plots", "--seeds", "1") == 0
    meta, tables = _tables(out)
    assert sorted(tables["runs"]["seed"].unique()) == [0] and meta["seeds"] == [0]
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_bad_surrogate_fails_before_the_progress_bar(tmp_path, capsys):
    capsys.readouterr()
    code = _exit_code(["compare", "--benchmark", str(tmp_path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "manifest.json is missing" in err, err


def test_an_interrupted_compare_goes_on_with_resume(fitted_dir, tmp_path, capsys, monkeypatch):
    import surrobench.compare as comp

    fresh = tmp_path / "fresh"
    assert _compare(fitted_dir, fresh, "--no-plots") == 0
    real, calls = comp._cell, []

    def interrupted_at_the_second(*args):
        calls.append(args[4])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    out = tmp_path / "out"
    monkeypatch.setattr(comp, "_cell", interrupted_at_the_second)
    capsys.readouterr()
    assert _compare(fitted_dir, out, "--no-plots") == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "--resume" in err and err.count("\n") == 1, err
    assert len(list((out / "cells").glob("*.npz"))) == 1 and not (out / "metadata.json").exists()

    calls.clear()
    monkeypatch.setattr(comp, "_cell", lambda *args: calls.append(args[4]) or real(*args))
    assert _compare(fitted_dir, out, "--no-plots", "--resume") == 0
    assert calls == [1]  # seed 0 was stored, only seed 1 ran
    _, tables = _tables(out)
    for name, frame in _tables(fresh)[1].items():
        pd.testing.assert_frame_equal(frame, tables[name])


def test_an_optimizer_runs_twice_under_two_labels_with_its_settings(fitted_dir, tmp_path, capsys):
    """``LABEL=NAME`` and ``--set``: NSGA-II as it ships and with a population of 4, side by side."""
    out = tmp_path / "results"
    code = main(["compare", "--benchmark", str(fitted_dir), "--optimizers", "nsga2,small=nsga2", "--set",
                 "small.population_size=4", "--set", "small.crossover_eta=5.5", "--seeds", "2", "--evaluations", "24",
                 "--out", str(out), "--no-progress", "--no-plots"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert printed.out.splitlines()[-2] == "settings: small = NSGA2(population_size=4, crossover_eta=5.5)"
    meta, tables = _tables(out)
    assert meta["optimizers"]["nsga2"] == {"class": "surrobench.optimizers.nsga2.NSGA2", "settings": {}}
    assert meta["optimizers"]["small"] == {"class": "surrobench.optimizers.nsga2.NSGA2",
                                           "settings": {"population_size": 4, "crossover_eta": 5.5}}
    runs = tables["runs"]
    assert sorted(runs["optimizer"].unique()) == ["nsga2", "small"]
    assert (runs.groupby(["optimizer", "seed"]).size() == 24).all()
    # the same seeds: the first population of 4 is the first 4 configs of the population of 20, then the
    # small one breeds from it while the other still draws its population at random
    configs = {label: runs[(runs["optimizer"] == label) & (runs["seed"] == 0)]["config_id"].tolist()
               for label in ("nsga2", "small")}
    assert configs["small"][:4] == configs["nsga2"][:4]
    assert configs["small"][4:] != configs["nsga2"][4:]
    assert main(["report", str(out), "--markdown"]) == 0
    assert capsys.readouterr().out.rstrip().splitlines()[-1] == \
        "settings: small = NSGA2(population_size=4, crossover_eta=5.5)"


def test_compare_list_shows_each_optimizers_settings(capsys):
    assert main(["compare", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("ehvi "))
    block = " ".join(lines[at + 1:at + 4])
    assert "settings: n_init=50" in lines[at + 1] and "max_gp_points=500" in block and "at_cap=None" in block
    moasha = next(i for i, line in enumerate(lines) if line.startswith("moasha "))
    assert lines[moasha + 1].split() == ["settings:", "eta=3,", "min_epoch=None,", "ref_point=(1.0,", "8.0)"]
