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
logged against drawn out of fold; then the same for the best third of them by their own final error,
where optimizers look), the best 1 % of runs' validation error at epochs 1, 3, 9 and 25
(its quantile, logged against drawn out of fold), the largest gap between the logged and the drawn
distribution of final errors, and the between-seed sd of final error on the replicated configs (all of them, and
those that learned under every seed by thirds of their mean final error, the draws in sample).

``--processes`` and ``--sizes`` pick the cards' columns: every process named, each with every size
named (``surrobench fit --noise-size``; default: the four processes, one size for all), e.g.
``--cards --processes empirical --sizes shared,by-error``.

With ``--by-config`` it prints whether the noise is the same for every config, as the processes assume:
the between-seed sd (logit, pooled over the configs of each row) early (epochs 2-8), late (epochs 15-25)
and at the last epoch, and of each run's shift (its residual's mean over the epochs) and wobble (the
residual around that mean, per epoch), for the replicated learners split into thirds by how far their
mean curve still falls late (its logit from epoch 15 to 25), by their mean final validation error and by
their initial learning rate, with Spearman's correlation between each config's own sd and the property;
then the sizes by config that ``--noise-size by-error`` and ``by-level`` fit to them; last, how much a
size of each config's own drawn at random (a lognormal factor of mean 1 on the variance of its wobble,
or of its whole noise; ``surrobench.surrogate.noise.fit_config_spread``) describes them better, with one
size for every config and after the size by level: the spread between configs that no property above
explains.

With ``--dips`` it prints how often the runs of those replicated learners fall below their own final
error by more than 0.02 part-way (the card's dips, all runs and the best third by their own final error),
logged, and drawn around each config's own mean curve (no prediction involved) with the noise of one
size, sized by level, sized by level with a random size per config, with the residual curves of runs
of other configs drawn at random, and with those of the runs of the three configs whose mean curves
are nearest (their shape from epoch 5 on relative to the last epoch, and the last epoch's level; the
config itself left out): whether the draws' excess dips come from the noise or from the curves it is
drawn around, and whether noise that belongs to a curve like the config's has them.

With ``--card-parts`` it fits the surrogate with the residual bank searched by the prediction (``bank``, the shipped
surrogates' until the search by the mapped curve, ``bank-logged``, replaced it) seven times and
prints the cards' draws rows side by side (as ``--cards``): the draws as shipped; without the tail map
(the learner curves as predicted, plus the bank's noise); without the seed noise (the mapped mean curves);
without either; with banks that lend each draw the runs of 1 or of 6 nearest configs instead of 3; and
with each curve moved by one shift, the tail map's at its last epoch, instead of a map per epoch.
Where do the drawn runs' excess dips in the best third come from: the noise, its bank, or the map that
gives the draws their tails? About 20 minutes on one core (seven fits).

With ``--bank-spread`` it fits the shipped recipe (the bank searched by the mapped curve, ``bank-logged``) six
times and prints the cards' draws rows side by side: as shipped; with banks that lend each draw the runs of
6 or 10 nearest configs instead of 3; with the search weighing the last epoch's level (the key's last column)
3 or 10 times against the curve's shape; with both (3 times, 6 configs). The shipped draws' reruns of the
best configs spread less than the logged ones: does noise from more configs, or from configs nearer the
draw's level, spread as the logs do, and what does it cost the dips? About 20 minutes on one core.

    python tools/noise_clock.py [LOGS] [--dataset flowers17] [--cards [--processes P,P] [--sizes S,S] | --by-config | --dips | --card-parts | --bank-spread]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from surrobench.datasets import info as dataset_info  # noqa: E402
from surrobench.space import MAX_EPOCH  # noqa: E402
from surrobench.surrogate.data import load_run_data  # noqa: E402
from surrobench.surrogate.noise import (  # noqa: E402
    NOISE_SIZES,
    NOISE_TIMES,
    SPREAD_PARTS,
    NoiseModel,
    calibrate,
    correlation_loglik,
    fit_config_spread,
    fit_noise_size,
    replicated_residuals,
    unit_residuals,
)

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
    fitted = {time: calibrate(*args, time=time) for time in PROCESSES}
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


SD_EPOCHS = {"early": (2, 8), "late": (15, MAX_EPOCH), "last": (MAX_EPOCH, MAX_EPOCH)}  # 1-based, inclusive


def by_config_rows(logs: str, dataset: str | None) -> list[str]:
    """Between-seed sd of the replicated learners by thirds of a config property (see the docstring)."""
    data = load_run_data(logs, dataset)
    info = dataset_info(data.dataset)
    cur = data.subset(data.curve_run)
    res = replicated_residuals(cur.config_ids, cur.val, cur.test, info.chance_error, info.sizes[1], info.sizes[2])
    lr = np.log10([cur.configs[i]["lr_init"] for i in res.first_rows])
    rows = []
    for size, v in (("by-error", "e (1 - e) of the final error"), ("by-level", "the final error e")):
        level, wobble, ref, lo, hi, gain = fit_noise_size(res, size)
        rows.append(f"size by config (fit --noise-size {size}): shift x (v / {ref:.3f}) ** {-level:+.3f}, wobble x "
                    f"(v / {ref:.3f}) ** {-wobble:+.3f}, v = {v} in [{lo:.3f}, {hi:.3f}]; "
                    f"log likelihood {gain:+.1f} over one size")
    for size in ("shared", "by-level"):  # a size of each config's own, at random, beyond what its level says
        unit = unit_residuals(res, size)[0]
        fits = [(part, *fit_config_spread(unit, part)) for part in SPREAD_PARTS]
        rows.append(f"a random size of each config's own, after {'one size' if size == 'shared' else 'the size by level'} "
                    "(variance x a lognormal factor of mean 1 and log sd s): "
                    + ", ".join(f"{'wobble' if part == 'wobble' else 'whole noise'} s {s:.3f}, log likelihood {g:+.1f}"
                                for part, s, g in fits))
    return ([f"{data.dataset}: between-seed sd (logit) of the {len(res.sizes)} configs that learned under every seed, "
             "pooled over the configs of each third"] + sd_by_thirds(res, {"initial learning rate (log10)": lr}) + rows)


def sd_by_thirds(res, extra: dict[str, np.ndarray] | None = None) -> list[str]:
    """The table of :func:`by_config_rows` (below its title) for the replicated residuals ``res``."""
    from scipy.stats import spearmanr

    starts = np.r_[0, np.cumsum(res.sizes)[:-1]]
    # per config and window: the sum of squared residuals and its degrees of freedom
    ss = {w: np.array([np.sum(res.val[a : a + n, lo - 1 : hi] ** 2) for a, n in zip(starts, res.sizes)])
          for w, (lo, hi) in SD_EPOCHS.items()}
    dof = {w: (res.sizes - 1) * (hi - lo + 1) for w, (lo, hi) in SD_EPOCHS.items()}
    shift = res.val.mean(axis=1, keepdims=True)  # each run's shift; the wobble is the rest (epochs - 1 dof per run)
    ss["shift"] = np.array([np.sum(shift[a : a + n] ** 2) for a, n in zip(starts, res.sizes)])
    ss["wobble"] = np.array([np.sum((res.val - shift)[a : a + n] ** 2) for a, n in zip(starts, res.sizes)])
    dof["shift"], dof["wobble"] = res.sizes - 1, (res.sizes - 1) * (res.val.shape[1] - 1)
    late0, last = SD_EPOCHS["late"]
    props = {f"late fall of the mean curve (logit, epoch {late0} to {last})": res.val_mean[:, late0 - 1] - res.val_mean[:, last - 1],
             "final validation error (mean curve)": 1.0 / (1.0 + np.exp(-res.val_mean[:, last - 1])),
             **(extra or {})}
    windows = "".join(f"  sd epochs {lo}-{hi}" if lo < hi else f"{f'sd epoch {lo}':>15s}" for lo, hi in SD_EPOCHS.values())
    windows += f"{'shift sd':>15s}{'wobble sd':>15s}"
    out = [f"{'':40s}configs{windows}"]
    for name, x in props.items():
        out.append(name)
        edges = np.quantile(x, [0, 1 / 3, 2 / 3, 1])
        third = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, 2)
        for k in range(3):
            sel = third == k
            sds = "".join(f"{np.sqrt(ss[w][sel].sum() / dof[w][sel].sum()):15.3f}" for w in ss)
            out.append(f"  [{edges[k]:6.3f}, {edges[k + 1]:6.3f}]{'':22s}{int(sel.sum()):7d}{sds}")
        rhos = []
        for w in ss:
            r = spearmanr(x, np.sqrt(ss[w] / dof[w]))
            rhos.append(f"{r.statistic:+6.2f} (p {r.pvalue:.3f})")
        out.append(f"  {'Spearman, config sd vs this':38s}{'':7s}" + "".join(f"{c:>15s}" for c in rhos))
    return out


def card_rows(logs: str, dataset: str | None, processes=None, sizes=("shared",)) -> list[str]:
    """The draws rows of the quality cards of surrogates fitted on ``logs``, one per noise process
    and size (a column each, named by the process, with ``/by-error`` or ``/by-level`` where the size follows
    the config; pairs that do not go together, a residual bank with a size by config, are left out).
    ``processes`` defaults to :data:`PROCESSES`."""
    from surrobench.surrogate import fit_surrogate

    columns = [(t, z) for t in (processes or PROCESSES) for z in sizes if not t.startswith("bank") or z == "shared"]
    names = [t if z == "shared" else f"{t}/{z}" for t, z in columns]
    cards = [fit_surrogate(logs, dataset=dataset, plot=False, noise_time=t, noise_size=z).quality for t, z in columns]
    what = "each noise process" if sizes == ("shared",) else "each noise process and size"
    return _card_table(f"quality cards of a surrogate fitted with {what} (same logs, grid and seed; out-of-fold draws)",
                       names, cards)


CARD_PARTS = (
    ("shipped", {}),
    ("no tail map", {"tail": False}),
    ("no noise", {"noise": False}),
    ("neither", {"tail": False, "noise": False}),
    ("1 nearest", {"nearest": 1}),
    ("6 nearest", {"nearest": 6}),
    ("one shift", {"shift": True}),
)
"""``--card-parts``: the columns, each a surrogate fitted with the residual bank searched by the prediction (``bank``), whose
card draws leave out the tail map, the seed noise or both, or whose bank lends each draw the runs of another
number of nearest configs than :data:`~surrobench.surrogate.noise.BANK_NEAREST`, or whose draws move each
curve by one shift, the tail map's at the last epoch (validation and test each), instead of mapping every
epoch on its own (:class:`OneShift`)."""


class OneShift:
    """A tail map that moves each curve (rows of validation then test logits, ``MAX_EPOCH`` each) by one
    shift per half: what ``tail`` does to its last epoch. Keeps the curve's shape, and the last epoch's
    mapped value exactly."""

    def __init__(self, tail):
        self.tail = tail

    def __call__(self, z: np.ndarray) -> np.ndarray:
        mapped = self.tail(z)
        out = np.array(z, dtype=float)
        for last in (MAX_EPOCH - 1, 2 * MAX_EPOCH - 1):
            out[:, last + 1 - MAX_EPOCH: last + 1] += (mapped[:, last] - z[:, last])[:, None]
        return out


@contextlib.contextmanager
def card_draws(*, tail: bool = True, noise: bool = True, nearest: int | None = None, shift: bool = False,
               level_weight: float | None = None):
    """While open, the quality card's out-of-fold draws of a fit leave out the tail map (``tail=False``:
    the learner curves as predicted) or the seed noise (``noise=False``: every learner its mapped mean
    curve), or map each curve by one shift (``shift=True``, :class:`OneShift`), and a fit's residual bank
    lends each draw one of ``nearest`` configs' runs, and searches it with the keys' last column, the last
    epoch's level, weighted ``level_weight`` times (:func:`~surrobench.surrogate.noise.bank_key`; its
    squared distance ``level_weight ** 2`` times; the bank's keys and the draws' alike). The tail map is
    still fitted as usual (it is matched to the noise itself, not through the draws); only ``nearest`` and
    ``level_weight`` change the fitted surrogate."""
    from surrobench.surrogate import build, model
    from surrobench.surrogate import noise as noise_module

    draw, fitted_noise, key = model.CurveModel.draw, build.calibrate, noise_module.bank_key

    def parts_draw(self, p, learner, config_keys, seeds, mix, size=None, bank=None, bank_mapped=False):
        kept = self.tail
        if not tail:
            self.tail = None
        elif shift and kept is not None:
            self.tail = OneShift(kept)
        if not noise:
            mix, size = np.zeros_like(mix), None
            bank = None if bank is None else (lambda normals, z: np.zeros_like(z))
        try:
            return draw(self, p, learner, config_keys, seeds, mix, size=size, bank=bank, bank_mapped=bank_mapped)
        finally:
            self.tail = kept

    if not (tail and noise) or shift:
        model.CurveModel.draw = parts_draw
    if nearest is not None:
        build.calibrate = lambda *a, **k: dataclasses.replace(fitted_noise(*a, **k), bank_nearest=nearest)
    if level_weight is not None:
        def weighted_key(z: np.ndarray) -> np.ndarray:
            out = key(z)
            out[:, -1] *= level_weight
            return out

        noise_module.bank_key = weighted_key
    try:
        yield
    finally:
        model.CurveModel.draw, build.calibrate, noise_module.bank_key = draw, fitted_noise, key


def card_parts_rows(logs: str, dataset: str | None) -> list[str]:
    """The draws rows of the quality cards of surrogates fitted on ``logs`` with the residual bank, one per
    column of :data:`CARD_PARTS`: where the drawn runs' excess dips come from."""
    return _variant_cards(logs, dataset, "bank", CARD_PARTS,
                          "quality cards of a surrogate fitted with the residual bank (same logs, grid and seed; "
                          "out-of-fold draws), the draws with parts left out, or the bank's nearest configs changed")


def _variant_cards(logs: str, dataset: str | None, noise_time: str, variants, title: str) -> list[str]:
    """The table of the quality cards of surrogates fitted on ``logs`` with ``noise_time``, one per
    ``(name, card_draws settings)`` of ``variants``."""
    from surrobench.surrogate import fit_surrogate

    cards = []
    for _, parts in variants:
        with card_draws(**parts):
            cards.append(fit_surrogate(logs, dataset=dataset, plot=False, noise_time=noise_time).quality)
    return _card_table(title, [name for name, _ in variants], cards)


BANK_SPREAD = (
    ("shipped", {}),
    ("6 nearest", {"nearest": 6}),
    ("10 nearest", {"nearest": 10}),
    ("level x3", {"level_weight": 3.0}),
    ("level x10", {"level_weight": 10.0}),
    ("level x3, 6 nearest", {"level_weight": 3.0, "nearest": 6}),
)
"""``--bank-spread``: the columns, each a surrogate fitted with the residual bank searched by the mapped curve
(``bank-logged``, as shipped), whose bank lends each draw the runs of more nearest configs than
:data:`~surrobench.surrogate.noise.BANK_NEAREST`, or is searched with the last epoch's level weighted more
against the curve's shape (``level_weight`` of :func:`card_draws`), or both."""


def bank_spread_rows(logs: str, dataset: str | None) -> list[str]:
    """The draws rows of the quality cards of surrogates fitted on ``logs`` with the bank searched by the mapped
    curve, one per column of :data:`BANK_SPREAD`: do the best configs' reruns spread as the logged ones do when
    a draw's noise comes from more configs, or from configs nearer its level, and what does it do to the dips?"""
    return _variant_cards(logs, dataset, "bank-logged", BANK_SPREAD,
                          "quality cards of a surrogate fitted with the bank searched by the mapped curve (same logs, "
                          "grid and seed; out-of-fold draws), its draws lent the runs of more nearest configs, or "
                          "searched with the level weighted more")


def _card_table(title: str, names: list[str], cards: list[dict]) -> list[str]:
    """The draws rows of quality ``cards`` side by side, a column each, headed by ``names``."""
    first = cards[0]["draws"]["dips"]
    width = max(16, max(map(len, names)) + 1)
    out = [title, f"{'':42s}{'logged':>16s}" + "".join(f"{t:>{width}s}" for t in names)]
    for i, epoch in enumerate(first["epochs"]):
        cells = [c["draws"]["dips"]["drawn"][i] for c in cards]
        out.append(f"{f'dips at epoch {epoch} (share of learning runs)':42s}{first['logged'][i]:16.3f}"
                   + "".join(f"{v:{width}.3f}" for v in cells))
    if all("dips_best" in c["draws"] for c in cards):  # cards written before it lack these rows
        best = cards[0]["draws"]["dips_best"]
        for i, epoch in enumerate(best["epochs"]):
            out.append(f"{f'  best third of them, at epoch {epoch}':42s}{best['logged'][i]:16.3f}"
                       + "".join(f"{c['draws']['dips_best']['drawn'][i]:{width}.3f}" for c in cards))
    noise = [c["seed_noise"] for c in cards]
    out.append(f"{'between-seed sd of final error':42s}{noise[0]['measured_sd']:16.4f}"
               + "".join(f"{n['surrogate_sd']:{width}.4f}" for n in noise))
    if all("by_final_error" in n for n in noise):  # cards written before it lack these rows
        thirds = noise[0]["by_final_error"]
        for k, name in enumerate(("best", "middle", "worst")):
            label = f"  learners, {name} third [{thirds['edges'][k]:.2f}, {thirds['edges'][k + 1]:.2f}]"
            out.append(f"{label:42s}{thirds['measured_sd'][k]:16.4f}"
                       + "".join(f"{n['by_final_error']['surrogate_sd'][k]:{width}.4f}" for n in noise))
    if all("tails" in c["draws"] for c in cards):  # cards written before it lack these rows
        tails = cards[0]["draws"]["tails"]
        for i, epoch in enumerate(tails["epochs"]):
            label = f"best {round(100 * tails['level'])} % of runs at epoch {epoch} (quantile)"
            out.append(f"{label:42s}{tails['logged'][i]:16.3f}"
                       + "".join(f"{c['draws']['tails']['drawn'][i]:{width}.3f}" for c in cards))
    out.append(f"{'largest gap, final-error distribution':42s}{'':16s}"
               + "".join(f"{c['draws']['max_gap']:{width}.3f}" for c in cards))
    return out


PROCESSES = ("epoch", "log-epoch", "log-epoch-early", "empirical")
"""The seed-noise processes the table and, by default, ``--cards`` compare (``surrobench fit --noise-time``; the
residual bank, ``bank``, has the measured covariance's table row and is a ``--cards`` column when named)."""

DIPS_DRAWS = 20  # --dips: sets of draws around the replicated configs' mean curves
DIPS_NEAREST = 3  # --dips: the configs whose runs lend their residual curves, by nearness of mean curve


def dips_rows(logs: str, dataset: str | None, draws: int = DIPS_DRAWS, seed: int = 0) -> list[str]:
    """How often the replicated learners' runs fall below their own final error part-way (the card's dips),
    logged and drawn around each config's own mean curve with several noises (see the docstring)."""
    from surrobench.surrogate.quality import DIP_EPOCHS, best_runs, dip_share

    data = load_run_data(logs, dataset)
    info = dataset_info(data.dataset)
    cur = data.subset(data.curve_run)
    res = replicated_residuals(cur.config_ids, cur.val, cur.test, info.chance_error, info.sizes[1], info.sizes[2])
    n_ep = res.val.shape[1]
    mean = np.repeat(res.val_mean, res.sizes, axis=0)  # each run's config mean (logit)
    final = 1.0 / (1.0 + np.exp(-mean[:, -1]))
    # the mean of n runs carries 1/n of their noise: runs around it spread with (1 - 1/n) of its variance
    keep = np.sqrt(1.0 - 1.0 / np.repeat(res.sizes, res.sizes))[:, None]
    group = np.repeat(np.arange(len(res.sizes)), res.sizes)
    rng = np.random.default_rng(seed)
    unit, sized = unit_residuals(res, "by-level")
    level = NoiseModel(0, 0, 0, 0, 0, 0, 0, 0, **sized)
    spread, _ = fit_config_spread(unit, "wobble")
    proj = np.full((n_ep, n_ep), 1.0 / n_ep)

    def gaussian(scatter_res, sized_noise=None, spread=0.0):
        chol = np.linalg.cholesky(scatter_res.scatter / scatter_res.dof)
        eps = rng.standard_normal((len(mean), n_ep)) @ chol.T
        if spread:  # each config's wobble, its variance times a lognormal factor of mean 1
            root = np.exp((spread * rng.standard_normal(len(res.sizes)) - spread**2 / 2) / 2)[group][:, None]
            eps = eps @ proj + root * (eps - eps @ proj)
        if sized_noise is not None:
            eps = sized_noise.resize(np.hstack([eps, eps]), final)[:, :n_ep]
        return eps * keep

    # the runs of the configs whose mean curves are nearest (shape from epoch 5 on, relative to the last epoch,
    # and the last epoch's level), the config itself left out
    starts = np.r_[0, np.cumsum(res.sizes)[:-1]]
    shape = np.column_stack([res.val_mean[:, 4:] - res.val_mean[:, -1:], res.val_mean[:, -1]])
    dist = ((shape[:, None, :] - shape[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(dist, np.inf)
    near = np.argsort(dist, axis=1, kind="stable")[:, :DIPS_NEAREST]

    def nearest():
        pools = [np.concatenate([np.arange(starts[h], starts[h] + res.sizes[h]) for h in near[g]])
                 for g in range(len(res.sizes))]
        return res.val[np.concatenate([rng.choice(pool, n, replace=False) for pool, n in zip(pools, res.sizes)])]

    noises = {
        "one size (the pooled covariance)": lambda: gaussian(res),
        "sized by level": lambda: gaussian(unit, level),
        f"by level, random size per config (s {spread:.2f})": lambda: gaussian(unit, level, spread),
        "residuals of runs of other configs": lambda: res.val[rng.permutation(len(res.val))],
        f"residuals of the {DIPS_NEAREST} configs of nearest curve": nearest,
    }
    epochs = [e for e in DIP_EPOCHS if e < n_ep]

    def cells(curves_list) -> str:
        return "".join(f"{np.mean([dip_share(c, e) for c in curves_list]):8.3f}" for e in epochs) + "  " + "".join(
            f"{np.mean([dip_share(best_runs(c), e) for c in curves_list]):8.3f}" for e in epochs)

    def sig(z):
        return 1.0 / (1.0 + np.exp(-z))

    head = "".join(f"{f'e {e}':>8s}" for e in epochs)
    out = [f"{data.dataset}: dips (runs below their own final error by more than 0.02 part-way) of the "
           f"{len(res.val)} runs of the {len(res.sizes)} configs that learned under every seed, logged and drawn "
           f"around each config's own mean curve ({draws} sets of draws)",
           f"{'':50s}{'all runs':>{8 * len(epochs)}s}  {'the best third (by own final error)':>{8 * len(epochs)}s}",
           f"{'':50s}{head}  {head}",
           f"{'logged':50s}" + cells([sig(mean + res.val)])]
    for name, noise in noises.items():
        out.append(f"{'drawn: ' + name:50s}" + cells([sig(mean + noise()) for _ in range(draws)]))
    return out


def _names(text: str, known: tuple[str, ...], what: str) -> tuple[str, ...]:
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [t for t in names if t not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown {what} {', '.join(unknown) or '(none given)'} "
                                         f"(known: {', '.join(known)})")
    return names


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("logs", nargs="?", default=str(ROOT / "training_logs" / "flowers17"))
    p.add_argument("--dataset", default=None)
    how = p.add_mutually_exclusive_group()
    how.add_argument("--cards", action="store_true", help="fit a surrogate with each noise process and compare their cards")
    how.add_argument("--by-config", action="store_true", help="the between-seed sd by thirds of a config property")
    how.add_argument("--dips", action="store_true",
                     help="the replicated runs' dips, logged and drawn around each config's own mean curve")
    how.add_argument("--card-parts", action="store_true",
                     help="the cards of the residual bank's surrogate with the draws' tail map or noise left out, "
                          "1 or 6 nearest configs, or one shift per curve")
    how.add_argument("--bank-spread", action="store_true",
                     help="the cards of the shipped bank (searched by the mapped curve) with 6 or 10 nearest configs, "
                          "or the last epoch's level weighted 3 or 10 times in the search")
    p.add_argument("--processes", type=lambda t: _names(t, NOISE_TIMES, "process"), default=PROCESSES,
                   help="with --cards: the processes, comma-separated (default: the four processes; also known: "
                        "bank and bank-logged, the residual bank searched by the prediction or by the mapped curve)")
    p.add_argument("--sizes", type=lambda t: _names(t, NOISE_SIZES, "size"), default=("shared",),
                   help="with --cards: the sizes, comma-separated (default: shared)")
    args = p.parse_args(argv)
    if not args.cards and (args.processes != PROCESSES or args.sizes != ("shared",)):
        p.error("--processes and --sizes pick the columns of --cards")
    if args.cards:
        lines = card_rows(args.logs, args.dataset, args.processes, args.sizes)
    elif args.card_parts:
        lines = card_parts_rows(args.logs, args.dataset)
    elif args.bank_spread:
        lines = bank_spread_rows(args.logs, args.dataset)
    else:
        lines = (by_config_rows if args.by_config else dips_rows if args.dips else rows)(args.logs, args.dataset)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
