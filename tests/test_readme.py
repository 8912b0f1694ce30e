"""The README's and docs' Python examples run as written (with a shorter budget where they use the default 24 h)."""

import re
from pathlib import Path

import pytest

import surrobench.compare as compare_mod
from surrobench.simulator import Budget

from toybench import ToyBenchmark

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _block(marker: str) -> str:
    blocks = [b for page in PAGES for b in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)]
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, f"expected one python block with {marker!r} in the README and docs, found {len(found)}"
    return found[0]


@pytest.fixture
def short_compare(monkeypatch):
    """compare() with a 20-minute budget where the example leaves the default (24 h) in place."""
    real = compare_mod.compare
    calls = []

    def short(*args, **kw):
        kw.setdefault("budget", Budget(seconds=1200.0))
        calls.append(kw)
        return real(*args, **kw)

    monkeypatch.setattr(compare_mod, "compare", short)
    return calls


def test_own_optimizer_example_runs(short_compare, capsys):
    ns = {}
    exec(compile(_block("class ShallowRandom"), "README.md", "exec"), ns)
    results = ns["results"]
    assert set(results.final["optimizer"]) == {"random", "shallow"}
    shallow = results.runs[results.runs["optimizer"] == "shallow"]
    assert len(shallow) > 0 and (shallow["config_n_conv_l"] == 1).all() and (shallow["epoch"] == 25).all()
    assert "shallow" in capsys.readouterr().out


@pytest.mark.slow
def test_validate_own_optimizer_example_runs(short_compare, monkeypatch, capsys):
    """The docs' validate example after the ShallowRandom one, on the flowers17 logs with 2 seeds
    and a 2 % budget (about a minute)."""
    import surrobench.validate as validate_mod

    real = validate_mod.validate
    monkeypatch.setattr(validate_mod, "validate", lambda *a, **k: real(*a, **{**k, "seeds": range(2), "budgets": [0.02]}))
    monkeypatch.chdir(ROOT)  # the example reads training_logs/flowers17 from the repository's root
    ns = {}
    exec(compile(_block("class ShallowRandom"), "benchmarking.md", "exec"), ns)
    exec(compile(_block("study = validate("), "benchmarking.md", "exec"), ns)
    study = ns["study"]
    assert set(study.final["optimizer"]) == {"random", "nsga2", "shallow"}
    assert set(study.final["side"]) == {"real", "oof"} and set(study.final["seed"]) == {0, 1}
    out = capsys.readouterr().out
    assert "real vs oof (out-of-fold surrogate), budget 2%: tau" in out and "only_compared" in out


def test_optimizer_settings_example_runs(monkeypatch, capsys):
    """The at_cap example, on one seed and 560 evaluations: the setting reaches the optimizer and
    changes only what comes after the GP's 500-point cap."""
    real = compare_mod.compare

    def short(*args, **kw):
        return real(*args, **{**kw, "seeds": [0], "budget": Budget(evaluations=560), "n_jobs": 1})

    monkeypatch.setattr(compare_mod, "compare", short)
    ns = {}
    exec(compile(_block('"at_cap": (8, 32)'), "README.md", "exec"), ns)
    results = ns["results"]
    assert results.metadata["optimizers"]["msehvi-at-cap"]["settings"] == {"at_cap": (8, 32)}
    runs = {label: g.sort_values("job_id")["config_id"].tolist() for label, g in results.runs.groupby("optimizer")}
    assert runs["msehvi"][:501] == runs["msehvi-at-cap"][:501] and runs["msehvi"][501:] != runs["msehvi-at-cap"][501:]
    assert "msehvi-at-cap" in capsys.readouterr().out


def test_optuna_example_runs(short_compare):
    pytest.importorskip("optuna")
    ns = {}
    exec(compile(_block("OptunaSampler"), "README.md", "exec"), ns)
    assert set(ns["results"].final["optimizer"]) == {"tpe-multivariate", "tpe"}
    assert ns["results"].metadata["budget"]["evaluations"] == 60


def test_configspace_example_runs(tmp_path, monkeypatch):
    pytest.importorskip("ConfigSpace")
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(compile(_block("to_configspace_json"), "README.md", "exec"), ns)
    assert (tmp_path / "space.json").is_file()
    assert ns["cfg"] == ns["space"].validate(ns["cfg"])


def test_pandas_lines_give_hypervolume_over_time(tmp_path, monkeypatch):
    monkeypatch.setattr(compare_mod, "_table_format", lambda: "csv")
    res = compare_mod.compare(ToyBenchmark(), ["random"], seeds=range(3), budget=Budget(seconds=3600.0), n_grid=30)
    compare_mod.write_results(res, tmp_path / "results")
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(compile(_block('pd.read_csv("results/hv.csv")'), "README.md", "exec"), ns)
    curve = ns["curve"]
    assert list(curve.columns) == ["random"] and len(curve) == 30
    assert curve["random"].is_monotonic_increasing
    assert curve["random"].iloc[-1] == pytest.approx(res.final["hv"].median())


def test_benchmark_example_runs():
    """The interactive example under "The benchmark", line by line, and its answers agree."""
    code = "\n".join(line[4:] for line in _block("bench.prefetch(").splitlines() if line.startswith(">>> "))
    ns = {}
    exec(compile(code, "README.md", "exec"), ns)
    bench, jobs = ns["bench"], ns["jobs"]
    assert ns["curve"][24] == ns["bench"].query(ns["cfg"], 25, seed=0)
    fresh = type(bench)(bench.surrogate)
    assert (ns["cost"], ns["r"]) == fresh.job(jobs[0].config, 25, seed=0)
    assert (jobs[0].config_id, 0) in bench._cache  # answered from the prefetched batch


def test_problem_and_simulate_example_runs():
    """The docs' run of MS-EHVI on a problem the digits benchmark made."""
    ns = {}
    exec(compile(_block("problem = bench.problem("), "docs/benchmarking.md", "exec"), ns)
    problem, table = ns["problem"], ns["table"]
    assert problem.task.dataset == "digits" and problem.n_workers == 8 and len(table) == 100
    assert set(table["worker"]) == set(range(8)) and (table["tag"] == "ehvi").sum() > 0
