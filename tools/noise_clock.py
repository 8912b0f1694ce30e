"""How the seed noise's processes describe the replicated runs: sd by epoch, correlation by lag.

The seed noise of a surrogate (``surrobench.surrogate.noise``) is fitted on the logit residuals of
configs run with several seeds that learned under all of them. This prints, for those residuals
and for the process each option fits to them (``surrobench fit --noise-time
epoch|log-epoch|log-epoch-early``):

* the sd at a few epochs (the two clocks have one sd for every epoch, the early noise does not);
* the mean correlation between epochs ``lag`` apart, over pairs whose first epoch lies early
  (epochs 2-12) and late (epochs 14-25): a process stationary in epochs has one number per lag;
* the fitted parameters and the log likelihood the calibration maximises (higher is better; the
  log-epoch clock has one parameter more than the epoch clock, the jitter, and the early noise
  two more, its size and decay; the measured covariance, ``empirical``, is the runs' own by
  construction: every sd and correlation, and the largest likelihood, with 325 parameters).

With ``--cards`` it instead fits a surrogate with each process (``fit_surrogate``, everything else the
same; a few minutes each) and prints their quality cards' rows about the draws side by side: the
dips (learning runs whose validation error part-way is below their final error by more than 0.02,
logged against drawn out of fold), the largest gap between the logged and the drawn distribution of
final errors, and the between-seed sd of final error on the replicated configs.

With ``--by-config`` it prints whether the noise is the same for every config, as every process
assumes: the between-seed sd (logit, pooled over the configs of each row) early (epochs 2-8) and
late (epochs 15-25), for the replicated learners split into thirds by how far their mean curve
still falls late (its logit from epoch 15 to 25) and by their mean final validation error, with
Spearman's correlation between each config's own sd and the property.

    python tools/noise_clock.py [LOGS] [--dataset flowers17] [--cards | --by-config]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from surrobench.datasets import info as dataset_info  # noqa: E402
from surrobench.space import MAX_EPOCH  # noqa: E402
from surrobench.surrogate.data import load_run_data  # noqa: E402
from surrobench.surrogate.noise import NOISE_TIMES, calibrate, correlation_loglik, replicated_residuals  # noqa: E402

LAGS = (1, 3, 6)
EARLY, LATE = (2, 12), (14, MAX_EPOCH)  # first epochs (1-based) of the pairs averaged


def mean_correlation(corr: np.ndarray, lag: int, first: tuple[int, int]) -> float:
    """Mean of ``corr[i, i + lag]`` over the pairs whose first epoch ``i + 1`` lies in ``first``
    and whose second is at most the last epoch."""
    lo, hi = first
    pairs = [corr[i, i + lag] for i in range(lo - 1, hi) if i + lag < corr.shape[0]]
    return float(np.mean(pairs))


def rows(logs: str, dataset: str | None) -> list[str]:
    data = load_run_data(logs, dataset)
    info = dataset_info(data.dataset)
    cur = data.subset(data.curve_run)
    args = (cur.config_ids, cur.val, cur.test, info.chance_error, info.sizes[1], info.sizes[2])
    res = replicated_residuals(*args)
    cov = res.scatter / res.dof
    sd = np.sqrt(np.diag(cov))
    measured = cov / np.outer(sd, sd)
    head = "".join(f"  lag {lag} early  late" for lag in LAGS)
    shown = (1, 2, 5, 13, 25)
    fitted = {time: calibrate(*args, time=time) for time in NOISE_TIMES}
    out = [f"{data.dataset}: the seed noise rests on {res.n_learner_groups} configs that learned under every seed "
           f"({res.n_runs} runs, {res.dof} degrees of freedom)",
           f"sd (logit) at epochs {', '.join(map(str, shown))}"]

    def sds(name: str, values: np.ndarray) -> str:
        return f"{name:30s}  " + " ".join(f"{values[e - 1]:.3f}" for e in shown)

    out.append(sds("replicated runs (measured)", sd))
    for time, noise in fitted.items():
        out.append(sds(f"fitted, {time}", noise.sigma_val * noise.sd_profile(MAX_EPOCH)))
    out += [f"correlation between epochs `lag` apart, pairs starting at epochs {EARLY[0]}-{EARLY[1]} (early) and "
            f"{LATE[0]}-{LATE[1]} (late)",
            f"{'':30s}{head}   log lik  parameters"]

    def line(name: str, corr: np.ndarray, lik: str, params: str) -> str:
        cells = "".join(f"  {'':5s}{mean_correlation(corr, lag, EARLY):5.2f} {mean_correlation(corr, lag, LATE):5.2f}"
                        for lag in LAGS)
        return f"{name:30s}{cells}  {lik:>8s}  {params}".rstrip()

    out.append(line("replicated runs (measured)", measured, "", ""))
    for time, noise in fitted.items():
        params = (f"level {noise.level:.2f}, rho {noise.rho:.2f}" + (f", jitter {noise.jitter:.2f}" if time != "epoch" else "")
                  if noise.matrix is None else f"the measured covariance ({MAX_EPOCH} x {MAX_EPOCH})")
        if noise.early:
            params += f", early {noise.early:.2f}, decay {noise.decay:.1f} epochs"
        lik = correlation_loglik(noise.shape(MAX_EPOCH), res)
        out.append(line(f"fitted, {time}", noise.correlation(MAX_EPOCH), f"{lik:.1f}", params))
    return out


SD_EPOCHS = {"early": (2, 8), "late": (15, MAX_EPOCH)}  # 1-based, inclusive


def by_config_rows(logs: str, dataset: str | None) -> list[str]:
    """Between-seed sd of the replicated learners by thirds of a config property (see the docstring)."""
    data = load_run_data(logs, dataset)
    info = dataset_info(data.dataset)
    cur = data.subset(data.curve_run)
    res = replicated_residuals(cur.config_ids, cur.val, cur.test, info.chance_error, info.sizes[1], info.sizes[2])
    return [f"{data.dataset}: between-seed sd (logit) of the {len(res.sizes)} configs that learned under every seed, "
            "pooled over the configs of each third"] + sd_by_thirds(res)


def sd_by_thirds(res) -> list[str]:
    """The table of :func:`by_config_rows` (below its title) for the replicated residuals ``res``."""
    from scipy.stats import spearmanr

    starts = np.r_[0, np.cumsum(res.sizes)[:-1]]
    # per config and window: the sum of squared residuals and its degrees of freedom
    ss = {w: np.array([np.sum(res.val[a : a + n, lo - 1 : hi] ** 2) for a, n in zip(starts, res.sizes)])
          for w, (lo, hi) in SD_EPOCHS.items()}
    dof = {w: (res.sizes - 1) * (hi - lo + 1) for w, (lo, hi) in SD_EPOCHS.items()}
    late0, last = SD_EPOCHS["late"]
    props = {f"late fall of the mean curve (logit, epoch {late0} to {last})": res.val_mean[:, late0 - 1] - res.val_mean[:, last - 1],
             "final validation error (mean curve)": 1.0 / (1.0 + np.exp(-res.val_mean[:, last - 1]))}
    windows = "".join(f"  sd epochs {lo}-{hi}" for lo, hi in SD_EPOCHS.values())
    out = [f"{'':40s}configs{windows}"]
    for name, x in props.items():
        out.append(name)
        edges = np.quantile(x, [0, 1 / 3, 2 / 3, 1])
        third = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, 2)
        for k in range(3):
            sel = third == k
            sds = "".join(f"{np.sqrt(ss[w][sel].sum() / dof[w][sel].sum()):15.3f}" for w in SD_EPOCHS)
            out.append(f"  [{edges[k]:6.3f}, {edges[k + 1]:6.3f}]{'':22s}{int(sel.sum()):7d}{sds}")
        rhos = []
        for w in SD_EPOCHS:
            r = spearmanr(x, np.sqrt(ss[w] / dof[w]))
            rhos.append(f"{r.statistic:+6.2f} (p {r.pvalue:.3f})")
        out.append(f"  {'Spearman, config sd vs this':38s}{'':7s}" + "".join(f"{c:>15s}" for c in rhos))
    return out


def card_rows(logs: str, dataset: str | None) -> list[str]:
    """The draws rows of the quality cards of surrogates fitted on ``logs``, one per noise process."""
    from surrobench.surrogate import fit_surrogate

    cards = {t: fit_surrogate(logs, dataset=dataset, plot=False, noise_time=t).quality for t in NOISE_TIMES}
    first = cards[NOISE_TIMES[0]]["draws"]["dips"]
    out = ["quality cards of a surrogate fitted with each noise process (same logs, grid and seed; out-of-fold draws)",
           f"{'':42s}" + "".join(f"{t:>16s}" for t in ("logged", *NOISE_TIMES))]
    for i, epoch in enumerate(first["epochs"]):
        cells = [first["logged"][i]] + [cards[t]["draws"]["dips"]["drawn"][i] for t in NOISE_TIMES]
        out.append(f"{f'dips at epoch {epoch} (share of learning runs)':42s}" + "".join(f"{v:16.3f}" for v in cells))
    noise = [cards[t]["seed_noise"] for t in NOISE_TIMES]
    out.append(f"{'between-seed sd of final error':42s}{noise[0]['measured_sd']:16.4f}"
               + "".join(f"{n['surrogate_sd']:16.4f}" for n in noise))
    out.append(f"{'largest gap, final-error distribution':42s}{'':16s}"
               + "".join(f"{cards[t]['draws']['max_gap']:16.3f}" for t in NOISE_TIMES))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("logs", nargs="?", default=str(ROOT / "training_logs" / "flowers17"))
    p.add_argument("--dataset", default=None)
    how = p.add_mutually_exclusive_group()
    how.add_argument("--cards", action="store_true", help="fit a surrogate with each noise process and compare their cards")
    how.add_argument("--by-config", action="store_true", help="the between-seed sd by thirds of a config property")
    args = p.parse_args(argv)
    table = card_rows if args.cards else by_config_rows if args.by_config else rows
    print("\n".join(table(args.logs, args.dataset)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
