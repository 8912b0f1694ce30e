"""Evidence that each baseline works: median hypervolume over 10 seeds against random search.

The toy benchmark (tests/toybench.py) has a known optimum structure: the error floor is smallest at
lr 1e-3, batch size 32, three conv layers and a 1024-wide first conv layer, and model size is the
exact count, so its Pareto front is (up to the 0.01 seed noise) the set of configs with those
settings, the narrowest other layers, kernel 3, no batch norm and global average pooling, for every
first-layer width and conv depth. :func:`known_front_hv` evaluates that set.

Run with ``pytest -m slow tests/test_optimizers_evidence.py -s`` to see the table.
"""

import pytest

from surrobench.compare import compare
from surrobench.metrics import hypervolume
from surrobench.simulator import Budget

from toybench import ToyBenchmark

METHODS = ["shemoa", "mobohb", "mobananas", "nsga2", "msehvi", "ehvi", "bulkcut", "moasha"]
SEEDS = range(10)
BUDGET = Budget(seconds=24 * 3600.0)  # one simulated day, one worker: random search runs ~190 jobs


def known_front_hv(bench: ToyBenchmark) -> float:
    """Hypervolume of the toy's Pareto front (at 25 epochs, benchmark seed 0)."""
    points = []
    for depth in (1, 2, 3):
        for width in range(16, 1025):
            cfg = {"n_conv_l": depth, "n_conv_0": width, "n_fc_l": 1, "n_fc_0": 2, "kernel_size": 3, "lr_init": 1e-3,
                   "batch_norm": False, "batch_size": 32, "global_avg_pooling": True}
            cfg.update({f"n_conv_{i}": 16 for i in range(1, depth)})
            r = bench.query(cfg, 25, seed=0)
            points.append((r.val_error, r.log10_params))
    return hypervolume(points, ref=bench.reference_point)


@pytest.fixture(scope="module")
def results():
    bench = ToyBenchmark()
    res = compare(bench, ["random", *METHODS], seeds=SEEDS, budget=BUDGET, n_jobs=2)
    table = res.summary()
    print(f"\nToy benchmark, 24 simulated hours, 1 worker, {len(SEEDS)} seeds; known front HV = {known_front_hv(bench):.3f}")
    print(table.to_string())
    return res


def _median(res, name, column="hv"):
    return float(res.final.loc[res.final["optimizer"] == name, column].median())


@pytest.mark.slow
@pytest.mark.parametrize("name", METHODS)
def test_beats_random_search_in_median_hypervolume(results, name):
    assert _median(results, name) > _median(results, "random")


@pytest.mark.slow
def test_known_front_bounds_every_method(results):
    bound = known_front_hv(ToyBenchmark())
    for name in ["random", *METHODS]:
        assert results.final.loc[results.final["optimizer"] == name, "hv"].max() <= bound * 1.02
