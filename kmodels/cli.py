"""The `kmodels` command.

    kmodels info                         backend, devices, versions
    kmodels list [KIND] [PATTERN]        registered names (glob)
    kmodels show NAME [--set K=V]        a task's resolved spec as TOML, or an item's signature
    kmodels run TASK_OR_SPEC [--data PATH] [--set K=V]... [--out DIR] [--mlflow [URI]]
    kmodels run --resume RUN_DIR         continue an interrupted run
    kmodels run ... --processes N        N local processes of JAX's distributed runtime (data parallel)
    kmodels evaluate RUN_DIR [--data P]  re-evaluate a finished run on its test split (or new labelled data)
    kmodels predict RUN_DIR_OR_MODEL INPUT... [--output CSV]
    kmodels explain RUN_DIR [INPUT...] [--plot PNG]   column importance (tables), occlusion maps (images)
    kmodels serve RUN_DIR_OR_EXPORT [--port P]        HTTP: POST /predict, GET /health, GET /metadata
    kmodels bench {train-step,input-pipeline,tabular,table-fit,quality,startup,serve,photo-curve,photo-ablation,tta,depthwise} [ARGS]

Exit codes: 0 success, 1 the run failed, 2 usage/config/data error, 130 interrupted.
Errors go to stderr without a traceback unless `--debug` is given.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from kmodels import cli_items, console
from kmodels.console import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_USAGE,
    import_backend_quietly,
    setup_logging,
)

BENCHMARKS = {"train-step": "train_step", "input-pipeline": "input_pipeline", "tabular": "tabular",
              "quality": "quality", "startup": "startup", "serve": "serve", "photo-curve": "photo_curve",
              "table-fit": "table_fit", "tta": "photo_tta", "photo-ablation": "photo_ablation",
              "depthwise": "depthwise"}

logger = logging.getLogger("kmodels")


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("kmodels")
    except metadata.PackageNotFoundError:
        return "0.0.0 (source tree)"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kmodels",
        description="Declaratively assembled Keras 3 models on JAX or TensorFlow "
                    "(choose with KERAS_BACKEND=jax|tensorflow).",
        epilog="Exit codes: 0 ok, 1 run failed, 2 usage/config/data error, 130 interrupted.",
    )
    p.add_argument("--version", action="version", version=f"kmodels {_version()}")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks and the backends' log lines")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    # the global flags are accepted after the command too (`kmodels run X --debug`)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add = sub.add_parser
    sub.add_parser = lambda *a, **k: _add(*a, parents=[common], **k)  # type: ignore[method-assign]

    info = sub.add_parser("info", help="backend, devices and package versions")
    info.add_argument("--json", action="store_true", help="print JSON")

    ls = sub.add_parser("list", help="list registered names")
    ls.add_argument("kind", nargs="?", default=None,
                    help="models, preprocessors, callbacks, datasets or tasks (default: all)")
    ls.add_argument("pattern", nargs="?", default="*", help="glob over names, e.g. '*cnn*'")

    show = sub.add_parser("show", help="a task's resolved spec (TOML), or an item's signature (a model: built, "
                          "with its parameter count)")
    show.add_argument("name", help="a task name, a spec file, or any registered name")
    show.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V",
                      help="dotted override, e.g. train.epochs=3 (repeatable)")

    run = sub.add_parser("run", help="run a task end to end")
    run.add_argument("task", metavar="TASK_OR_SPEC", nargs="?", default=None,
                     help="a registered task or a spec .toml file")
    run.add_argument("--data", type=Path, default=None, help="your data (file or folder); default: embedded")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V",
                     help="dotted override, e.g. train.epochs=3 (repeatable)")
    run.add_argument("--out", type=Path, default=None, help="run directory (must be new or empty)")
    run.add_argument("--mlflow", nargs="?", const="mlruns", default=None, metavar="URI",
                     help="also log the run to MLflow (params, metrics, artifacts); URI default: ./mlruns "
                          "(a local file store), or e.g. sqlite:///mlflow.db, http://host:5000")
    run.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                     help="continue an interrupted/failed/killed run from its last saved epoch")
    run.add_argument("--processes", type=int, default=1, metavar="N",
                     help="train as N local processes of JAX's distributed runtime, data parallel "
                          "(KERAS_BACKEND=jax; what a cluster launcher does across machines)")

    safe = ("A run directory is read as data: model.keras with Keras's safe_mode, the preprocessing with "
            "skops.io (registered preprocessors only); no pickle is ever loaded, so a run from a stranger is safe.")
    ev = sub.add_parser("evaluate", help="re-evaluate a finished run on its test split, or score new labelled data",
                        description=safe)
    ev.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    ev.add_argument("--data", type=Path, default=None, metavar="PATH",
                    help="score new labelled data instead (every row; a table run's CSV holding the target column)")

    xp = sub.add_parser("explain", help="what a finished run's model relies on: column importance, image maps",
                        description="Tables: permutation importance of each column (the drop of the run's primary "
                        "metric when the column is shuffled), on the run's test split or on labelled CSV INPUTs "
                        "(holding the target column). Images: occlusion maps of the INPUT images (--plot needed). "
                        "Read-only: the run is not changed. " + safe)
    xp.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    xp.add_argument("inputs", type=Path, nargs="*", metavar="INPUT")
    xp.add_argument("--plot", type=Path, default=None, metavar="PNG", help="write the chart or the maps here (a new "
                    "file)")

    sv = sub.add_parser("serve", help="serve a finished run over HTTP (POST /predict, GET /health, /metadata)",
                        description="Serve a finished run's model (or a SavedModel `kmodels export` made of one, "
                        "without kmodels' run directory) over HTTP with FastAPI and uvicorn (pip install "
                        '"kmodels[serve]"): POST /predict takes JSON rows ({"rows": [{...}]}) or image bytes and '
                        "answers as `kmodels predict` does; concurrent requests are predicted together (micro-"
                        "batching). GET /health, GET /metadata (classes, input schema, versions). " + safe)
    sv.add_argument("run_dir", type=Path, metavar="RUN_DIR_OR_EXPORT")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine "
                    "only; 0.0.0.0 for every interface)")
    sv.add_argument("--port", type=int, default=8080, help="default: %(default)s")
    sv.add_argument("--max-batch", type=int, default=256, help="most inputs predicted together (default: %(default)s)")
    sv.add_argument("--max-wait-ms", type=float, default=5.0,
                    help="how long a request waits for others to share its batch (default: %(default)s)")
    sv.add_argument("--max-body-mb", type=float, default=16.0,
                    help="larger request bodies get 413 (default: %(default)s)")

    bench = sub.add_parser("bench", help="run a benchmark from benchmarks/ (source checkout)",
                           description="Run a benchmark; the arguments after its name are its own (see --help).")
    bench.add_argument("benchmark", choices=sorted(BENCHMARKS), help="which benchmark")
    bench.add_argument("args", nargs=argparse.REMAINDER, help="its arguments, e.g. --backends jax,tensorflow")

    pr = sub.add_parser("predict", help="predict with a run (or a .keras file)", description=safe)
    pr.add_argument("source", type=Path, metavar="RUN_DIR_OR_MODEL")
    pr.add_argument("inputs", type=Path, nargs="+", metavar="INPUT")
    pr.add_argument("--output", type=Path, default=None, help="write the CSV here (default: stdout)")
    pr.add_argument("--allow-missing", action="store_true", help="predict table rows with text in a numeric column "
                    "or every feature missing, imputed (default: refuse them, exit 2, with the counts)")
    ex = sub.add_parser("export", help="export a run's model (keras, saved_model, onnx), checked by loading it back",
                        description="Write the model of a finished run (or a .keras file) in a deployable format "
                        "and load it back to check it. A table run's saved_model and onnx exports take raw rows (one "
                        "input per column) and return the label and class probabilities, checked against `kmodels "
                        "predict` on the run's test rows; other exports hold the network, checked against the Keras "
                        "model on a sample batch. An existing OUT is never overwritten. " + safe)
    ex.add_argument("source", type=Path, metavar="RUN_DIR_OR_MODEL")
    ex.add_argument("out", type=Path, metavar="OUT", help="the new file or folder")
    ex.add_argument("--format", default="saved_model", choices=["keras", "saved_model", "onnx"],
                    help="keras: the .keras file; saved_model: TensorFlow SavedModel (serve endpoint); "
                    'onnx: needs `pip install "kmodels[onnx]"` (default: %(default)s)')
    ex.add_argument("--rows", type=Path, default=None, metavar="CSV",
                    help="raw rows to check a table export on (default: the run's test split, re-read from its data)")
    return p


def _cmd_export(args: argparse.Namespace) -> int:
    from kmodels.task import export

    result = export(args.source, args.out, args.format, rows=args.rows)
    raw = isinstance(result["metadata"].get("input"), dict)
    print(f"exported {result['format']} to {result['path']} (max abs difference {result['max_abs_diff']:.3g} "
          f"from {'`kmodels predict`' if raw else 'the Keras model'} on {result['rows']} "
          f"{'raw rows' if raw else 'sample inputs'})")
    return EXIT_OK


def _cmd_info(args: argparse.Namespace) -> int:
    from kmodels import backend

    data = backend.info()
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    print(f"backend   {data['backend']}")
    print(f"devices   {', '.join(data['devices'])}")
    print(f"python    {data['python']} on {data['platform']} ({data['cpu_count']} CPUs)")
    for pkg, ver in data["versions"].items():
        if ver:
            print(f"{pkg:<14}{ver}")
    return EXIT_OK


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _cmd_run(args: argparse.Namespace) -> int:
    import contextlib

    if args.processes != 1:
        from kmodels.launch import launch

        hint = args.resume or args.out
        return launch(args.argv, args.processes, resume_hint=None if hint is None else str(hint))
    import kmodels
    from kmodels import cluster

    overrides = list(args.overrides)
    if args.quiet:  # -q: warnings and errors only, Keras's per-epoch lines included
        overrides.append("train.verbose=0")
    if args.mlflow is not None:
        overrides += ["tracking.mlflow=true", f"tracking.uri={json.dumps(args.mlflow)}"]
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # Keras's progress bars are progress, not results
            result = kmodels.run(args.task, data=args.data, overrides=overrides or None, out=args.out,
                                 resume=args.resume)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if not cluster.is_writer():
        return EXIT_OK  # process 0 prints the results and wrote the run directory
    verdict = "".join(f"{line}\n" for line in result.metrics.get("verdict", []))
    print(f"\n{result.task}: test-split results\n{result.markdown}\n{verdict}artifacts: {result.run_dir}")
    return EXIT_OK


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from kmodels.evaluation import format_table
    from kmodels.problems import Problem
    from kmodels.task import evaluate_run

    metrics = evaluate_run(args.run_dir, data=args.data)
    if args.data is not None:
        print(f"{metrics['rows']} labelled rows of {args.data}", file=sys.stderr)
    print(format_table([{"model": "keras", **metrics}], Problem.from_json(metrics["problem"]).columns))
    return EXIT_OK


def _cmd_predict(args: argparse.Namespace) -> int:
    from kmodels.errors import ConfigError
    from kmodels.task import predict

    if args.output is not None and os.path.lexists(args.output):
        raise ConfigError(f"--output {str(args.output)!r} exists; kmodels does not overwrite files. Choose a new path.")
    from kmodels.evaluation import spreadsheet_safe

    frame = spreadsheet_safe(predict(args.source, args.inputs, allow_missing=args.allow_missing))  # no formula cells
    if args.output is None:
        frame.to_csv(sys.stdout, index=False)
    else:
        from kmodels.runs import atomic_write

        atomic_write(args.output, frame.to_csv(index=False))
        print(f"wrote {len(frame)} predictions to {args.output}", file=sys.stderr)
    return EXIT_OK


def _cmd_explain(args: argparse.Namespace) -> int:
    from kmodels.evaluation import spreadsheet_safe
    from kmodels.task import explain_run

    frame = explain_run(args.run_dir, args.inputs, plot=args.plot)
    spreadsheet_safe(frame).to_csv(sys.stdout, index=False)
    if args.plot is not None:
        print(f"wrote {args.plot}", file=sys.stderr)
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        from kmodels.errors import ConfigError

        raise ConfigError('kmodels serve needs FastAPI and uvicorn: pip install "kmodels[serve]".') from None
    from kmodels.serve import serve

    serve(args.run_dir, host=args.host, port=args.port, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
          max_body_mb=args.max_body_mb, log_level="warning" if args.quiet else "info")
    return EXIT_OK


def _cmd_bench(args: argparse.Namespace) -> int:
    import importlib

    from kmodels.errors import RunError

    root = Path(__file__).resolve().parent.parent
    if not (root / "benchmarks" / f"{BENCHMARKS[args.benchmark]}.py").is_file():
        raise RunError(f"benchmarks/ not found next to {root / 'kmodels'}; `kmodels bench` runs from a source "
                       "checkout (pip install -e .).")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module = importlib.import_module(f"benchmarks.{BENCHMARKS[args.benchmark]}")
    return int(module.main(args.args) or 0)


COMMANDS = {"bench": _cmd_bench, "info": _cmd_info, "list": cli_items.cmd_list, "show": cli_items.cmd_show, "run": _cmd_run,
            "evaluate": _cmd_evaluate, "predict": _cmd_predict, "export": _cmd_export, "explain": _cmd_explain,
            "serve": _cmd_serve}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with `argv` (default: `sys.argv[1:]`); return the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.debug = getattr(args, "debug", False)
    args.quiet = getattr(args, "quiet", False)
    console.DEBUG = args.debug
    # TensorFlow's and absl's C++ start-up lines only with --debug (a value the user set is kept)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if args.debug else "3")
    setup_logging(args.quiet)
    launcher = args.command == "run" and args.processes != 1  # starts processes that import the backend
    if args.command in ("run", "evaluate", "predict", "export", "explain", "serve", "info") and not launcher:
        import_backend_quietly()
    from kmodels.errors import ConfigError, DataError, KModelsError

    try:
        return COMMANDS[args.command](args)
    except (ConfigError, DataError) as exc:
        if args.debug:
            raise
        print(f"kmodels: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("kmodels: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KModelsError as exc:
        if args.debug:
            raise
        print(f"kmodels: error: {exc}", file=sys.stderr)
        return EXIT_RUN_FAILED
    except OSError as exc:
        if args.debug:
            raise
        if exc.errno == errno.ENOSPC:  # a full disk is the user's to fix, not a bug: no traceback
            where = f" writing {exc.filename}" if exc.filename else ""
            print(f"kmodels: error: no space left on the device{where}. Free some space or write elsewhere "
                  "(--out, --output); a run that was writing is marked 'failed', and nothing half-written is left "
                  "looking complete.", file=sys.stderr)
            return EXIT_RUN_FAILED
        if exc.filename is None:
            raise
        # a user's path that cannot be read or written: name it, exit as a usage error
        where = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
        print(f"kmodels: error: {exc.strerror or exc}: {where}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        if args.debug:
            raise
        print(f"kmodels: run failed: {type(exc).__name__}: {exc} (re-run with --debug for the traceback)",
              file=sys.stderr)
        return EXIT_RUN_FAILED


def console_main() -> None:
    sys.exit(main())


if __name__ == "__main__":
    console_main()
