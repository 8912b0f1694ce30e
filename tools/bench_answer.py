"""CPU microseconds per new-config answer of the shipped surrogate benchmark (one config, one seed,
no cache: what a sequential optimizer pays per job), and per prior config draw (``space.sample``).

    python tools/bench_answer.py TREE     # TREE: a checkout of surrobench (e.g. a git worktree)

Run it on two trees one after the other, alternating, and read the ratio (best of 3 passes each).
"""
import sys, time, numpy as np
sys.path.insert(0, sys.argv[1])
import surrobench
from surrobench.benchmark import SurrogateBenchmark
from surrobench.space import sample
from surrobench.records import Job
s = surrobench.load("flowers17").surrogate
bench = SurrogateBenchmark(s, cache_size=0)
rng = np.random.default_rng(0)
jobs = [Job(c, 25) for c in (sample(rng) for _ in range(4000))]
for j in jobs[:200]: bench.answer(j, seed=1)
best = 1e9
for r in range(3):
    t0 = time.process_time()
    for i, j in enumerate(jobs): bench.answer(j, seed=i)
    best = min(best, (time.process_time() - t0) / len(jobs))
t0 = time.process_time(); r2 = np.random.default_rng(1)
for _ in range(20000): sample(r2)
print(sys.argv[1], f"answer {1e6*best:.0f} us  space.sample {1e6*(time.process_time()-t0)/20000:.1f} us")
