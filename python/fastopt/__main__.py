"""Command line: ``python -m fastopt {demo,lr-find,bench}`` (also the ``fastopt`` script);
``--version`` prints the version.

* ``demo``: train a NumPy MLP on scikit-learn's digits with every optimizer and several
  schedules after an LR range test; prints a table and writes PNG plots.
* ``lr-find``: the LR range test alone on the demo data.
* ``bench``: the benchmark table (needs a source checkout with ``benchmarks/``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from collections.abc import Sequence

from ._version import __version__


def _training_args(p: argparse.ArgumentParser) -> None:
    """The options of the commands that train: ``--no-progress`` and ``--backend``."""
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "native", "numba", "numpy"],
        help="optimizer backend: auto (default), native, numba or numpy",
    )


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1, with a message that says so."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not (v > 0 and v != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return v


_OPTIMIZER_NAMES = ("SGD", "Adagrad", "RMSprop", "Adam", "AdamW")


def _optimizer_list(text: str) -> list[str]:
    """argparse type: a comma-separated subset of the optimizer names."""
    names = [o.strip() for o in text.split(",") if o.strip()]
    bad = [n for n in names if n not in _OPTIMIZER_NAMES]
    if not names or bad:
        raise argparse.ArgumentTypeError(
            f"unknown optimizer(s) {bad or [text]}; choose from {','.join(_OPTIMIZER_NAMES)}"
        )
    return names


def _writable_dir(path: str, what: str) -> str | None:
    """Create ``path`` if needed and check that files can be written there; returns an error
    message or None."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        return f"cannot create the {what} {path!r}: {exc.strerror or exc}"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"cannot write into the {what} {path!r} (permission denied)"
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fastopt", description="fastopt command line")
    parser.add_argument("--version", action="version", version=f"fastopt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser(
        "demo",
        help="train a NumPy MLP on the digits data with every optimizer "
        "and schedule; table and PNG plots",
        description="Train a NumPy MLP on scikit-learn's digits with each "
        "optimizer and schedule, after an LR range test picks the "
        "rate; prints a table and writes PNG plots.",
    )
    d.add_argument(
        "--out",
        default="fastopt-demo-output",
        help="output folder for the plots (default ./fastopt-demo-output)",
    )
    d.add_argument(
        "--steps",
        type=_positive_int,
        default=None,
        help="training steps per run (default 600, 40 with --quick)",
    )
    d.add_argument("--quick", action="store_true", help="a reduced run (few steps)")
    d.add_argument(
        "--tensorboard",
        metavar="DIR",
        default=None,
        help="also write TensorBoard logs to DIR (needs fastopt[tensorboard])",
    )
    d.add_argument(
        "--optimizers",
        type=_optimizer_list,
        default=None,
        help="comma-separated subset of SGD,Adagrad,RMSprop,Adam,AdamW",
    )
    _training_args(d)

    f = sub.add_parser(
        "lr-find",
        help="LR range test on the demo MLP",
        description="Run fastopt.lr_find on the demo's digits MLP.",
    )
    f.add_argument("--optimizer", default="Adam", choices=list(_OPTIMIZER_NAMES))
    f.add_argument("--start-lr", type=_positive_float, default=1e-6)
    f.add_argument("--end-lr", type=_positive_float, default=10.0)
    f.add_argument("--num-steps", type=_positive_int, default=100)
    f.add_argument(
        "--out",
        default="lr_find.png",
        help="PNG path for the plot (default lr_find.png; '' for none)",
    )
    _training_args(f)

    b = sub.add_parser(
        "bench",
        help="run the benchmarks and print the table (source checkout)",
        description="Run `pytest benchmarks --benchmark-only` and print the "
        "report; needs a source checkout with benchmarks/.",
    )
    b.add_argument(
        "--dir",
        default=None,
        help="the benchmarks folder (default: found next to "
        "the sources or in the current directory)",
    )
    b.add_argument("pytest_args", nargs=argparse.REMAINDER, help="extra arguments for pytest")
    return parser


def _find_benchmarks(explicit: str | None) -> str | None:
    if explicit:
        return explicit if os.path.isdir(explicit) else None
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (
        os.path.join(os.getcwd(), "benchmarks"),
        os.path.join(here, "..", "..", "benchmarks"),
    ):
        if os.path.isdir(cand) and any(n.endswith(".py") for n in os.listdir(cand)):
            return os.path.normpath(cand)
    return None


def _bench(args: argparse.Namespace) -> int:
    bench = _find_benchmarks(args.dir)
    if bench is None:
        print(
            "fastopt bench: the benchmarks are not available here: they live in the "
            "benchmarks/ folder of a fastopt source checkout (run this from there, or pass "
            "--dir).",
            file=sys.stderr,
        )
        return 1
    if importlib.util.find_spec("pytest_benchmark") is None:
        print("fastopt bench needs pytest-benchmark: pip install 'fastopt[test]'", file=sys.stderr)
        return 1
    root = os.path.dirname(bench)
    json_path = os.path.join(root, ".benchmarks", "latest.json")
    os.makedirs(os.path.dirname(json_path), exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        bench,
        "--benchmark-only",
        "--benchmark-columns=min,median,mean,ops",
        f"--benchmark-json={json_path}",
        "-q",
        *args.pytest_args,
    ]
    print("+", " ".join(cmd), flush=True)
    rc = subprocess.call(cmd, cwd=root)
    report = os.path.join(bench, "report.py")
    if rc == 0 and os.path.isfile(report):
        rc = subprocess.call([sys.executable, report, json_path], cwd=root)
    return rc


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m fastopt`` and the ``fastopt`` script; returns the exit
    status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "demo":
        for folder, what in (
            (args.out, "output folder (--out)"),
            (args.tensorboard, "TensorBoard folder (--tensorboard)"),
        ):
            if folder is not None:
                problem = _writable_dir(folder, what)
                if problem:
                    parser.error(problem)
    if args.command == "lr-find":
        if args.end_lr <= args.start_lr:
            parser.error(
                f"--end-lr ({args.end_lr}) must be larger than --start-lr ({args.start_lr})"
            )
        if args.out:
            problem = _writable_dir(os.path.dirname(os.path.abspath(args.out)), "folder of --out")
            if problem:
                parser.error(problem)
    try:
        if args.command == "demo":
            from .demo import OPTIMIZERS, run_demo

            opts = args.optimizers or OPTIMIZERS
            run_demo(
                args.out,
                steps=args.steps,
                quick=args.quick,
                tensorboard=args.tensorboard,
                backend=args.backend,
                optimizers=opts,
                progress=False if args.no_progress else None,
            )
            return 0
        if args.command == "lr-find":
            from .demo import run_lr_find

            run_lr_find(
                args.optimizer,
                num_steps=args.num_steps,
                start_lr=args.start_lr,
                end_lr=args.end_lr,
                out=args.out or None,
                backend=args.backend,
                progress=False if args.no_progress else None,
            )
            return 0
        if args.command == "bench":
            return _bench(args)
    except (ImportError, ValueError, OSError) as exc:
        print(f"fastopt {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
