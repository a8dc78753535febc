"""The ``asyncflow`` command: run a flow with a live display, or draw its graph.

::

    asyncflow run  package.module:make_flow        # live table, then the bottleneck report
    asyncflow run  path/to/script.py:flow --no-progress --no-report
    asyncflow run  package.module:make_flow --web 8000   # and a live page at http://127.0.0.1:8000/
    asyncflow graph package.module:make_flow -o graph.svg   # or -o graph.mmd; stdout DOT by default
    python -m asyncflow ...                         # the same

``TARGET`` is ``module:attr``: the module is imported with the current directory on
``sys.path`` (a ``path/to/file.py`` is imported from its folder), and ``attr``
(dotted names allowed) is a ``Flow`` or a callable taking no argument that returns
one.  Without ``:attr``, the module's ``flow`` or else its ``make_flow`` is used.
Prefer a ``make_flow()`` function: task processes are spawned and import the module
that defines the node classes, so a flow built at module level is built again in
every one of them.

``--web [HOST:]PORT`` (host ``127.0.0.1`` unless given; port 0: any free one)
serves ``asyncflow.monitor.WebView`` while the flow runs: the graph, a live table,
the bottleneck verdict, the frames of its ``PreviewConsumer``s, ``/api/stats`` and
``/metrics``.  The port is bound before the flow starts (a port in use exits 2 at
once, saying so).  When the flow has ended (finished, stopped by a first Ctrl-C, or
failed: the error is printed at once), the page keeps showing the final report
until the process is stopped (Ctrl-C or SIGTERM; the exit status is then the
run's).  It needs the ``web`` extra (``pip install 'asyncflow[web]'``).

Exit status: 0 when the flow finished or was stopped by a first Ctrl-C; 1 when it
failed (``FlowError``, or a bad graph: message only, the traceback with
``--debug``); 2 for a bad command line, a target that cannot be loaded or a web
address that cannot be served; 130 after a second Ctrl-C (the processes were ended
hard); 143 after SIGTERM while the flow runs.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core.errors import FlowError, GraphError, NodeConfigError
from .core.flow import Flow

if TYPE_CHECKING:
    from .monitor.web import WebView

__all__ = ["TargetError", "build_parser", "load_flow", "main"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class TargetError(Exception):
    """The ``module:attr`` target cannot be loaded (bad spec, import error, not a Flow)."""


class _UsageError(Exception):
    """A command line that cannot be carried out (exit status 2): a web address that cannot be served."""


def _import_target_module(spec: str) -> Any:
    """Import the module part of a target: a dotted module name, or a path to a ``.py`` file."""
    if spec.endswith(".py") or os.sep in spec:
        path = Path(spec).resolve()
        if not path.is_file():
            raise TargetError(f"no such file: {spec}")
        folder, name = str(path.parent), path.stem
    else:
        folder, name = os.getcwd(), spec
    if folder not in sys.path:
        sys.path.insert(0, folder)  # spawned task processes inherit sys.path, so they find it too
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise TargetError(f"cannot import {name!r}: {exc} (sys.path has {folder!r})") from exc
        raise


def load_flow(target: str) -> Flow:
    """Return the ``Flow`` that ``target`` (``module:attr``) names, calling ``attr`` if it is a factory.

    Raises ``TargetError`` when the target cannot be found or is not a flow;
    exceptions raised while the module is imported or the factory runs propagate.
    """
    module_spec, _, attr = target.partition(":")
    if not module_spec:
        raise TargetError(f"bad target {target!r}: write module:attr, e.g. mypackage.pipeline:make_flow")
    module = _import_target_module(module_spec)
    if attr:
        obj: Any = module
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise TargetError(f"{module_spec} has no attribute {attr!r}") from None
    else:
        for default in ("flow", "make_flow"):
            if hasattr(module, default):
                obj, attr = getattr(module, default), default
                break
        else:
            raise TargetError(f"{module_spec} defines neither 'flow' nor 'make_flow': name one, as {module_spec}:attr")
    if isinstance(obj, Flow):
        return obj
    if callable(obj):
        made = obj()
        if isinstance(made, Flow):
            return made
        raise TargetError(f"{module_spec}:{attr}() returned {type(made).__name__}, not a Flow")
    raise TargetError(f"{module_spec}:{attr} is a {type(obj).__name__}, not a Flow or a function returning one")


def _cmd_run(args: argparse.Namespace) -> int:
    from .runner import run

    if args.web is not None:
        return _run_with_web(args)
    flow = load_flow(args.target)
    run(flow, progress=args.progress, report=args.report)
    return EXIT_OK


def _run_with_web(args: argparse.Namespace) -> int:
    """``run --web``: serve the page while the flow runs (in the runner's loop), then the final report until stopped."""
    try:
        from .monitor.web import WebView, WebViewError, parse_address
    except ImportError as exc:
        raise _UsageError(f"--web: {exc}") from exc
    from .runner import run

    try:
        host, port = parse_address(args.web)
    except ValueError as exc:
        raise _UsageError(f"--web: {exc}") from None
    flow = load_flow(args.target)
    view = WebView(flow, host=host, port=port)
    try:
        view.bind()  # now, before the flow starts: a port in use stops here
    except WebViewError as exc:
        raise _UsageError(str(exc)) from None
    print(f"asyncflow: web view at {view.url}", file=sys.stderr, flush=True)
    run_flow = flow.run

    async def run_served() -> None:
        # In the runner's event loop, next to the run; the port stays bound for what follows.
        await view.start()
        try:
            await view.run_until(run_flow())
        finally:
            await view.stop(release=False)

    vars(flow)["run"] = run_served  # asyncflow.run() awaits flow.run(): this one, for this command
    status = EXIT_OK
    try:
        run(flow, progress=args.progress, report=args.report)
    except (FlowError, GraphError, NodeConfigError) as exc:
        status = _failed(args, exc)  # said now; the page shows it too
    except BaseException:
        view.close()  # a second Ctrl-C, SIGTERM: the process ends now
        raise
    finally:
        vars(flow).pop("run", None)
    _serve_final_report(view)
    return status


def _serve_final_report(view: WebView) -> None:
    """Serve the page (the ended run's figures and report) until Ctrl-C or SIGTERM."""
    import uvloop

    print(
        f"asyncflow: the flow has ended; {view.url} shows its final report until Ctrl-C",
        file=sys.stderr,
        flush=True,
    )

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopped.set)
        try:
            await view.start()
            await stopped.wait()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            await view.stop()

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve())
    finally:
        view.close()


def _failed(args: argparse.Namespace, exc: BaseException) -> int:
    """Say that the flow failed (the traceback with ``--debug``); the exit status."""
    if args.debug:
        traceback.print_exception(exc)
    print(f"asyncflow: error: {type(exc).__name__}: {exc}", file=sys.stderr)
    if not args.debug:
        print("(run with --debug for the traceback)", file=sys.stderr)
    return EXIT_FAILED


def _cmd_graph(args: argparse.Namespace) -> int:
    from .monitor.graph import render, to_dot, to_mermaid

    flow = load_flow(args.target)
    if args.output is None or args.output == "-":
        sys.stdout.write(to_mermaid(flow) if args.format == "mermaid" else to_dot(flow))
        return EXIT_OK
    requested = Path(args.output)
    written = render(flow, requested, warn=False)
    if written != requested:
        print(
            f"asyncflow: graphviz is not installed (neither the 'graphviz' package nor the 'dot' program): "
            f"wrote mermaid text to {written} instead of {requested} (render it at https://mermaid.live)",
            file=sys.stderr,
        )
    else:
        print(f"asyncflow: wrote {written}", file=sys.stderr)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The command line: ``run`` and ``graph`` sub-commands."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="asyncflow",
        description="Run an asyncflow Flow with a live display, or draw its graph.",
        epilog="TARGET is module:attr, attr being a Flow or a function returning one (default: flow or make_flow).",
    )
    parser.add_argument("--version", action="version", version=f"asyncflow {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run_p = sub.add_parser("run", help="run a flow, with a live display and a bottleneck report")
    run_p.add_argument("target", metavar="TARGET", help="module:attr (a Flow or a function returning one)")
    run_p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show the live display on stderr (only a summary line when stderr is not a terminal)",
    )
    run_p.add_argument(
        "--report",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="print the bottleneck report when the flow has ended",
    )
    run_p.add_argument(
        "--web",
        metavar="[HOST:]PORT",
        help="serve a live page of the flow (graph, table, verdict, video previews, /api/stats, /metrics) at "
        "http://HOST:PORT/ (HOST 127.0.0.1 unless given; PORT 0: any free port); after the flow has ended it "
        "shows the final report until Ctrl-C (needs asyncflow[web])",
    )
    run_p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks for errors")
    run_p.set_defaults(handler=_cmd_run)

    graph_p = sub.add_parser("graph", help="print or draw a flow's graph")
    graph_p.add_argument("target", metavar="TARGET", help="module:attr (a Flow or a function returning one)")
    graph_p.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="write to PATH: .svg/.png/.pdf (graphviz; mermaid .mmd when it is missing), .dot/.gv, .mmd "
        "(default: DOT on stdout)",
    )
    graph_p.add_argument(
        "-f", "--format", choices=("dot", "mermaid"), default="dot", help="text format on stdout (default: dot)"
    )
    graph_p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks for errors")
    graph_p.set_defaults(handler=_cmd_graph)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``asyncflow`` command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.handler(args)
        return status
    except KeyboardInterrupt:
        print("asyncflow: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (TargetError, _UsageError) as exc:
        if args.debug:
            traceback.print_exc()
        print(f"asyncflow: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (FlowError, GraphError, NodeConfigError) as exc:
        return _failed(args, exc)
