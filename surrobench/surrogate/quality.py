"""The quality card: how far a surrogate can be trusted, measured on configs it never saw.

Every number comes from out-of-fold predictions: configs are dealt into folds (all seeds
of a config together), and each fold is predicted by models fitted (and tuned) on the
other folds. The noise ceiling asks the same questions of a rerun: on configs trained
with several seeds, how well does seed A predict seed B? A surrogate cannot be expected
to predict a fresh rerun much better than another rerun does.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
from scipy.stats import kendalltau, spearmanr

__all__ = [
    "stats",
    "rerun_pairs",
    "rerun_stats",
    "build_card",
    "draw_card",
    "dip_share",
    "distribution",
    "format_card",
    "format_summary",
    "format_comparison",
    "verdict",
    "parity_png",
    "DIST_ROWS",
]

MIN_CEILING_CONFIGS = 10

DIST_ROWS = (
    ("near_chance", "share near chance (final error >= chance - 0.05)"),
    ("learner_q10", "learners' 10 % quantile"),
    ("learner_q25", "learners' 25 % quantile"),
    ("learner_q50", "learners' median"),
    ("learner_q75", "learners' 75 % quantile"),
    ("best_1", "best 1 % of runs (1 % quantile)"),
    ("best_5", "best 5 % of runs (5 % quantile)"),
    ("best_10", "best 10 % of runs (10 % quantile)"),
)
"""The rows of the distribution table of final-epoch validation error (logged vs drawn)."""


def _num(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def stats(pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """n, R^2, MAE, Kendall tau-b and Spearman rho of predictions against measurements."""
    pred, truth = np.asarray(pred, float).ravel(), np.asarray(truth, float).ravel()
    n = len(truth)
    out: dict[str, Any] = {"n": n, "r2": None, "mae": None, "kendall_tau": None, "spearman_rho": None}
    if n == 0:
        return out
    out["mae"] = _num(np.mean(np.abs(pred - truth)))
    ss = float(np.sum((truth - truth.mean()) ** 2))
    if ss > 0:
        out["r2"] = _num(1.0 - float(np.sum((truth - pred) ** 2)) / ss)
    if n >= 3 and np.ptp(pred) > 0 and np.ptp(truth) > 0:
        out["kendall_tau"] = _num(kendalltau(pred, truth).statistic)
        out["spearman_rho"] = _num(spearmanr(pred, truth).statistic)
    return out


def rerun_pairs(config_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (a, b) of every ordered pair of different runs of the same config."""
    a, b = [], []
    ids = np.asarray(config_ids)
    for cid in np.unique(ids):
        rows = np.flatnonzero(ids == cid)
        for i in rows:
            for j in rows:
                if i != j:
                    a.append(i)
                    b.append(j)
    return np.asarray(a, dtype=int), np.asarray(b, dtype=int)


def rerun_stats(config_ids: np.ndarray, values: np.ndarray) -> dict[str, Any]:
    """The noise ceiling: :func:`stats` of one rerun predicting another, over every ordered seed pair.

    ``values`` holds one row per run (a number, or a curve); rows of the same config are reruns.
    """
    a, b = rerun_pairs(config_ids)
    values = np.asarray(values, float)
    return stats(values[a], values[b])


def verdict(surrogate_tau: float | None, rerun_tau: float | None) -> str:
    if surrogate_tau is None or rerun_tau is None:
        return "no verdict: too few replicated configs to compare the surrogate with a rerun"
    if round(surrogate_tau, 2) == round(rerun_tau, 2):
        word = "as well as"
    else:
        word = "better than" if surrogate_tau > rerun_tau else "worse than"
    return (
        f"the surrogate predicts a fresh rerun {word} another rerun does "
        f"(final-epoch validation error, Kendall tau {surrogate_tau:.2f} vs {rerun_tau:.2f})"
    )


def build_card(
    *,
    config_ids: np.ndarray,
    val: np.ndarray,
    test: np.ndarray,
    oof: np.ndarray,
    oof_learn_p: np.ndarray,
    learn: np.ndarray,
    runtime: dict[str, Any],
    seed_noise: dict[str, Any],
    protocol: str,
    draws: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The card's numbers (a JSON-ready dict). ``oof`` holds out-of-fold mean curves (n, 50)."""
    n_ep = val.shape[1]
    pv, pt = oof[:, :n_ep], oof[:, n_ep:]
    card: dict[str, Any] = {"protocol": protocol, "n_runs": int(len(val)), "n_configs": int(len(np.unique(config_ids)))}
    card["final_val_error"] = stats(pv[:, -1], val[:, -1])
    card["all_epochs_val_error"] = stats(pv, val)
    card["final_test_error"] = stats(pt[:, -1], test[:, -1])
    # The best 20 % of configs by their measured (seed-mean) final validation error.
    ids, inv = np.unique(config_ids, return_inverse=True)
    mean_truth = np.bincount(inv, weights=val[:, -1]) / np.bincount(inv)
    mean_pred = np.bincount(inv, weights=pv[:, -1]) / np.bincount(inv)
    n_top = max(3, int(round(0.2 * len(ids))))
    top = np.argsort(mean_truth, kind="stable")[:n_top]
    top_stats = stats(mean_pred[top], mean_truth[top])
    card["top20_final_val_error"] = {k: top_stats[k] for k in ("n", "kendall_tau", "spearman_rho")}
    lv = {
        "n": int(len(learn)),
        "base_rate": _num(float(np.mean(learn))),
        "accuracy": _num(float(np.mean((oof_learn_p > 0.5) == learn))),
    }
    lv["auc"] = None
    if 0 < learn.sum() < len(learn):
        from sklearn.metrics import roc_auc_score

        lv["auc"] = _num(roc_auc_score(learn, oof_learn_p))
    card["learns_vs_chance"] = lv
    card["runtime"] = runtime
    a, b = rerun_pairs(config_ids)
    n_replicated = int(len(np.unique(np.asarray(config_ids)[a]))) if len(a) else 0
    ceiling: dict[str, Any] = {"n_configs": n_replicated, "n_pairs": int(len(a))}
    if len(a):
        ceiling["rerun"] = {
            "final_val_error": rerun_stats(config_ids, val[:, -1]),
            "all_epochs_val_error": rerun_stats(config_ids, val),
        }
        ceiling["surrogate"] = {
            "final_val_error": stats(pv[b, -1], val[b, -1]),
            "all_epochs_val_error": stats(pv[b], val[b]),
        }
        ceiling["verdict"] = verdict(
            ceiling["surrogate"]["final_val_error"]["kendall_tau"], ceiling["rerun"]["final_val_error"]["kendall_tau"]
        )
        if ceiling["n_configs"] < MIN_CEILING_CONFIGS:
            ceiling["verdict"] += f"; only {ceiling['n_configs']} replicated configs, too few for a firm verdict"
    else:
        ceiling["verdict"] = verdict(None, None)
    card["noise_ceiling"] = ceiling
    card["seed_noise"] = seed_noise
    if draws is not None:
        card["draws"] = draws
    return card


def distribution(final: np.ndarray, chance: float) -> dict[str, float | None]:
    """The :data:`DIST_ROWS` numbers of final-epoch validation errors (one per run)."""
    from .noise import LEARN_MARGIN

    final = np.asarray(final, float)
    learner = final[final < chance - LEARN_MARGIN]
    out: dict[str, float | None] = {"near_chance": _num(float(np.mean(final >= chance - LEARN_MARGIN)))}
    for q in (10, 25, 50, 75):
        out[f"learner_q{q}"] = _num(float(np.quantile(learner, q / 100))) if len(learner) else None
    out["best_1"] = _num(float(np.quantile(final, 0.01)))
    out["best_5"] = _num(float(np.quantile(final, 0.05)))
    out["best_10"] = _num(float(np.quantile(final, 0.10)))
    return out


def draw_card(
    *,
    config_ids: np.ndarray,
    val: np.ndarray,
    drawn: np.ndarray,
    learner_pred: np.ndarray,
    chance: float,
    learn_corr: float,
    oof_p: np.ndarray,
) -> dict[str, Any]:
    """How the seeded draws of held-out configs compare with the logged runs they stand for.

    ``drawn`` holds out-of-fold draws of validation error at every epoch, shape (k, runs,
    epochs): draw 0 of each run with the run's own seed (same config, same seed), the
    others with other seeds (they steady the drawn distribution's quantiles);
    ``learner_pred`` the out-of-fold learner prediction of the final epoch as the draws
    centre it (after the tail map); ``oof_p`` the out-of-fold P(learns).
    """
    from .noise import expected_flip_rate, flip_share, learns

    drawn = np.asarray(drawn, float)
    if drawn.ndim == 2:
        drawn = drawn[None]
    logged, draws = distribution(val[:, -1], chance), distribution(drawn[:, :, -1].ravel(), chance)
    gaps = [abs(logged[k] - draws[k]) for k, _ in DIST_ROWS if logged[k] is not None and draws[k] is not None]
    tails = {
        "level": TAIL_LEVEL,
        "epochs": [e for e in TAIL_EPOCHS if e <= val.shape[1]],
        "logged": [_num(float(np.quantile(val[:, e - 1], TAIL_LEVEL))) for e in TAIL_EPOCHS if e <= val.shape[1]],
        "drawn": [_num(float(np.quantile(drawn[:, :, e - 1], TAIL_LEVEL))) for e in TAIL_EPOCHS if e <= val.shape[1]],
    }
    flips, n_rep = flip_share(config_ids, learns(val, chance))
    drawn_flips, _ = flip_share(config_ids, learns(drawn[0], chance))
    ids, inv, counts = np.unique(np.asarray(config_ids), return_inverse=True, return_counts=True)
    mean_p = np.bincount(inv, weights=np.asarray(oof_p, float)) / counts
    rep = counts >= 2
    expected = float(expected_flip_rate(mean_p[rep], counts[rep], learn_corr).sum()) if rep.any() else None
    # Shrinkage: the configs whose measured (seed-mean) final error is among the best 20 %.
    truth = np.bincount(inv, weights=val[:, -1]) / counts
    pred = np.bincount(inv, weights=np.asarray(learner_pred, float)) / counts
    draw_mean = np.bincount(inv, weights=drawn[:, :, -1].mean(axis=0)) / counts
    n_top = max(3, int(round(0.2 * len(ids))))
    top = np.argsort(truth, kind="stable")[:n_top]
    top_stats = stats(pred[top], truth[top])
    learned = np.stack([learns(d, chance) for d in drawn])
    dips = {
        "margin": DIP_MARGIN,
        "epochs": [e for e in DIP_EPOCHS if e < val.shape[1]],
        "logged": [_num(dip_share(val[learns(val, chance)], e)) for e in DIP_EPOCHS if e < val.shape[1]],
        "drawn": [_num(dip_share(drawn[learned], e)) for e in DIP_EPOCHS if e < val.shape[1]],
    }
    dips_best = {
        "margin": DIP_MARGIN,
        "share": DIP_BEST,
        "epochs": dips["epochs"],
        "logged": [_num(dip_share(best_runs(val[learns(val, chance)]), e)) for e in dips["epochs"]],
        "drawn": [_num(dip_share(best_runs(drawn[learned]), e)) for e in dips["epochs"]],
    }
    return {
        "what": (f"final-epoch validation error of the logged runs vs {drawn.shape[0]} out-of-fold draws per run "
                 "(the first with the run's own seed; flips counted on it)"),
        "logged": logged,
        "drawn": draws,
        "max_gap": _num(max(gaps)) if gaps else None,
        "flips": {"n_replicated": n_rep, "measured": flips, "drawn": drawn_flips,
                  "expected": _num(expected) if expected is not None else None, "learn_corr": learn_corr},
        "best20": {"n": int(n_top), "measured_mean": _num(float(truth[top].mean())),
                   "predicted_learner_mean": _num(float(pred[top].mean())),
                   "drawn_mean": _num(float(draw_mean[top].mean())),
                   "kendall_tau_learner": top_stats["kendall_tau"]},
        "dips": dips,
        "dips_best": dips_best,
        "tails": tails,
        "early_cut": {
            "epochs": [e for e in CUT_EPOCHS if e < val.shape[1]],
            "keep": CUT_KEEP,
            "best": CUT_BEST,
            "logged": [_num(early_cut_share(val, e)) for e in CUT_EPOCHS if e < val.shape[1]],
            "drawn": [_num(float(np.mean([early_cut_share(d, e) for d in drawn]))) for e in CUT_EPOCHS
                      if e < val.shape[1]],
        },
    }


TAIL_EPOCHS = (1, 3, 9, 25)
TAIL_LEVEL = 0.01
"""The card's tails row: the 1 % quantile of validation error at these epochs, logged and drawn (what an
optimizer that evaluates thousands of configs at low fidelity finds first)."""
DIP_EPOCHS = (5, 9, 13, 19)
DIP_MARGIN = 0.02


DIP_BEST = 1.0 / 3.0
"""The card's second dips row counts the dips of the best third of learning runs (by their own final error),
where optimizers look."""


def best_runs(curves: np.ndarray, share: float = DIP_BEST) -> np.ndarray:
    """The rows of ``curves`` (validation error at epochs 1..n) whose final error is among the lowest ``share``
    (ties at the cut kept): each run judged by its own end, logged and drawn alike."""
    curves = np.asarray(curves, float)
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share: must lie in (0, 1], got {share!r}")
    if len(curves) == 0:
        return curves
    return curves[curves[:, -1] <= np.quantile(curves[:, -1], share)]


def dip_share(curves: np.ndarray, epoch: int, margin: float = DIP_MARGIN) -> float | None:
    """Share of ``curves`` (rows of validation error at epochs 1..n) whose error at ``epoch``
    (1-based) is below their final error by more than ``margin``: how often a run looks better
    part-way than at its end, which a method that keeps low-epoch points turns into a lucky find."""
    curves = np.asarray(curves, float)
    if len(curves) == 0:
        return None
    return float(np.mean(curves[:, epoch - 1] < curves[:, -1] - margin))


CUT_EPOCHS = (1, 3, 9)  # MO-ASHA's and SH-EMOA's rungs below the last (eta 3, epochs 1..25)
CUT_KEEP = 1.0 / 3.0
CUT_BEST = 0.05


def early_cut_share(curves: np.ndarray, epoch: int, keep: float = CUT_KEEP, best: float = CUT_BEST) -> float:
    """Share of the best ``best`` of ``curves`` (rows of validation error at epochs 1..n, ranked by
    their final error) whose error at ``epoch`` (1-based) is among the best ``keep`` there: how many
    of the runs that end best an early cut of successive halving would have kept. Where real runs
    start slowly and end well more often than drawn ones, methods that cut early lose less on the
    surrogate than on real runs."""
    curves = np.asarray(curves, float)
    if curves.ndim != 2 or len(curves) == 0:
        raise ValueError(f"curves: expected runs x epochs with at least one run, got shape {curves.shape}")
    if not 1 <= epoch <= curves.shape[1]:
        raise ValueError(f"epoch: must lie in 1..{curves.shape[1]}, got {epoch!r}")
    if not (0.0 < keep <= 1.0 and 0.0 < best <= 1.0):
        raise ValueError(f"keep and best: shares in (0, 1], got {keep!r} and {best!r}")
    final, early = curves[:, -1], curves[:, epoch - 1]
    top = final <= np.quantile(final, best)
    return float(np.mean(early[top] <= np.quantile(early, keep)))


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _row(label: str, s: dict[str, Any]) -> str:
    return (
        f"  {label:<34} n={s['n']:<6} R2={_fmt(s.get('r2')):>7}  MAE={_fmt(s.get('mae'), 4):>7}  "
        f"tau={_fmt(s.get('kendall_tau')):>6}  rho={_fmt(s.get('spearman_rho')):>6}"
    )


def format_card(manifest: dict[str, Any]) -> str:
    """The card as plain text, with the facts a reader needs to judge it."""
    card = manifest["quality"]
    ds = manifest["dataset"]
    td = manifest["training_data"]
    lines = [
        f"quality card of surrogate {manifest['name']!r} (dataset {ds['name']}, {td['n_runs']} runs, "
        f"{td['n_configs']} configs, training data sha256 {td['sha256'][:16]}...)",
        f"protocol: {card['protocol']}",
        "",
        "learning curves, predicted vs measured on held-out configs:",
        _row("final-epoch validation error", card["final_val_error"]),
        _row("validation error, all 25 epochs", card["all_epochs_val_error"]),
        _row("final-epoch test error", card["final_test_error"]),
        f"  {'tau among the best 20 % of configs':<34} n={card['top20_final_val_error']['n']:<6} "
        f"tau={_fmt(card['top20_final_val_error']['kendall_tau'])}",
    ]
    lv = card["learns_vs_chance"]
    lines.append(
        f"  learns vs stays at chance: {lv['n']} runs, {_fmt(lv['base_rate'], 2)} learn; "
        f"AUC {_fmt(lv['auc'])}, accuracy at p>0.5 {_fmt(lv['accuracy'])}"
    )
    rt = card["runtime"]
    lines += ["", f"runtime ({rt['target']}) on {rt['device']}:"]
    lines.append(f"  rests on {rt['n_runs']} runs of {rt['n_configs']} configs that had the device alone")
    if rt.get("seconds"):
        lines.append(_row("seconds (R2 on log10 seconds)", rt["seconds"]))
    lines.append(f"  {rt['note']}")
    nc = card["noise_ceiling"]
    lines += ["", f"noise ceiling: {nc['n_configs']} configs run with several seeds ({nc['n_pairs']} ordered seed pairs)"]
    if "rerun" in nc:
        lines.append(_row("rerun vs rerun, final epoch", nc["rerun"]["final_val_error"]))
        lines.append(_row("surrogate vs rerun, final epoch", nc["surrogate"]["final_val_error"]))
        lines.append(_row("rerun vs rerun, all epochs", nc["rerun"]["all_epochs_val_error"]))
        lines.append(_row("surrogate vs rerun, all epochs", nc["surrogate"]["all_epochs_val_error"]))
    lines.append(f"  => {nc['verdict']}")
    sn = card["seed_noise"]
    lines += [
        "",
        f"seed noise: between-seed sd of final validation error on {sn['n_configs']} replicated configs: "
        f"measured {_fmt(sn['measured_sd'], 4)}, surrogate draws {_fmt(sn['surrogate_sd'], 4)}",
        f"  {sn['note']}",
    ]
    thirds = sn.get("by_final_error")  # cards written before it lack this row
    if thirds:
        e = thirds["edges"]
        lines.append(
            f"  {thirds['what']}: " + ", ".join(
                f"[{e[k]:.2f}, {e[k + 1]:.2f}] measured {_fmt(m, 4)}, drawn {_fmt(d, 4)}"
                for k, (m, d) in enumerate(zip(thirds["measured_sd"], thirds["surrogate_sd"]))))
    if "draws" in card:
        lines += ["", *format_draws(card["draws"])]
    lines += ["", card.get("shipped", "")]
    return "\n".join(lines).rstrip() + "\n"


def format_draws(draws: dict[str, Any]) -> list[str]:
    """The draws section of the card: distribution table, flips, shrinkage of the best configs."""
    lines = [f"seeded draws: {draws['what']}:", f"  {'':<48} {'logged':>8} {'drawn':>8}"]
    for key, label in DIST_ROWS:
        if key in draws["logged"]:  # cards written before a row existed lack it
            lines.append(f"  {label:<48} {_fmt(draws['logged'][key]):>8} {_fmt(draws['drawn'][key]):>8}")
    lines.append(f"  largest gap {_fmt(draws['max_gap'])}")
    fl = draws["flips"]
    lines.append(
        f"  flips (seeds of a config disagree about learning): {fl['measured']} of {fl['n_replicated']} replicated "
        f"configs logged, {fl['drawn']} drawn, {_fmt(fl['expected'], 1)} expected (seed correlation {_fmt(fl['learn_corr'])})"
    )
    b = draws["best20"]
    lines.append(
        f"  best 20 % of configs ({b['n']}): measured mean {_fmt(b['measured_mean'])}, predicted learner "
        f"{_fmt(b['predicted_learner_mean'])}, draws {_fmt(b['drawn_mean'])}; tau {_fmt(b['kendall_tau_learner'])}"
    )
    d = draws.get("dips")  # cards written before it lack this row
    if d:
        at = ", ".join(f"{e}: {_fmt(a)} / {_fmt(b)}" for e, a, b in zip(d["epochs"], d["logged"], d["drawn"]))
        lines.append(f"  learning runs below their final error by > {d['margin']} at epoch (logged / drawn): {at}")
    d = draws.get("dips_best")  # cards written before it lack this row
    if d:
        at = ", ".join(f"{e}: {_fmt(a)} / {_fmt(b)}" for e, a, b in zip(d["epochs"], d["logged"], d["drawn"]))
        lines.append(f"  ... the best third of them (by their own final error): {at}")
    t = draws.get("tails")  # cards written before it lack this row
    if t:
        at = ", ".join(f"{e}: {_fmt(a)} / {_fmt(b)}" for e, a, b in zip(t["epochs"], t["logged"], t["drawn"]))
        lines.append(f"  the best {round(100 * t['level'])} % of runs' validation error (its quantile) at epoch "
                     f"(logged / drawn): {at}")
    c = draws.get("early_cut")  # cards written before it lack this row
    if c:
        at = ", ".join(f"{e}: {_fmt(a)} / {_fmt(b)}" for e, a, b in zip(c["epochs"], c["logged"], c["drawn"]))
        lines.append(f"  best {round(100 * c['best'])} % of runs by final error that are in the best "
                     f"{'third' if abs(c['keep'] - 1 / 3) < 1e-9 else format(c['keep'], '.2f')} at epoch "
                     f"(logged / drawn; what an early cut keeps): {at}")
    return lines


def _pair(entry: dict[str, Any], epochs: tuple[int, ...], side: str, scale: float = 1.0, unit: str = "") -> str:
    """``entry[side]`` at ``epochs`` (of ``entry["epochs"]``, see :func:`_at`), joined by " / "."""
    return " / ".join(f"{_fmt(scale * _at(entry, side, e), 1 if unit else 3)}{unit}" for e in epochs)


def format_summary(card: dict[str, Any]) -> str:
    """The rows of a quality card that say whether drawn runs look like logged ones, as a markdown table
    (drawn against logged): the best 1 % at epochs 3, 9 and 25, the dips at epochs 9 and 13 over all
    learning runs and in their best third, what an early cut at epoch 3 keeps, and the between-seed sd of
    final error, overall and in the best third of the replicated learners. ``ValueError`` for a card
    written before these rows existed."""
    draws, noise = card.get("draws") or {}, card.get("seed_noise") or {}
    needed = ("tails", "dips", "dips_best", "early_cut")
    if any(k not in draws for k in needed) or "by_final_error" not in noise:
        raise ValueError("quality card: written before the rows of the summary existed (tails, dips, early cut, "
                         "sd by thirds); refit the surrogate to get them")
    best_third, cut = noise["by_final_error"], draws["early_cut"]
    rows = [
        ("best 1 % of runs' validation error at epochs 3 / 9 / 25",
         *(_pair(draws["tails"], (3, 9, 25), s) for s in ("drawn", "logged"))),
        (f"share of learning runs that end > {draws['dips']['margin']} worse than at epoch 9 / 13",
         *(_pair(draws["dips"], (9, 13), s) for s in ("drawn", "logged"))),
        ("the same, in the best third of them (by final error)",
         *(_pair(draws["dips_best"], (9, 13), s) for s in ("drawn", "logged"))),
        (f"best {round(100 * cut['best'])} % of runs already in the best "
         f"{'third' if abs(cut['keep'] - 1 / 3) < 1e-9 else format(cut['keep'], '.2f')} at epoch 3",
         *(_pair(cut, (3,), s, 100.0, " %") for s in ("drawn", "logged"))),
        ("between-seed sd of final error, replicated configs",
         f"{noise['surrogate_sd']:.4f}", f"{noise['measured_sd']:.4f}"),
        ("the same, best third of the replicated learners",
         f"{best_third['surrogate_sd'][0]:.4f}", f"{best_third['measured_sd'][0]:.4f}"),
    ]
    lines = ["| quality card | drawn | logged |", "|---|---|---|"]
    lines += [f"| {label} | {drawn} | {logged} |" for label, drawn, logged in rows]
    return "\n".join(lines) + "\n"


def _at(entry: dict[str, Any], side: str, epoch: int) -> float | None:
    """``entry[side]`` at ``epoch`` (of ``entry["epochs"]``), or None where the card lacks it."""
    at = dict(zip(entry.get("epochs") or [], entry.get(side) or []))
    value = at.get(epoch)
    return None if value is None else float(value)


def _get(card: dict[str, Any], *path: str | int) -> Any:
    """``card[path[0]][path[1]]...``, or None where any step is missing."""
    for step in path:
        try:
            card = card[step]
        except (KeyError, IndexError, TypeError):
            return None
    return card


# (label, how to read it off a card, digits) of the held-out rows of format_comparison
_FIDELITY_ROWS = (
    ("final-epoch validation error, Kendall tau", lambda c: _get(c, "final_val_error", "kendall_tau"), 3),
    ("final-epoch validation error, R2", lambda c: _get(c, "final_val_error", "r2"), 3),
    ("final-epoch validation error, MAE", lambda c: _get(c, "final_val_error", "mae"), 4),
    ("all 25 epochs, Kendall tau", lambda c: _get(c, "all_epochs_val_error", "kendall_tau"), 3),
    ("best 20 % of configs, Kendall tau", lambda c: _get(c, "top20_final_val_error", "kendall_tau"), 3),
    ("learns vs stays at chance, AUC", lambda c: _get(c, "learns_vs_chance", "auc"), 3),
    ("surrogate vs a rerun, final epoch, Kendall tau",
     lambda c: _get(c, "noise_ceiling", "surrogate", "final_val_error", "kendall_tau"), 3),
    ("rerun vs rerun (the ceiling: the logs, not the fit)",
     lambda c: _get(c, "noise_ceiling", "rerun", "final_val_error", "kendall_tau"), 3),
    ("runtime of a 25-epoch run, R2 on log10 seconds", lambda c: _get(c, "runtime", "seconds", "r2"), 3),
)

_SD = {"drawn": "surrogate_sd", "logged": "measured_sd"}  # the seed-noise entries' names of the two sides
_FLIPS = {"drawn": "drawn", "logged": "measured"}


def _epoch_row(key: str, epoch: int):
    """A row read off ``draws[key]`` at ``epoch``, for either side."""
    return lambda c, side: _at(_get(c, "draws", key) or {}, side, epoch)


# (label, how to read it off a card for the side "drawn" or "logged", digits) of the drawn-against-logged
# rows of format_comparison: each a gap, nearer 0 is better
_GAP_ROWS = (
    ("between-seed sd of final error", lambda c, side: _get(c, "seed_noise", _SD[side]), 4),
    ("the same, best third of the replicated learners",
     lambda c, side: _get(c, "seed_noise", "by_final_error", _SD[side], 0), 4),
    ("replicated configs whose seeds disagree about learning (share)",
     lambda c, side: _share(_get(c, "draws", "flips", _FLIPS[side]), _get(c, "draws", "flips", "n_replicated")), 3),
    ("best 1 % of runs' validation error at epoch 3", _epoch_row("tails", 3), 3),
    ("the same at epoch 25", _epoch_row("tails", 25), 3),
    (f"learning runs that end > {DIP_MARGIN} worse than at epoch 13 (share)", _epoch_row("dips", 13), 3),
    ("the same at epoch 19", _epoch_row("dips", 19), 3),
    ("the same, best third of them, at epoch 13", _epoch_row("dips_best", 13), 3),
    ("best 5 % of runs in the best third at epoch 3 (share)", _epoch_row("early_cut", 3), 3),
)


def _share(count: Any, total: Any) -> float | None:
    return None if count is None or not total else float(count) / float(total)


def _signed(v: float | None, digits: int) -> str:
    return "n/a" if v is None else f"{v:+.{digits}f}"


def format_comparison(a: dict[str, Any], b: dict[str, Any], *, name_a: str = "A", name_b: str = "B",
                      markdown: bool = False) -> str:
    """Two surrogates' quality cards side by side (``a`` and ``b`` are manifests, e.g. the shipped
    surrogate and a refit on grown logs), for deciding whether a refit is worth publishing.

    Held-out rows (Kendall tau, R2, MAE, AUC, the noise ceiling, the clock's R2) show each card's
    value and ``b - a``. Drawn-against-logged rows (seed sd, flips, the best 1 %, dips, what an
    early cut keeps) show each card's gap, drawn minus logged, and ``|gap b| - |gap a|`` (negative:
    ``b``'s draws are nearer its logs). Each card was measured on its own logs: where the logs grew,
    part of a change is the new runs, not the refit; and a card moves a little with the seed of its
    folds alone (``surrobench fit --seed``), so compare a change with that before reading it as one.
    A row one card lacks (written by an older surrobench) shows ``n/a``.
    """
    qa, qb = a.get("quality") or {}, b.get("quality") or {}
    if not qa or not qb:
        raise ValueError(f"quality: {name_a if not qa else name_b} has no quality card")

    def logs(m: dict[str, Any], q: dict[str, Any]) -> str:
        runs = _get(m, "training_data", "n_runs") or q.get("n_runs")
        configs = _get(m, "training_data", "n_configs") or q.get("n_configs")
        return f"{runs} runs, {configs} configs, data sha256 {str(_get(m, 'training_data', 'sha256'))[:16]}"

    head = [f"A = {name_a}: {logs(a, qa)}", f"B = {name_b}: {logs(b, qb)}",
            "each card is measured on its own logs (5-fold CV grouped by config), and moves a little with the "
            "seed of its folds alone"]
    if _get(qa, "runtime", "device") != _get(qb, "runtime", "device"):
        head.append(f"clocks of different devices: A {_get(qa, 'runtime', 'device')}, B {_get(qb, 'runtime', 'device')}")
    rows = []
    for label, read, digits in _FIDELITY_ROWS:
        va, vb = read(qa), read(qb)
        delta = None if va is None or vb is None else vb - va
        rows.append((label, _fmt(va, digits), _fmt(vb, digits), _signed(delta, digits)))

    def gap(read, card: dict[str, Any]) -> float | None:
        drawn, logged = read(card, "drawn"), read(card, "logged")
        return None if drawn is None or logged is None else drawn - logged

    gaps = []
    for label, read, digits in _GAP_ROWS:
        ga, gb = gap(read, qa), gap(read, qb)
        delta = None if ga is None or gb is None else abs(gb) - abs(ga)
        gaps.append((label, _signed(ga, digits), _signed(gb, digits), _signed(delta, digits)))
    titles = ("held out (higher is better; MAE lower)", "B - A"), ("drawn - logged (nearer 0 is better)", "|B| - |A|")
    if markdown:
        lines = [f"- {h}" for h in head]
        for (title, change), table in zip(titles, (rows, gaps)):
            change = change.replace("|", "\\|")  # |B| - |A| inside a table cell
            lines += ["", f"| {title} | A | B | {change} |", "|---|---|---|---|"]
            lines += [f"| {' | '.join(r)} |" for r in table]
        return "\n".join(lines) + "\n"
    width = max(len(r[0]) for r in rows + gaps) + 2
    lines = list(head)
    for (title, change), table in zip(titles, (rows, gaps)):
        lines += ["", f"{title:<{width}}{'A':>9}{'B':>9}{change:>11}"]
        lines += [f"  {r[0]:<{width - 2}}{r[1]:>9}{r[2]:>9}{r[3]:>11}" for r in table]
    return "\n".join(lines) + "\n"


def parity_png(
    *, val: np.ndarray, oof: np.ndarray, learn: np.ndarray, rt_pred: np.ndarray, rt_true: np.ndarray, title: str
) -> bytes:
    """Predicted vs measured (final epoch, all epochs, runtime) as PNG bytes. No pyplot state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n_ep = val.shape[1]
    fig = Figure(figsize=(12, 4), dpi=90)
    FigureCanvasAgg(fig)
    ax1, ax2, ax3 = fig.subplots(1, 3)
    for mask, color, label in ((learn, "tab:blue", "learns"), (~learn, "tab:orange", "stays at chance")):
        ax1.scatter(val[mask, -1], oof[mask, n_ep - 1], s=12, alpha=0.7, color=color, label=label)
    ax1.set_title("final-epoch validation error")
    ax1.legend(loc="upper left", fontsize=8)
    ax2.scatter(val.ravel(), oof[:, :n_ep].ravel(), s=3, alpha=0.15, color="tab:blue")
    ax2.set_title("validation error, all epochs")
    for ax in (ax1, ax2):
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("measured")
        ax.set_ylabel("predicted (held-out configs)")
    if len(rt_true):
        ax3.scatter(rt_true, rt_pred, s=14, color="tab:green")
        lo = float(min(np.min(rt_true), np.min(rt_pred))) * 0.8
        hi = float(max(np.max(rt_true), np.max(rt_pred))) * 1.25
        ax3.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
        ax3.set_xscale("log")
        ax3.set_yscale("log")
    ax3.set_title("seconds of a 25-epoch run")
    ax3.set_xlabel("measured")
    ax3.set_ylabel("predicted (held-out configs)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
