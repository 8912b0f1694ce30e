"""The ``surrobench`` command. The only place that configures logging, progress bars and back-ends.

Bad input exits with status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
import warnings

from . import __version__
from ._cli_args import (
    _duration,
    _duration_up_to,
    _fraction,
    _int_in,
    _int_list,
    _overhead,
    _positive_int,
    _Parser,
    _seed,
    _seed_list,
    _shard,
    _share_list,
)
from ._paths import check_writable_dir

NOISE_TIMES = ("epoch", "log-epoch", "log-epoch-early", "empirical", "bank", "bank-logged", "auto")  # surrobench.surrogate.noise.NOISE_TIMES (tested), kept
# here so that the CLI starts without numpy
NOISE_SIZES = ("shared", "by-error", "by-level")  # surrobench.surrogate.noise.NOISE_SIZES (tested)
DEFAULT_NOISE_TIME = "auto"  # surrobench.surrogate.noise.DEFAULT_NOISE_TIME (tested)
CONFIG_NOISES = ("none", "unexplained")  # surrobench.surrogate.noise.CONFIG_NOISES (tested)

logger = logging.getLogger("surrobench")

# a second SIGINT/SIGTERM within this long of the first is the same signal delivered twice
SIGNAL_ECHO_SECONDS = 0.5

CONTROL_HELP = ("an optimizer to test against each other one (Bonferroni-Dunn's critical difference, smaller than "
                "Nemenyi's for all pairs): is it ahead of or behind each, as far as the seeds can tell")
AGGREGATE_HELP = ("how the hypervolume plots summarise the seeds: median with a 25-75%% band (default) "
                  "or mean with a band of one standard error (the paper's figures)")


OPTIMIZERS_HELP = ("comma-separated names (default: all); see --list. LABEL=NAME runs NAME under LABEL, so that one "
                   "optimizer can run twice with other settings (--set)")
SET_HELP = ("an optimizer's setting, LABEL.KEY=VALUE (repeatable; VALUE in JSON, e.g. 250, 0.5, true, [8,32], or a "
            "plain word): e.g. --set ehvi.max_gp_points=250; --list shows each optimizer's settings")
_LABEL_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def optimizer_specs(text: str | None, assignments: list[str] | None = None):
    """``--optimizers`` and ``--set`` as :func:`surrobench.compare.resolve_optimizers` takes them:
    ``None`` (all) or a list of names where neither a label nor a setting is given, else
    ``{label: (name, settings)}``. A bad item is a one-line ``ValueError``; the names and the
    settings themselves are checked by ``compare`` and ``validate``.

    >>> optimizer_specs("ehvi,cheap=ehvi", ["cheap.max_gp_points=250", "cheap.at_cap=[8, 32]"])
    {'ehvi': ('ehvi', {}), 'cheap': ('ehvi', {'max_gp_points': 250, 'at_cap': [8, 32]})}
    """
    import json

    items = None if text is None else [o.strip() for o in text.split(",") if o.strip()]
    if items is not None and not items:
        raise ValueError(f"--optimizers: expected comma-separated optimizer names (see --list), got {text!r}")
    specs: dict[str, tuple[str, dict]] = {}
    for item in items or []:
        label, _, name = (part.strip() for part in item.partition("=")) if "=" in item else (item, "", item)
        if "=" in item and (not label or not set(label) <= _LABEL_CHARS or not name):
            raise ValueError(f"--optimizers: {item!r} is not LABEL=NAME (a label of letters, digits, '-' and '_')")
        if label in specs:
            raise ValueError(f"--optimizers: {label!r} is given twice (LABEL=NAME runs an optimizer again under "
                             "another label)")
        specs[label] = (name, {})
    assignments = list(assignments or [])
    if not assignments and all(label == name for label, (name, _) in specs.items()):
        return None if items is None else list(specs)  # names alone (NAME=NAME is NAME), or None for all
    if items is None:
        from .optimizers import OPTIMIZERS

        specs = {name: (name, {}) for name in OPTIMIZERS}
    for text_item in assignments:
        target, eq, raw = text_item.partition("=")
        label, dot, key = target.strip().partition(".")
        if not eq or not dot or not label or not key.strip():
            raise ValueError(f"--set: expected LABEL.KEY=VALUE, e.g. ehvi.max_gp_points=250; got {text_item!r}")
        if label not in specs:
            raise ValueError(f"--set {text_item!r}: no optimizer labelled {label!r} is compared "
                             f"({', '.join(specs)})")
        key, raw = key.strip(), raw.strip()
        settings = specs[label][1]
        if key in settings:
            raise ValueError(f"--set: {label}.{key} is given twice")
        try:
            settings[key] = json.loads(raw)
        except ValueError:
            settings[key] = raw  # a plain word, e.g. schedule=auto
    return specs


def _settings_lines(cls, width: int = 100) -> list[str]:
    """``--list``: an optimizer's settings with their defaults, wrapped, indented under its name."""
    import textwrap

    from .optimizers import settings_of

    settings = settings_of(cls)
    if not settings:
        return []
    text = "settings: " + ", ".join(f"{k}={v!r}" for k, v in settings.items())
    return textwrap.wrap(text, width=width, initial_indent=" " * 15, subsequent_indent=" " * 25)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="surrobench", description="Cheap, honest comparisons of multi-objective optimizers for joint NAS + HPO: "
                                                       "collect ground truth, fit surrogates, compare optimizers on a simulated clock.")
    p.add_argument("--version", action="version", version=f"surrobench {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("collect", help="train configs of a seeded plan for real and log their learning curves")
    c.add_argument("--dataset", default="digits", choices=["digits", "flowers17", "fashion_mnist"])
    c.add_argument("--data-dir", help="directory with the dataset's files (flowers17: x_*.npy/y_*.npy)")
    c.add_argument("--out", default="training_logs", help="logs root; runs go to OUT/DATASET/ (default: %(default)s)")
    c.add_argument("--plan-seed", type=_seed, default=0, help="seed of the plan: config k is the same everywhere")
    target = c.add_mutually_exclusive_group()
    target.add_argument("--plan-from", metavar="RESULTS",
                        help="a targeted plan: configs where the optimizers of this compare results folder went "
                             "(final Pareto fronts and late trials), a seeded sample of --n-configs")
    target.add_argument("--plan-uncertain", metavar="LOGS",
                        help="a targeted plan: the --n-configs configs of a seeded pool on which surrogates fitted "
                             "on bootstrap resamples of these logs disagree most")
    c.add_argument("--n-configs", type=_int_in(1, "n_configs"), default=30, help="configs in the plan (at most 100000)")
    c.add_argument("--epochs", type=_positive_int, default=25)
    c.add_argument("--shard", type=_shard, default=(0, 1), help="i/n: this machine's share of the plan")
    c.add_argument("--replicate-fraction", type=_fraction, default=0.1, help="share of configs trained with several seeds")
    c.add_argument("--replicates", type=_int_in(1, "replicates"), default=3, help="seeds per replicated config")
    c.add_argument(
        "--retime-fraction", type=_fraction, default=None,
        help="share of configs re-run alone on their device when jobs share it (default 0.03)",
    )
    c.add_argument("--jobs", type=_int_in(1, "jobs"), default=1,
                   help="parallel training jobs, at most 256 (several per GPU pay off)")
    c.add_argument("--threads", type=_int_in(1, "threads"), default=1, help="torch threads per job (default 1)")
    c.add_argument("--device", help="cpu, cuda, cuda:1 or mps (default: CUDA, then MPS, then CPU)")
    c.add_argument("--backend", default="loky", choices=["loky", "threading", "multiprocessing", "dask", "ray"])
    c.add_argument("--scheduler", help="dask scheduler address (with --backend dask); a local cluster otherwise")
    c.add_argument("--time-limit", type=_duration, help="start nothing new after this long (e.g. 45m); running jobs finish")
    c.add_argument("--no-progress", action="store_true")
    c.add_argument("--dry-run", action="store_true",
                   help="list the runs this command would start, in its order, and train nothing (no torch needed)")
    c.add_argument("--clock", metavar="SURROGATE",
                   help="with --dry-run: predict each run's seconds on this surrogate's clock, a shipped name "
                        "(flowers17-cpu) or a path")

    lg = sub.add_parser("logs", help="summarise training logs: counts by dataset, device and status, coverage")
    lg.add_argument("path", nargs="?", default="training_logs")
    lg.add_argument("--plot", metavar="PNG", help="also draw a sample of validation-error curves to this file")
    lg.add_argument("--color-by", default="lr_init", metavar="HP",
                    help="hyperparameter that colours the curves (default: %(default)s)")
    lg.add_argument("--sample", type=_int_in(1, "sample"), default=200, help="curves per dataset (default: %(default)s)")
    lg.add_argument("--seed", type=_seed, default=0, help="seed of the curve sample (default: %(default)s)")

    cp = sub.add_parser("compare", help="compare optimizers on a benchmark on a simulated wall-clock")
    cp.add_argument("--benchmark", help="surrogate directory or archive (default: the shipped flowers17 surrogate)")
    cp.add_argument("--optimizers", help=OPTIMIZERS_HELP)
    cp.add_argument("--set", action="append", metavar="LABEL.KEY=VALUE", help=SET_HELP)
    cp.add_argument("--list", action="store_true", help="list the available optimizers and their settings, and exit")
    cp.add_argument("--seeds", type=_int_in(1, "seeds"), default=10,
                    help="number of seeds, 0..N-1, at most 1000 (default: %(default)s)")
    cp.add_argument("--workers", type=_int_list, default=[1], help="worker counts, each at most 1024, e.g. 1,8 (default: 1)")
    cp.add_argument("--budget", type=_duration_up_to("budget"), default=None,
                    help="simulated time per run, e.g. 24h, at most 30d (default: 24h)")
    cp.add_argument("--evaluations", type=_int_in(1, "evaluations"),
                    help="a budget in jobs instead of (or besides) time, at most 100000")
    cp.add_argument("--overhead", type=_overhead, default="none",
                    help="optimizer time charged: none (default), measured, or a fixed number of seconds per decision")
    cp.add_argument("--jobs", type=_int_in(1, "jobs"), default=1,
                    help="runs in parallel (joblib), at most 256; never more than runs, nor than CPUs for processes")
    cp.add_argument("--backend", default="loky", choices=["loky", "threading", "multiprocessing", "dask", "ray"])
    cp.add_argument("--scheduler", help="dask scheduler address (with --backend dask)")
    cp.add_argument("--out", default="results", help="results directory (default: %(default)s)")
    cp.add_argument("--resume", action="store_true",
                    help="reuse the runs an earlier or interrupted compare with the same settings stored in OUT/cells")
    cp.add_argument("--no-plots", action="store_true")
    cp.add_argument("--aggregate", choices=["median", "mean"], default="median", help=AGGREGATE_HELP)
    cp.add_argument("--control", help=CONTROL_HELP)
    cp.add_argument("--no-progress", action="store_true")

    va = sub.add_parser("validate", help="does the surrogate rank optimizers as the logged runs do? (real vs surrogate)")
    va.add_argument("logs", nargs="?",
                    help="logs file or directory (default: training_logs/DATASET, the shipped runs; "
                         "DATASET is --dataset or flowers17)")
    va.add_argument("--dataset", help="dataset of the runs to use (default: the one the logs hold)")
    va.add_argument("--optimizers", help=OPTIMIZERS_HELP.replace("(default: all); see --list", "(default: all nine); "
                                                                 "see surrobench compare --list"))
    va.add_argument("--set", action="append", metavar="LABEL.KEY=VALUE", help=SET_HELP.replace("--list", "compare --list"))
    va.add_argument("--seeds", type=_int_in(1, "seeds"), default=None,
                    help="number of seeds, 0..N-1 (default: 20; --quick: 8)")
    va.add_argument("--budget", type=_share_list, default=None,
                    help="budgets as shares of the logged configs, e.g. 0.02,0.05,0.1,0.2 (the default; --quick: 0.05)")
    va.add_argument("--folds", type=_int_in(5), default=5, help="K of the grouped K-fold, at least 5 (default: 5)")
    va.add_argument("--sides", default=None,
                    help="comma-separated sides to run (default: real, oof, insample, real_times, oof_times, "
                         "half_a, half_b; also known: oof_redraw, the draw ceiling); e.g. real,oof for the "
                         "headline alone, real,oof,oof_redraw for the headline and its draw ceiling")
    va.add_argument("--grid", choices=["default", "quick"], default=None,
                    help="tuning grid of every fitted surrogate (default: default; --quick: quick)")
    va.add_argument("--noise-time", default=DEFAULT_NOISE_TIME, choices=NOISE_TIMES,
                    help="the seed noise's process in every fitted surrogate (default: %(default)s: the shipped "
                         "surrogates' bank where the logs' reruns allow it; see surrobench fit)")
    va.add_argument("--noise-size", default="shared", choices=NOISE_SIZES,
                    help="the seed noise's size in every fitted surrogate (default: shared; see surrobench fit)")
    va.add_argument("--config-noise", default="none", choices=CONFIG_NOISES,
                    help="whether every fitted surrogate's draws add an offset per config for what its models leave "
                         "unexplained (default: none; see surrobench fit)")
    va.add_argument("--quick", action="store_true", help="a look in minutes: 8 seeds, one 5%% budget, the quick grid")
    va.add_argument("--jobs", type=_int_in(1, "jobs"), default=1, help="runs in parallel (joblib)")
    va.add_argument("--out", default="validation", help="results directory (default: %(default)s)")
    va.add_argument("--resume", action="store_true",
                    help="reuse the runs an earlier or interrupted validate with the same settings and logs stored "
                         "in OUT/cells")
    va.add_argument("--no-plots", action="store_true")
    va.add_argument("--no-progress", action="store_true")

    rp = sub.add_parser("report", help="print the table and redraw the plots of stored comparison results")
    rp.add_argument("path", help="a results directory written by surrobench compare")
    rp.add_argument("--no-plots", action="store_true")
    rp.add_argument("--markdown", action="store_true",
                    help="print the summary table as markdown and stop (reads metadata.json and final only)")
    rp.add_argument("--aggregate", choices=["median", "mean"], default="median", help=AGGREGATE_HELP)
    rp.add_argument("--control", help=CONTROL_HELP)

    f = sub.add_parser(
        "fit",
        help="fit a surrogate from training logs, judge it on held-out configs, write its directory",
        description=(
            "Fit the XGBoost surrogate of one dataset from a logs directory and write the surrogate directory. "
            "Refit a shipped default after its logs grew: "
            "surrobench fit training_logs/flowers17 --force --publish data"
        ),
    )
    f.add_argument("logs", help="logs file or directory (e.g. training_logs/flowers17)")
    f.add_argument("--dataset", choices=["digits", "flowers17", "fashion_mnist"], help="needed if the logs hold several")
    f.add_argument("--out", help="surrogate directory to write (default: build/surrogates/NAME)")
    f.add_argument("--name", help="surrogate name (default: DATASET-surrogate)")
    f.add_argument("--device", help="whose clock the runtime model learns (default: the device with most lone runs)")
    f.add_argument("--seed", type=_seed, default=0, help="seed of the folds and of XGBoost (default: %(default)s)")
    f.add_argument("--holdout", type=_fraction, default=0.2,
                   help="share of configs held out per cross-validation fold (default: %(default)s, five folds)")
    f.add_argument("--grid", default="default", choices=["default", "quick"], help="XGBoost hyperparameter grid")
    f.add_argument("--clock-plans", type=_seed_list, metavar="S,S",
                   help="fit the clock on the lone runs of these plan seeds only (default: every lone run)")
    f.add_argument("--noise-time", default=DEFAULT_NOISE_TIME, choices=NOISE_TIMES,
                   help="the seed noise's process: the replicated runs' residual curves themselves, each draw a "
                        "run of a config whose logged mean curve is near the draw's curve after the tail map "
                        "(bank-logged, the shipped surrogates'; with --noise-size shared only) or whose predicted "
                        "curve is near its own (bank; shared only), their measured covariance between epochs (empirical), the "
                        "wobble over epochs (epoch), over log epochs with a per-epoch jitter (log-epoch), that plus "
                        "a larger independent noise in the first epochs (log-epoch-early), or (auto, the default) "
                        "bank-logged, or empirical with a size by config, where the reruns in the logs can measure a "
                        "covariance between epochs, else epoch; see docs/surrogates.md")
    f.add_argument("--noise-size", default="shared", choices=NOISE_SIZES,
                   help="the seed noise's size: one for every config (shared, the default), or one that follows "
                        "the config's final error e as the replicated runs' does, through e(1-e) (by-error) or e "
                        "itself (by-level; see docs/surrogates.md)")
    f.add_argument("--config-noise", default="none", choices=CONFIG_NOISES,
                   help="unexplained: every draw also adds an offset curve of its config alone (the same for every "
                        "seed), sized by what the out-of-fold predictions leave unexplained beyond the seed noise "
                        "(apart for configs better and worse than predicted, halved), with the tail map fitted to "
                        "match; none (the default): the seed noise alone, the draws' "
                        "order of configs the prediction's (see docs/surrogates.md)")
    f.add_argument("--force", action="store_true", help="replace an existing surrogate directory")
    f.add_argument("--publish", metavar="DIR", help="also publish NAME.tar.gz and NAME.tar.gz.sha256 into DIR")

    cal = sub.add_parser(
        "calibrate",
        help="give a surrogate the clock of this machine: train a few configs alone here, fit the device's clock",
        description=(
            "Train a seeded set of configs that span the work range alone on this device (or use lone runs already "
            "logged, --no-train), fit the device's clock and write a surrogate with the base surrogate's curves and "
            "this clock: surrobench calibrate --data-dir DIR --publish data"
        ),
    )
    cal.add_argument("--dataset", default="flowers17", choices=["digits", "flowers17", "fashion_mnist"])
    cal.add_argument("--data-dir", help="directory with the dataset's files (flowers17: x_*.npy/y_*.npy)")
    cal.add_argument("--base", help="surrogate whose curves to keep (default: the shipped one of the dataset)")
    cal.add_argument("--n-configs", type=_positive_int, default=12,
                     help="configs to train alone (default: %(default)s; at least 5)")
    cal.add_argument("--configs", metavar="JSON", help="train these configs (a JSON list) instead of the spanning set")
    cal.add_argument("--epochs", type=_positive_int, default=2, help="epochs per config (default: %(default)s)")
    cal.add_argument("--seed", type=_seed, default=0, help="seed of the calibration plan (default: %(default)s)")
    cal.add_argument("--device", help="cpu, cuda, cuda:1 or mps (default: CUDA, then MPS, then CPU)")
    cal.add_argument("--threads", type=_int_in(1, "threads"), default=1, help="torch threads (default 1)")
    cal.add_argument("--logs", default="training_logs", help="logs root; runs go to LOGS/DATASET/ (default: %(default)s)")
    cal.add_argument("--no-train", action="store_true",
                     help="train nothing: fit the clock on the calibration runs already logged")
    cal.add_argument("--plans", type=_seed_list, metavar="S,S",
                     help="train nothing: fit the clock on the lone runs of these collection plans instead")
    cal.add_argument("--name", help="surrogate name (default: DATASET-DEVICEKIND-surrogate, e.g. flowers17-cpu-surrogate)")
    cal.add_argument("--out", help="surrogate directory to write (default: build/surrogates/NAME)")
    cal.add_argument("--force", action="store_true", help="replace an existing surrogate directory")
    cal.add_argument("--publish", metavar="DIR", help="also publish NAME.tar.gz and NAME.tar.gz.sha256 into DIR")
    cal.add_argument("--no-progress", action="store_true")

    q = sub.add_parser("quality", help="verify a surrogate directory or archive and print its quality card")
    q.add_argument("path", nargs="?", default="flowers17",
                   help="surrogate directory, .tar.gz archive or shipped name (default: %(default)s)")
    q.add_argument("--json", action="store_true", help="print the card as JSON")
    q.add_argument("--markdown", action="store_true",
                   help="print only the rows that compare drawn runs with logged ones, as a markdown table")
    q.add_argument("--parity", metavar="PNG", help="also write the parity plot (predicted vs measured) to this file")
    q.add_argument("--against", metavar="SURROGATE",
                   help="print this card beside another surrogate's (a path or a shipped name): is a refit on "
                        "grown logs worth publishing? (with --markdown: as markdown tables)")

    pb = sub.add_parser("publish", help="verify a surrogate directory and pack it as NAME.tar.gz plus NAME.tar.gz.sha256")
    pb.add_argument("directory")
    pb.add_argument("--out-dir", help="where the archive goes (default: beside the directory)")
    return p


def _epochs_ok(value: int) -> int:
    from .space import validate_epoch

    return validate_epoch(value, name="--epochs")


def _setup_backend(args):
    """Connect the parallel back-end; returns (context to run in, back-end name to give joblib).

    dask and ray run inside joblib's ``parallel_config`` (joblib 1.6's ``Parallel(backend="dask")``
    hands its own arguments to the tasks), so joblib is given no name for them."""
    import contextlib

    if args.backend == "dask":
        try:
            from dask.distributed import Client
        except ImportError:
            raise ValueError("--backend dask needs dask.distributed: pip install 'surrobench[dask]'") from None
        args._client = Client(args.scheduler) if args.scheduler else Client(processes=True)
    elif args.backend == "ray":
        try:
            from ray.util.joblib import register_ray
        except ImportError:
            raise ValueError("--backend ray needs ray: pip install 'surrobench[ray]'") from None
        register_ray()
    elif args.scheduler:
        raise ValueError("--scheduler is only used with --backend dask")
    if args.backend in ("dask", "ray"):
        from joblib import parallel_config

        return parallel_config(backend=args.backend), None
    return contextlib.nullcontext(), args.backend


def cmd_collect(args) -> int:
    if args.clock and not args.dry_run:
        raise ValueError("--clock: predicts the runs of --dry-run; give both")
    if args.dry_run:
        return _collect_dry_run(args)
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ValueError("collect needs torch: pip install 'surrobench[train]'") from None
    from .training.collect import collect

    _epochs_ok(args.epochs)
    if args.device is not None and args.backend in ("loky", "threading", "multiprocessing"):  # the runs' machine
        from .training import choose_device

        choose_device(args.device)  # a bad or absent device: one line before any output folder or run
    items = _targeted_items(args)
    context, backend = _setup_backend(args)
    from tqdm.auto import tqdm

    stop = threading.Event()
    first_signal = []

    def request_stop(signum, frame):
        # `timeout` and a group kill deliver one signal twice at once (to the process and to its
        # group): only a second signal that comes a moment later is a request to abort.
        if stop.is_set():
            if time.monotonic() - first_signal[0] < SIGNAL_ECHO_SECONDS:
                return
            raise KeyboardInterrupt
        first_signal.append(time.monotonic())
        stop.set()
        print("surrobench collect: stopping after the running jobs (signal again to abort)", file=sys.stderr)

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    bar = None

    def on_plan(n):
        nonlocal bar
        bar = tqdm(total=n, unit="run", disable=args.no_progress, desc=f"collect {args.dataset}")

    def on_record(record, summary):
        bar.update(1)
        bar.set_postfix_str(f"{record['status']} {record['config_id']}", refresh=False)

    try:
        with context:
            summary = collect(
                args.dataset,
                out_dir=args.out,
                plan_seed=args.plan_seed,
                n_configs=args.n_configs,
                epochs=args.epochs,
                shard=args.shard,
                replicate_fraction=args.replicate_fraction,
                n_replicates=args.replicates,
                retime_fraction=args.retime_fraction,
                n_jobs=args.jobs,
                backend=backend,
                device=args.device,
                threads=args.threads,
                data_dir=args.data_dir,
                time_limit=args.time_limit,
                stop=stop,
                on_record=on_record,
                on_plan=on_plan,
                items=items,
            )
    finally:
        if bar is not None:
            bar.close()
        for sig, handler in previous.items():  # called in-process (a notebook, a test): the caller's handlers back
            signal.signal(sig, handler)
    print(summary.line())
    return 0


def _collect_dry_run(args) -> int:
    """``collect --dry-run``: the runs the command would start, in its order, each with its
    parameters and batch size and, with ``--clock``, its predicted seconds on that clock."""
    from .datasets import info as dataset_info
    from .model_size import n_params
    from .training.collect import pending_runs

    _epochs_ok(args.epochs)
    bench = None
    if args.clock:
        from .benchmark import SurrogateBenchmark, resolve_surrogate

        bench = SurrogateBenchmark(resolve_surrogate(args.clock), noise=False)
        if bench.dataset != args.dataset:
            raise ValueError(f"--clock: {args.clock!r} is a surrogate of {bench.dataset}, not of {args.dataset}")
    todo, planned, name = pending_runs(
        args.dataset, out_dir=args.out, plan_seed=args.plan_seed, n_configs=args.n_configs, epochs=args.epochs,
        shard=args.shard, replicate_fraction=args.replicate_fraction, n_replicates=args.replicates,
        retime_fraction=args.retime_fraction, n_jobs=args.jobs, device=args.device, items=_targeted_items(args))
    print(f"{name}: {planned} runs, {planned - len(todo)} logged, {len(todo)} to run")
    if bench is not None:
        device = bench.surrogate.manifest["devices"]["runtime_clock"]
        print(f"predicted on the clock of {bench.surrogate.name} ({device}): {args.epochs} epochs, an evaluation "
              "after each; the clock learned from runs that had the device alone")
    info = dataset_info(args.dataset)
    shape, classes = tuple(info.input_shape), info.n_classes
    head = f"{'run':<44} {'params':>12} {'batch':>6}"
    print(head + (f" {'seconds':>9} {'cumulative':>11}" if bench is not None else ""))
    total, longest = 0.0, (0.0, None)
    for item in todo:
        key = item.key(args.dataset, args.epochs)
        line = f"{key:<44} {n_params(item.config, shape, classes):>12,} {item.config['batch_size']:>6}"
        if bench is not None:
            curve = bench.trajectory(item.config)[: args.epochs]
            seconds = curve[-1].train_time + sum(r.eval_time for r in curve)
            total += seconds
            longest = max(longest, (seconds, key), key=lambda t: t[0])
            line += f" {seconds:>9.2f} {total:>11.1f}"
        print(line)
    if bench is not None and todo:
        print(f"predicted: {_span(total)} for the {len(todo)} runs one at a time; the longest, {longest[1]}, "
              f"{_span(longest[0])}")
    return 0


def _span(seconds: float) -> str:
    """Seconds as ``1 h 5 min``, ``12 min`` or ``45 s``."""
    if seconds >= 3600:
        hours, rest = divmod(round(seconds / 60), 60)
        return f"{hours} h {rest} min"
    return f"{round(seconds / 60)} min" if seconds >= 60 else f"{seconds:.0f} s"


def _targeted_items(args):
    """The runs of a targeted plan (``--plan-from`` / ``--plan-uncertain``), or None."""
    from .training.collect import seeded_items

    replicates = {"replicate_fraction": args.replicate_fraction, "n_replicates": args.replicates}
    if args.plan_from:
        from .plans import configs_from_results

        configs = configs_from_results(args.plan_from, args.n_configs, args.plan_seed)
        return seeded_items("optimizers", args.plan_seed, configs, source=str(args.plan_from), **replicates)
    if args.plan_uncertain:
        from .plans import uncertain_configs

        configs = uncertain_configs(args.plan_uncertain, args.n_configs, args.plan_seed, dataset=args.dataset)
        return seeded_items("uncertain", args.plan_seed, configs, source=str(args.plan_uncertain), **replicates)
    return None


def cmd_logs(args) -> int:
    from .logs import curve_sample, format_summary, summarize

    if args.plot:
        from .plots import plot_learning_curves

        curves = curve_sample(args.path, color_by=args.color_by, n=args.sample, seed=args.seed)
        plot_learning_curves(curves, args.plot, color_by=args.color_by)
    print(format_summary(summarize(args.path)))
    if args.plot:
        print(f"learning curves of {curves['key'].nunique()} runs: {args.plot}")
    return 0


def _print_summary(results, control: str | None = None) -> None:
    import pandas as pd

    from .compare import rank_test_lines, settings_line, simulated

    table = results.summary()
    budget = results.metadata.get("budget", {})
    what = []
    if budget.get("seconds"):
        what.append(simulated(float(budget["seconds"])))
    if budget.get("evaluations"):
        what.append(f"{budget['evaluations']} evaluations")
    seeds = int(table["seeds"].max())
    print(f"hypervolume at the budget ({' / '.join(what)}; reference point {results.metadata.get('reference_point')}; "
          f"median over {seeds} seed{'' if seeds == 1 else 's'}):")
    shown = table.drop(columns="seeds")
    formats = {c: "{:.4f}".format for c in shown.columns if c not in ("mean_rank", "jobs")}
    formats.update(mean_rank="{:.2f}".format, jobs="{:,.0f}".format)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(shown.to_string(formatters=formats))
    for line in rank_test_lines(results, control=control):
        print(line)
    named = settings_line(results.metadata)
    if named:
        print(named)


def cmd_compare(args) -> int:
    from .compare import compare, write_results
    from .optimizers import OPTIMIZERS
    from .simulator import Budget

    if args.list:
        for name, cls in OPTIMIZERS.items():
            print(f"{name:<14} {(cls.__doc__ or '').strip().splitlines()[0]}")
            for line in _settings_lines(cls):
                print(line)
        from .bridges.optuna import describe

        for name, line in describe().items():
            print(f"{name:<14} {line}")
        return 0
    names = optimizer_specs(args.optimizers, args.set)
    seconds = args.budget if args.budget is not None or args.evaluations else 24 * 3600.0
    budget = Budget(seconds=seconds, evaluations=args.evaluations)
    if args.control is not None:
        from .compare import resolve_optimizers

        compared = list(resolve_optimizers(names))
        if args.control not in compared:
            raise ValueError(f"--control: {args.control!r} is not among the optimizers compared ({', '.join(compared)})")
    check_writable_dir(args.out, "out")  # before the runs, not after them
    context, backend = _setup_backend(args)
    from tqdm.auto import tqdm

    from .compare import check_settings, load_benchmark, resolve_optimizers

    opts = resolve_optimizers(names)
    labels = list(opts)
    n_cells = len(labels) * args.seeds * len(args.workers)
    bench = load_benchmark(args.benchmark)  # a bad surrogate fails here, before the progress bar (compare reuses it)
    check_settings(opts, bench.problem(n_workers=args.workers[0], budget=budget))  # so does a bad --set
    cells_dir = os.path.join(args.out, "cells")
    try:
        with context, tqdm(total=n_cells, unit="run", disable=args.no_progress, desc="compare",
                           bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]") as bar:
            eta = RunCostEstimate(labels, args.seeds * len(args.workers), args.jobs)

            def on_run(label, seed, n_workers, seconds):
                eta.finished(label, seconds)
                bar.set_postfix_str(eta.describe(), refresh=False)
                bar.update(1)

            def on_time(label, seed, n_workers, simulated):
                bar.set_postfix_str(f"{eta.describe()}; {label} seed {seed}: {simulated / 3600:.1f} h simulated")

            results = compare(
                args.benchmark, names, seeds=range(args.seeds), n_workers=args.workers, budget=budget,
                overhead=args.overhead, n_jobs=args.jobs, backend=backend, on_run=on_run, on_time=on_time,
                cells_dir=cells_dir, resume=args.resume,
            )
    except KeyboardInterrupt:
        print(f"surrobench compare: interrupted; the finished runs are kept in {cells_dir}: "
              "the same command with --resume goes on from there", file=sys.stderr)
        return 130
    out = write_results(results, args.out, n_jobs=args.jobs)
    _print_summary(results, args.control)
    if not args.no_plots:
        from .plots import draw_report

        draw_report(results, out, aggregate=args.aggregate, control=args.control)
    print(f"results and plots in {out}/")
    return 0


class RunCostEstimate:
    """Time left in a comparison, weighting the runs still to come by their expected cost.

    An optimizer's expected run is the mean of its finished runs; before one has finished, its
    :data:`surrobench.compare.PRIOR_RUN_COST` (the median prior for an unknown name) times the
    median ratio of measured to prior cost over the optimizers measured so far. The sum over the
    runs left is divided by the parallel jobs, but is never less than the costliest run left (a run
    is not split between jobs: at the end one long run can keep the others waiting). Nothing is
    estimated before the first run finishes.
    """

    def __init__(self, labels, runs_each: int, n_jobs: int):
        self.left = {label: runs_each for label in labels}
        self.seconds: dict[str, list[float]] = {label: [] for label in labels}
        self.n_jobs = max(1, int(n_jobs))
        from .compare import _prior_cost

        self.prior = {label: _prior_cost(label) for label in labels}

    def finished(self, label: str, seconds: float | None) -> None:
        self.left[label] = max(0, self.left.get(label, 0) - 1)
        if seconds is not None:
            self.seconds.setdefault(label, []).append(float(seconds))

    def remaining(self) -> float | None:
        """Seconds left, or None before any run was measured."""
        ratios = sorted(sum(v) / len(v) / self.prior[k] for k, v in self.seconds.items() if v)
        if not ratios:
            return None
        scale = ratios[len(ratios) // 2]
        each = {k: sum(self.seconds[k]) / len(self.seconds[k]) if self.seconds.get(k) else self.prior[k] * scale
                for k, n in self.left.items() if n > 0}
        if not each:
            return 0.0
        return max(sum(self.left[k] * c for k, c in each.items()) / self.n_jobs, max(each.values()))

    def describe(self) -> str:
        left = self.remaining()
        if left is None:
            return "time left: after the first run"
        return f"about {left / 60:.0f} min left" if left >= 90 else f"about {left:.0f} s left"


def cmd_validate(args) -> int:
    from .compare import resolve_optimizers
    from .validate import DEFAULT_BUDGETS, DEFAULT_SIDES, SIDES, headline, validate, write_validation

    names = optimizer_specs(args.optimizers, args.set)
    n_opts = len(resolve_optimizers(names))  # unknown names fail here, before anything is read or fitted
    sides = list(DEFAULT_SIDES) if args.sides is None else [s.strip() for s in args.sides.split(",") if s.strip()]
    unknown = [s for s in sides if s not in SIDES]
    if unknown or not sides:
        raise ValueError(f"--sides: unknown {', '.join(unknown) or 'none given'} (known: {', '.join(SIDES)})")
    seeds = args.seeds or (8 if args.quick else 20)
    budgets = args.budget or ([0.05] if args.quick else list(DEFAULT_BUDGETS))
    grid = args.grid or ("quick" if args.quick else "default")
    check_writable_dir(args.out, "out")
    from tqdm.auto import tqdm

    cells_dir = os.path.join(args.out, "cells")
    logs = args.logs or os.path.join("training_logs", args.dataset or "flowers17")
    bars: list = []  # the bar opens at validate's first stage, once the input is checked: an error stays one line

    def bar():
        if not bars:
            bars.append(tqdm(total=len(sides) * n_opts, unit="task", disable=args.no_progress, desc="validate"))
        return bars[0]

    try:
        try:
            results = validate(
                logs, dataset=args.dataset, optimizers=names, seeds=range(seeds), budgets=budgets,
                folds=args.folds, grid=grid, noise_time=args.noise_time, noise_size=args.noise_size,
                config_noise=args.config_noise, sides=sides,
                n_jobs=args.jobs,
                on_stage=lambda text: bar().set_postfix_str(text[:60]) if not args.no_progress
                else logger.info("%s", text), on_task=lambda: bar().update(1), cells_dir=cells_dir, resume=args.resume,
            )
        finally:
            for b in bars:
                b.close()
    except KeyboardInterrupt:
        print(f"surrobench validate: interrupted; the finished runs are kept in {cells_dir}: "
              "the same command with --resume goes on from there", file=sys.stderr)
        return 130
    write_validation(results, args.out, plots=not args.no_plots, n_jobs=args.jobs)
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        print(results.ranking[results.ranking["side"].isin(["real", "oof"])].to_string(index=False))
    print(headline(results))
    print(f"tables and plots in {args.out}/")
    return 0


def cmd_report(args) -> int:
    from .compare import markdown_summary, read_results

    if args.markdown:
        print(markdown_summary(read_results(args.path, summary_only=True), control=args.control), end="")
        return 0
    results = read_results(args.path)
    results.rank_tests(control=args.control)  # an unknown --control fails before anything is printed or drawn
    _print_summary(results, args.control)
    if not args.no_plots:
        from .plots import draw_report

        paths = draw_report(results, args.path, aggregate=args.aggregate, control=args.control)
        print("plots: " + ", ".join(str(p) for p in paths))
    return 0


def cmd_fit(args) -> int:
    from pathlib import Path

    from .surrogate import fit_surrogate
    from .surrogate.files import check_name, check_surrogate_out

    if args.name is not None:
        check_name(args.name)
    # Where the fit will be written is checked before fitting, not after it.
    name = args.name or (f"{args.dataset}-surrogate" if args.dataset else None)
    out = Path(args.out) if args.out else Path("build") / "surrogates" / name if name else None
    if out is not None:
        check_surrogate_out(out, overwrite=args.force)
    else:
        check_writable_dir(Path("build") / "surrogates", "out")
    if args.publish:
        check_writable_dir(args.publish, "publish")
    logger.info("fitting a surrogate from %s (grid %s)", args.logs, args.grid)
    surrogate = fit_surrogate(
        args.logs, dataset=args.dataset, device=args.device, seed=args.seed, holdout=args.holdout,
        grid=args.grid, name=args.name, clock_plans=args.clock_plans, noise_time=args.noise_time,
        noise_size=args.noise_size, config_noise=args.config_noise,
    )
    return _write_surrogate(surrogate, out or Path("build") / "surrogates" / surrogate.name, args)


def _write_surrogate(surrogate, out, args) -> int:
    """Save, print the card, publish where asked (fit and calibrate end alike)."""
    from .surrogate import format_card, publish, save_surrogate

    save_surrogate(surrogate, out, overwrite=args.force)
    print(format_card(surrogate.manifest))
    print(f"surrogate written to {out} (clock: {surrogate.manifest['devices']['runtime_clock']})")
    if args.publish:
        archive, sha = publish(out, args.publish)
        print(f"published {archive} (sha256 {sha.read_text().split()[0]})")
    return 0


def cmd_quality(args) -> int:
    import json
    from pathlib import Path

    from .surrogate import format_card, format_comparison, format_summary, load_surrogate

    from .benchmark import resolve_surrogate

    surrogate = load_surrogate(resolve_surrogate(args.path))
    if args.against is not None:
        if args.json:
            raise ValueError("quality: --json prints one card; --against compares two (drop one of them)")
        other = load_surrogate(resolve_surrogate(args.against))
    if args.parity:  # first, so that a failure is the only output
        if not surrogate.parity_png:
            raise ValueError(f"{args.path} holds no parity plot")
        try:
            Path(args.parity).write_bytes(surrogate.parity_png)
        except OSError as exc:
            raise ValueError(f"parity: cannot write {args.parity}: {exc.strerror or exc}") from None
    if args.json and args.markdown:
        raise ValueError("quality: --json and --markdown print different things; pick one")
    if args.against is not None:  # the other card is A (e.g. the shipped one), this one B (e.g. a refit)
        print(format_comparison(other.manifest, surrogate.manifest, name_a=str(args.against), name_b=str(args.path),
                                markdown=args.markdown), end="")
    elif args.json:
        print(json.dumps(surrogate.quality, indent=1))
    elif args.markdown:
        print(format_summary(surrogate.quality), end="")
    else:
        print(format_card(surrogate.manifest), end="")
    return 0


def _calibration_configs(args) -> list[dict]:
    import json

    from .space import validate
    from .surrogate.calibrate import MIN_CLOCK_RUNS, spanning_configs

    if args.configs is None:
        return spanning_configs(args.n_configs, args.seed, args.dataset)
    try:
        with open(args.configs, encoding="utf-8") as fh:
            configs = json.load(fh)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"--configs: cannot read {args.configs}: {exc}") from None
    if not isinstance(configs, list) or len(configs) < MIN_CLOCK_RUNS:
        raise ValueError(f"--configs: {args.configs} must hold a JSON list of at least {MIN_CLOCK_RUNS} configs")
    out = []
    for i, cfg in enumerate(configs):
        try:
            out.append(validate(cfg))
        except ValueError as exc:
            raise ValueError(f"--configs: config {i} of {args.configs}: {exc}") from None
    return out


def cmd_calibrate(args) -> int:
    from pathlib import Path

    from .benchmark import resolve_surrogate
    from .surrogate import load_surrogate
    from .surrogate.calibrate import with_clock
    from .surrogate.files import check_name, check_surrogate_out

    _epochs_ok(args.epochs)
    if args.name is not None:
        check_name(args.name)
    base = load_surrogate(resolve_surrogate(args.base or args.dataset))
    if base.dataset != args.dataset:
        raise ValueError(f"--base: {args.base} is a surrogate of {base.dataset}, not of {args.dataset}")
    keys = None
    if args.plans is None:
        from .training.collect import seeded_items

        source = args.configs or f"spanning_configs(n={args.n_configs}, seed={args.seed})"
        items = seeded_items("calibrate", args.seed, _calibration_configs(args), source=source)
        keys = [it.key(args.dataset, args.epochs) for it in items]
    if args.out:
        check_surrogate_out(args.out, overwrite=args.force)
    if args.publish:
        check_writable_dir(args.publish, "publish")
    if not args.no_train and args.plans is None:
        try:
            import torch  # noqa: F401
        except ImportError:
            raise ValueError("calibrate needs torch to train (pip install 'surrobench[train]'), or --no-train") from None
        from tqdm.auto import tqdm

        from .training.collect import collect

        bar = tqdm(total=len(items), unit="run", disable=args.no_progress, desc=f"calibrate {args.dataset}")
        try:
            summary = collect(args.dataset, out_dir=args.logs, epochs=args.epochs, n_jobs=1, device=args.device,
                              threads=args.threads, data_dir=args.data_dir, items=items,
                              on_record=lambda record, summary: bar.update(1))
        finally:
            bar.close()
        print(summary.line())
    logs = Path(args.logs) / args.dataset
    if not logs.is_dir():
        raise ValueError(f"--logs: {logs} holds no runs (train them first, without --no-train)")
    surrogate = with_clock(base, logs, keys=keys, plans=args.plans, name=args.name)
    out = Path(args.out) if args.out else Path("build") / "surrogates" / surrogate.name
    check_surrogate_out(out, overwrite=args.force)
    return _write_surrogate(surrogate, out, args)


def cmd_publish(args) -> int:
    from .surrogate import publish

    archive, sha = publish(args.directory, args.out_dir)
    print(f"{archive}\n{sha}: {sha.read_text().strip()}")
    return 0


COMMANDS = {
    "collect": cmd_collect, "logs": cmd_logs, "compare": cmd_compare, "report": cmd_report, "validate": cmd_validate,
    "fit": cmd_fit, "calibrate": cmd_calibrate, "quality": cmd_quality, "publish": cmd_publish,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    shown = _Warnings()
    with warnings.catch_warnings():  # warnings (a skipped log line, ...) as one line each, no source line
        warnings.simplefilter("default")
        warnings.showwarning = shown
        try:
            return _run(args, shown)
        finally:
            shown.close()


class _Warnings:
    """``warnings.showwarning`` for the CLI: one line per warning, no source line. Of the skipped
    log lines (torn lines, invalid records) only the first ``limit`` are shown, then one line
    counting the rest, so that a wrong file (a CSV passed as logs) does not flood the terminal
    before its error; ``surrobench logs PATH`` counts them all."""

    limit = 20

    def __init__(self):
        self.skipped, self.hidden = 0, 0

    def __call__(self, message, category, filename, lineno, file=None, line=None) -> None:
        from .logs import TornLineWarning  # here, not at start-up: most commands warn of nothing

        if issubclass(category, TornLineWarning):
            self.skipped += 1
            if self.skipped > self.limit:
                self.hidden += 1
                return
        print(f"surrobench: warning: {message}", file=sys.stderr if file is None else file)

    def close(self) -> None:
        """The line counting the skipped log lines not shown (once; before an error line)."""
        if self.hidden:
            print(f"surrobench: warning: {self.hidden} more skipped log lines not shown "
                  f"({self.skipped} in all; `surrobench logs PATH` counts them by kind)", file=sys.stderr)
            self.hidden = 0


def _run(args, shown: _Warnings) -> int:
    try:
        return COMMANDS[args.command](args)
    except ValueError as exc:
        shown.close()  # the count of hidden warnings before the error line
        print(f"surrobench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"surrobench {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:  # the system refused (disk full, a file that vanished): one line, no traceback
        where = f": {exc.filename}" if exc.filename else ""
        print(f"surrobench {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
