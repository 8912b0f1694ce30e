"""The ``surrobench`` command. The only place that configures logging, progress bars and back-ends.

Bad input exits with status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import warnings

from . import __version__

logger = logging.getLogger("surrobench")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def _duration(text: str) -> float:
    """Seconds, or a number with a unit: 90, 90s, 45m, 2.5h."""
    units = {"s": 1, "m": 60, "h": 3600}
    t = text.strip().lower()
    scale = units.get(t[-1:], None)
    try:
        value = float(t[:-1] if scale else t) * (scale or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a duration such as 600, 45m or 2h, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive duration, got {text!r}")
    return value


def _shard(text: str) -> tuple[int, int]:
    from .training.collect import parse_shard

    try:
        return parse_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="surrobench", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"surrobench {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("collect", help="train configs of a seeded plan for real and log their learning curves")
    c.add_argument("--dataset", default="digits", choices=["digits", "flowers17", "fashion_mnist"])
    c.add_argument("--data-dir", help="directory with the dataset's files (flowers17: x_*.npy/y_*.npy)")
    c.add_argument("--out", default="training_logs", help="logs root; runs go to OUT/DATASET/ (default: %(default)s)")
    c.add_argument("--plan-seed", type=_nonneg_int, default=0, help="seed of the plan: config k is the same everywhere")
    c.add_argument("--n-configs", type=_positive_int, default=30)
    c.add_argument("--epochs", type=_positive_int, default=25)
    c.add_argument("--shard", type=_shard, default=(0, 1), help="i/n: this machine's share of the plan")
    c.add_argument("--replicate-fraction", type=_fraction, default=0.1, help="share of configs trained with several seeds")
    c.add_argument("--replicates", type=_positive_int, default=3, help="seeds per replicated config")
    c.add_argument(
        "--retime-fraction", type=_fraction, default=None,
        help="share of configs re-run alone on their device when jobs share it (default 0.03)",
    )
    c.add_argument("--jobs", type=_positive_int, default=1, help="parallel training jobs (several per GPU pay off)")
    c.add_argument("--threads", type=_positive_int, default=1, help="torch threads per job (default 1)")
    c.add_argument("--device", help="cpu, cuda, cuda:1 or mps (default: CUDA, then MPS, then CPU)")
    c.add_argument("--backend", default="loky", choices=["loky", "threading", "multiprocessing", "dask", "ray"])
    c.add_argument("--scheduler", help="dask scheduler address (with --backend dask); a local cluster otherwise")
    c.add_argument("--time-limit", type=_duration, help="start nothing new after this long (e.g. 45m); running jobs finish")
    c.add_argument("--no-progress", action="store_true")

    lg = sub.add_parser("logs", help="summarise training logs: counts by dataset, device and status")
    lg.add_argument("path", nargs="?", default="training_logs")
    return p


def _epochs_ok(value: int) -> int:
    from .space import validate_epoch

    return validate_epoch(value, name="--epochs")


def _setup_backend(args) -> None:
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


def cmd_collect(args) -> int:
    try:
        from .training.collect import collect
    except ImportError as exc:
        raise ValueError(f"collect needs torch ({exc}): pip install 'surrobench[train]'") from None
    _epochs_ok(args.epochs)
    _setup_backend(args)
    from tqdm.auto import tqdm

    stop = threading.Event()

    def request_stop(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("surrobench collect: stopping after the running jobs (signal again to abort)", file=sys.stderr)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_stop)
    bar = None

    def on_plan(n):
        nonlocal bar
        bar = tqdm(total=n, unit="run", disable=args.no_progress, desc=f"collect {args.dataset}")

    def on_record(record, summary):
        bar.update(1)
        bar.set_postfix_str(f"{record['status']} {record['config_id']}", refresh=False)

    try:
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
            backend=args.backend,
            device=args.device,
            threads=args.threads,
            data_dir=args.data_dir,
            time_limit=args.time_limit,
            stop=stop,
            on_record=on_record,
            on_plan=on_plan,
        )
    finally:
        if bar is not None:
            bar.close()
    print(summary.line())
    return 0


def cmd_logs(args) -> int:
    from .logs import format_summary, summarize

    print(format_summary(summarize(args.path)))
    return 0


COMMANDS = {"collect": cmd_collect, "logs": cmd_logs}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    warnings.simplefilter("default")
    try:
        return COMMANDS[args.command](args)
    except ValueError as exc:
        print(f"surrobench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"surrobench {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
