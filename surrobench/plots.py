"""Plots of comparison results (PNG). The data behind each plot is computed apart from the drawing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import nemenyi_critical_difference, pareto_mask, ranks_over_time
from .space import HYPERPARAMETERS

__all__ = [
    "AGGREGATES",
    "hv_band_data",
    "first_progress",
    "HV_LABELS",
    "plot_hv_over_time",
    "plot_ranks_over_time",
    "plot_pareto_fronts",
    "plot_timeline",
    "draw_report",
    "plot_critical_difference",
    "plot_learning_curves",
    "plot_hv_side_by_side",
]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


AGGREGATES = {"median": "median over seeds, 25–75 % band", "mean": "mean over seeds ± standard error"}


def hv_band_data(hv: pd.DataFrame, column: str = "hv", *, aggregate: str = "median") -> pd.DataFrame:
    """Per (n_workers, optimizer, time), over seeds: a ``center`` line and a band ``low``..``high``.

    ``aggregate="median"``: the median and the 25 % and 75 % quantiles. ``"mean"``: the mean ± its
    standard error (the paper's figures); with a single seed the band is the line itself.
    """
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate: expected one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    g = hv.groupby(["n_workers", "optimizer", "time"])[column]
    if aggregate == "median":
        center, low, high = g.median(), g.quantile(0.25), g.quantile(0.75)
    else:
        center, se = g.mean(), g.sem().fillna(0.0)
        low, high = center - se, center + se
    return pd.DataFrame({"center": center, "low": low, "high": high}).reset_index()


HV_LABELS = {
    "hv": "hypervolume (val. error × decades)",
    "hv_max_fidelity": "hypervolume of full-fidelity points (val. error × decades)",
}


def first_progress(data: pd.DataFrame) -> float | None:
    """The first time (seconds) any curve of :func:`hv_band_data` leaves zero: the plots start
    there, not at the grid's first point, which precedes every finished job."""
    moving = data.loc[data["center"] > 0, "time"]
    return float(moving.min()) if len(moving) else None


def plot_hv_over_time(hv: pd.DataFrame, path: str | os.PathLike, *, column: str = "hv", title: str = "",
                      aggregate: str = "median") -> Path:
    """Hypervolume over simulated time (log axis), one panel per worker count; see :func:`hv_band_data`."""
    data = hv_band_data(hv, column, aggregate=aggregate)
    plt = _pyplot()
    workers = sorted(data["n_workers"].unique())
    fig, axes = plt.subplots(1, len(workers), figsize=(6.5 * len(workers), 4.5), squeeze=False, sharey=True)
    for ax, w in zip(axes[0], workers):
        for label, g in data[data["n_workers"] == w].groupby("optimizer", sort=True):
            t = g["time"].to_numpy() / 3600
            line = ax.plot(t, g["center"], label=label)[0]
            ax.fill_between(t, g["low"], g["high"], color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_xscale("log")
        ax.set_xlabel("simulated wall-clock time [h]")
        ax.set_title(f"{w} worker{'s' if w > 1 else ''}")
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes[0]:
        start = first_progress(data)
        if start is not None:
            ax.set_xlim(left=start / 3600)
    axes[0][0].set_ylabel(HV_LABELS.get(column, column))
    axes[0][-1].legend(loc="lower right", fontsize="small")
    fig.suptitle(f"{title} ({AGGREGATES[aggregate]})" if title else AGGREGATES[aggregate])
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_ranks_over_time(hv: pd.DataFrame, path: str | os.PathLike, *, alpha: float = 0.05) -> Path:
    """Mean rank of each optimizer's hypervolume over simulated time (1 = best, at the top), one panel
    per worker count (:func:`surrobench.metrics.ranks_over_time`); a bar of Nemenyi's critical
    difference for the panel's optimizers and seeds shows how far apart two lines must be before the
    seeds separate them (at any one time)."""
    data = ranks_over_time(hv)
    plt = _pyplot()
    workers = sorted(data["n_workers"].unique())
    fig, axes = plt.subplots(1, len(workers), figsize=(6.5 * len(workers) + 1.5, 4.5), squeeze=False)
    for ax, w in zip(axes[0], workers):
        cell = data[data["n_workers"] == w]
        for label, g in cell.groupby("optimizer", sort=True):
            ax.plot(g["time"].to_numpy() / 3600, g["rank"], label=label)
        k = cell["optimizer"].nunique()
        seeds = hv.loc[hv["n_workers"] == w].groupby("optimizer")["seed"].nunique().min()
        ax.set_xscale("log")
        ax.set_ylim(k + 0.5, 0.5)
        ax.set_xlabel("simulated wall-clock time [h]")
        ax.set_ylabel("mean rank over seeds (1 = best)")
        title = f"{w} worker{'s' if w > 1 else ''}"
        if k >= 2 and seeds >= 1:
            from matplotlib.transforms import blended_transform_factory

            cd = nemenyi_critical_difference(int(k), int(seeds), alpha)
            ax.errorbar([0.97], [0.6 + cd / 2], yerr=[[cd / 2], [cd / 2]], fmt="none", ecolor="black", capsize=4,
                        transform=blended_transform_factory(ax.transAxes, ax.transData))  # x in the panel, y in ranks
            title += f"; bar: Nemenyi critical difference {cd:.2f} ({seeds} seeds, \u03b1 = {alpha:g})"
        ax.set_title(title, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        start = first_progress(hv_band_data(hv[hv["n_workers"] == w]))
        if start is not None:
            ax.set_xlim(left=start / 3600)
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_pareto_fronts(runs: pd.DataFrame, path: str | os.PathLike, *, n_workers: int | None = None) -> Path:
    """Union over seeds of every optimizer's points; the union's non-dominated ones bold."""
    plt = _pyplot()
    if n_workers is None:
        n_workers = int(runs["n_workers"].min())
    df = runs[runs["n_workers"] == n_workers]
    labels = sorted(df["optimizer"].unique())
    cols = min(3, len(labels))
    rows = int(np.ceil(len(labels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.8 * rows), squeeze=False, sharex=True, sharey=True)
    for ax, label in zip(axes.ravel(), labels):
        pts = df.loc[df["optimizer"] == label, ["log10_params", "val_error"]].to_numpy()
        mask = pareto_mask(pts[:, ::-1]) if len(pts) else np.zeros(0, bool)
        ax.scatter(pts[~mask, 0], pts[~mask, 1], s=4, alpha=0.15, color="grey")
        front = pts[mask][np.argsort(pts[mask][:, 0])]
        ax.step(front[:, 0], front[:, 1], where="post", color="C0")
        ax.scatter(front[:, 0], front[:, 1], s=12, color="C0")
        ax.set_title(label)
        ax.grid(True, alpha=0.3)
    for ax in axes.ravel()[len(labels):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("log10 #parameters")
    for ax in axes[:, 0]:
        ax.set_ylabel("validation error")
    fig.suptitle(f"Pareto fronts, union over seeds ({n_workers} worker{'s' if n_workers > 1 else ''})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_timeline(runs: pd.DataFrame, path: str | os.PathLike, *, optimizer: str | None = None, seed=None,
                  n_workers: int | None = None, max_jobs: int = 400) -> Path:
    """Which worker ran which job when, for one run (the first ``max_jobs`` jobs)."""
    plt = _pyplot()
    n_workers = int(runs["n_workers"].max()) if n_workers is None else n_workers
    df = runs[runs["n_workers"] == n_workers]
    optimizer = optimizer or sorted(df["optimizer"].unique())[0]
    df = df[df["optimizer"] == optimizer]
    seed = df["seed"].min() if seed is None else seed
    df = df[df["seed"] == seed].sort_values("start")
    n_all = len(df)
    df = df.head(max_jobs)
    fig, ax = plt.subplots(figsize=(9, 0.35 * n_workers + 1.8))
    epochs = df["epoch"].to_numpy()
    cmap = plt.get_cmap("viridis")
    colors = cmap((epochs - epochs.min()) / max(np.ptp(epochs), 1)) if len(df) else []
    ax.barh(df["worker"], (df["end"] - df["start"]) / 3600, left=df["start"] / 3600, color=colors, edgecolor="white", linewidth=0.3)
    ax.set_xlabel("simulated time [h]")
    ax.set_ylabel("worker")
    shown = f"first {len(df)} of {n_all} jobs, " if n_all > len(df) else ""
    ax.set_title(f"{optimizer}, seed {seed}, {n_workers} workers ({shown}colour: epochs reached)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_critical_difference(test, path: str | os.PathLike, *, title: str = "") -> Path:
    """A critical-difference diagram (Demšar 2006) of a :class:`~surrobench.metrics.RankTest`: every
    optimizer at its mean rank (1 = best, on the left), the critical difference as a scale above,
    and a bar under each run of optimizers that the seeds do not separate."""
    plt = _pyplot()
    names = list(test.mean_ranks)
    k = len(names)
    left = names[: (k + 1) // 2]
    right = names[(k + 1) // 2:]
    bars = [g for g in test.groups if len(g) > 1]
    rows = max(len(left), len(right))
    fig, ax = plt.subplots(figsize=(7.5, 2.0 + 0.32 * rows + 0.12 * len(bars)))
    lo, hi = 1, max(k, 2)
    ax.set_xlim(lo - 0.5 - 0.6 * (hi - lo) / 4, hi + 0.5 + 0.6 * (hi - lo) / 4)
    ax.set_ylim(-(rows + 1.2), 1.6)
    ax.axis("off")
    ax.hlines(0, lo, hi, color="black", linewidth=1)
    for r in range(lo, hi + 1):
        ax.vlines(r, 0, 0.15, color="black", linewidth=1)
        ax.text(r, 0.25, str(r), ha="center", va="bottom", fontsize=9)
    if test.rejects:
        ax.hlines(1.05, lo, lo + test.critical_difference, color="black", linewidth=1.5)
        for x in (lo, lo + test.critical_difference):
            ax.vlines(x, 0.95, 1.15, color="black", linewidth=1.5)
        ax.text(lo + test.critical_difference / 2, 1.2, f"CD = {test.critical_difference:.2f}", ha="center",
                va="bottom", fontsize=9)
    for side, members in (("left", left), ("right", right)):
        for i, name in enumerate(members if side == "left" else members[::-1]):
            y = -(i + 1)
            x = test.mean_ranks[name]
            edge = ax.get_xlim()[0] + 0.1 if side == "left" else ax.get_xlim()[1] - 0.1
            ax.plot([x, x, edge], [0, y, y], color="black", linewidth=0.8)
            ax.text(edge, y + 0.08, f"{name} ({x:.1f})", ha="left" if side == "left" else "right", va="bottom",
                    fontsize=9)
    if test.control is not None and test.rejects:  # the interval the control's critical difference spans
        c = test.mean_ranks[test.control]
        bars = []
        ax.hlines(-0.3, max(lo, c - test.critical_difference), min(hi, c + test.critical_difference), color="C3",
                  linewidth=3)
        ax.plot([c], [-0.3], marker="o", color="C3")
    for j, group in enumerate(bars):
        y = -0.3 - 0.22 * j
        ax.hlines(y, test.mean_ranks[group[0]] - 0.05, test.mean_ranks[group[-1]] + 0.05, color="C3",
                  linewidth=3)
    what = "hypervolume" if test.column == "hv" else test.column
    workers = "" if test.n_workers is None else f", {test.n_workers} worker{'' if test.n_workers == 1 else 's'}"
    if test.control is None:
        how = f"a bar joins optimizers these seeds do not separate (Nemenyi, \u03b1 = {test.alpha:g})"
    else:
        how = (f"the bar: within the critical difference of {test.control}, not separated from it "
               f"(Bonferroni-Dunn, \u03b1 = {test.alpha:g})")
    fig.suptitle(title or f"mean rank of {what} over {test.n_seeds} seeds{workers}; Friedman p = {test.p_value:.2g}\n"
                 + (how if test.rejects else f"p \u2265 \u03b1 = {test.alpha:g}: these seeds separate none of them"),
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def draw_report(results, directory: str | os.PathLike, *, aggregate: str = "median",
                control: str | None = None) -> list[Path]:
    """All plots of a :class:`~surrobench.compare.Results` into ``directory`` (``aggregate``: how
    the hypervolume curves summarise the seeds, see :func:`hv_band_data`; ``control``: the
    critical-difference diagram tests that optimizer against each other one)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out = [
        plot_hv_over_time(results.hv, d / "hv_over_time.png", title="hypervolume, every evaluated point",
                          aggregate=aggregate),
        plot_hv_over_time(results.hv, d / "hv_over_time_max_fidelity.png", column="hv_max_fidelity",
                          title="hypervolume, full-fidelity points only", aggregate=aggregate),
        plot_ranks_over_time(results.hv, d / "ranks_over_time.png"),
        plot_pareto_fronts(results.runs, d / "pareto_fronts.png"),
        plot_timeline(results.runs, d / "timeline.png"),
    ]
    tests = results.rank_tests(control=control)
    for n_workers, test in tests.items():
        name = "critical_difference.png" if len(tests) == 1 else f"critical_difference_{n_workers}workers.png"
        out.append(plot_critical_difference(test, d / name))
    return out


def _writable(path: str | os.PathLike) -> Path:
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"plot: cannot write {path}: folder {parent} does not exist")
    if path.is_dir() or not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"plot: cannot write {path}: not a writable file path")
    return path


def plot_learning_curves(curves: pd.DataFrame, path: str | os.PathLike, *, color_by: str) -> Path:
    """Validation error over epochs, one line per run, coloured by ``color_by``; a panel per dataset.

    ``curves`` is a :func:`surrobench.logs.curve_sample` frame. Numeric hyperparameters get a
    colour bar (logarithmic where the space samples them on a log scale), categorical ones a
    legend; runs where the hyperparameter is inactive are grey.
    """
    hp = {h.name: h for h in HYPERPARAMETERS}.get(color_by)
    if hp is None:
        raise ValueError(f"color_by: unknown hyperparameter {color_by!r}")
    path = _writable(path)
    plt = _pyplot()
    from matplotlib.colors import LogNorm, Normalize

    datasets = sorted(curves["dataset"].unique()) or ["no runs"]
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets) + 1, 4.5), squeeze=False, sharey=True)
    cmap = plt.get_cmap("viridis")
    numeric = hp.kind != "cat"
    if numeric:
        norm = (LogNorm if hp.log else Normalize)(vmin=hp.lower, vmax=hp.upper)
        color_of = lambda v: cmap(norm(v))  # noqa: E731
    else:
        palette = {c: f"C{i}" for i, c in enumerate(hp.choices)}
        color_of = palette.__getitem__
    for ax, ds in zip(axes[0], datasets):
        sub = curves[curves["dataset"] == ds]
        for _, run in sub.groupby("key", sort=True):
            v = run["value"].iloc[0]
            inactive = v is None or (isinstance(v, float) and np.isnan(v))
            ax.plot(run["epoch"], run["val_error"], lw=0.8, alpha=0.35 if inactive else 0.6,
                    color="lightgrey" if inactive else color_of(v), zorder=1 if inactive else 2)
        ax.set_title(f"{ds} ({sub['key'].nunique()} runs)")
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("validation error")
    if numeric:
        sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
        fig.colorbar(sm, ax=axes[0].tolist(), label=color_by + (" (log scale)" if hp.log else ""))
    else:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color=palette[c], label=str(c)) for c in hp.choices]
        axes[0][-1].legend(handles=handles, title=color_by, loc="upper right", fontsize="small")
    grey = " (grey: inactive)" if curves["value"].isna().any() else ""
    fig.suptitle(f"validation error over epochs, coloured by {color_by}{grey}")
    try:
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise ValueError(f"plot: cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
    return path


def plot_hv_side_by_side(hv: pd.DataFrame, path: str | os.PathLike, *, panels: list[str], column: str = "hv",
                         title: str = "") -> Path:
    """Median hypervolume over time (25-75 % band), one panel per value of ``hv["side"]`` in ``panels``,
    shared axes, the same colour per optimizer on every panel (the validation study's figures)."""
    frame = hv.assign(n_workers=hv["side"].map({p: i for i, p in enumerate(panels)}))
    data = hv_band_data(frame[frame["n_workers"].notna()], column)
    plt = _pyplot()
    labels = sorted(data["optimizer"].unique())
    colors = {label: f"C{i % 10}" for i, label in enumerate(labels)}
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.5), squeeze=False, sharey=True, sharex=True)
    for i, (ax, panel) in enumerate(zip(axes[0], panels)):
        for label, g in data[data["n_workers"] == i].groupby("optimizer", sort=True):
            t = g["time"].to_numpy() / 3600
            ax.plot(t, g["center"], label=label, color=colors[label])
            ax.fill_between(t, g["low"], g["high"], color=colors[label], alpha=0.15, linewidth=0)
        ax.set_xscale("log")
        ax.set_xlabel("simulated wall-clock time [h]")
        ax.set_title(panel)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("hypervolume (val. error × decades)")
    axes[0][0].legend(loc="upper left", fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
