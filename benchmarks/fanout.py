"""A fan-out with a slow and a fast branch: does the fast branch keep the source's pace?

    python -m benchmarks.fanout [--rate 500] [--seconds 4] [--slow-ms 20] [--flow-types BATCH,REALTIME]
                                [--timeout S] [--json PATH]

A source paced at ``rate`` (500) items/s emits ``rate x seconds`` (2 000) small items
``(index, emitted_at)`` (``emitted_at = time.time()`` at emission: wall clock, comparable
across processes).  It keeps a fixed schedule: item ``i`` is due at ``t0 + i/rate``; it
sleeps until the item is due and, when it is already late (held back), emits at once
without skipping an item or shifting the schedule; its *lateness* is emission - due.
Two graphs, each under ``BATCH`` and ``REALTIME`` with the default options:

- ``fan-out``: source → slow consumer (``slow-ms``, 20 ms an item: a blocking sleep),
  and source → fast consumer (no work);
- ``fast only``: source → fast consumer, no slow branch: the baseline.

Both consumers record each item's index, ``emitted_at`` and arrival (``time.time()``
at the start of ``consume``) and write them at ``close()``.  Per run: the fast
branch's items received / emitted, its rate (items received over the span from its
first arrival to its last), its latency p50 / p99 / max (arrival - ``emitted_at``;
nearest rank), whether in order; the slow branch's items received and latency; the
source's lateness p99 / max; and the source's two phases: the items it emitted on
schedule (lateness under ``ON_SCHEDULE_S``) before it first fell behind, then its
stalls (how many, the longest) and the rate it kept from then on, and the slow
branch's window (the most items emitted that the slow branch had not started on yet:
what ``BATCH``'s bounded memory lets it lag by).

What to expect: in ``BATCH`` every item reaches both branches, so the slow branch
(50 items/s) holds the source back once its window is full: the source is on
schedule until then, then stalls until the slow branch frees room and emits what is
due in a burst (50 items/s on average over a long enough run); the fast branch, which
gets each item as soon as it exists, follows the source (low latency, the source's
rate), not the slow branch.  In
``REALTIME`` the source is never held back: the slow branch keeps the newest items
it can (about ``clip / slow``) and the fast branch gets every item, as without the
slow branch.  (Before branches had their own channels, every row visited the slow
consumer before the fast one: the fast branch's latency was the slow branch's.)

Every run is a fresh interpreter (``python -m benchmarks.fanout --child ...``) in its
own process group and a scratch directory, killed with all its processes if it
outlives ``--timeout`` (or if this process is interrupted).

``fanout()`` runs it all and returns the figures (``benchmarks.run_all`` puts them in
``results.json`` under ``workloads.fanout``); ``format_table()`` prints them.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks._isolated import _error, _percentile, _run_group, _tail

__all__ = ["FLOW_TYPES", "GRAPHS", "brief", "fanout", "format_table", "main", "measure", "reading"]

RATE = 500.0
SECONDS = 4.0
SLOW_S = 0.020
FLOW_TYPES = ("BATCH", "REALTIME")
#: graph name -> what it is
GRAPHS = {
    "fanout": "source -> slow consumer, source -> fast consumer",
    "fast_only": "source -> fast consumer (no slow branch)",
}
#: A source item emitted later than this after it was due counts as behind schedule.
ON_SCHEDULE_S = 0.05


# -- child side: one flow type, one graph, in a fresh interpreter ----------------------------------------------


def _drops(flow: Any) -> dict[str, dict[str, int]]:
    """The drops the engine charged, by node and cause (``flow.stats()``)."""
    charged: dict[str, dict[str, int]] = {}
    try:
        for stats in flow.stats().values():
            for node, causes in getattr(stats, "drops", {}).items():
                for cause, count in causes.items():
                    charged.setdefault(node, {})[cause] = charged.get(node, {}).get(cause, 0) + int(count)
    except Exception:
        pass
    return charged


def _child(flow_type: str, graph: str, items: int, rate: float, slow_s: float, folder: Path) -> int:
    import asyncflow
    from asyncflow.core import BATCH, REALTIME, Flow
    from benchmarks._fanout_nodes import FastConsumer, PacedSource, SlowConsumer, write_json

    source = PacedSource(items, rate, str(folder / "source.json"), name="source")
    consumers = [FastConsumer(str(folder / "fast.json"), name="fast")(source)]
    if graph == "fanout":
        consumers.insert(0, SlowConsumer(str(folder / "slow.json"), slow_s, name="slow")(source))
    flow = Flow([source], consumers, flow_type=BATCH if flow_type == "BATCH" else REALTIME)
    t_start = time.time()
    asyncflow.run(flow, progress=False, report=False)
    t_end = time.time()
    write_json(str(folder / "run.json"), {
        "t_start_wall": t_start, "t_end_wall": t_end, "drops": _drops(flow),
        "queue_size": flow.options.queue_size, "batch_size": flow.options.batch_size,
        "version": metadata.version("asyncflow"),
    })
    return 0


# -- parent side ----------------------------------------------------------------------------------------------------


def _default_timeout(graph: str, flow_type: str, items: int, rate: float, slow_s: float) -> float:
    # BATCH's slow branch takes every item: items x slow_s; start-up and a margin on top
    work = items * slow_s if graph == "fanout" and flow_type == "BATCH" else 0.0
    return items / rate + work + 60.0


def _branch(records: list[list[float]]) -> dict[str, Any]:
    """One consumer's figures from its ``(index, emitted_at, arrival)`` records."""
    indices = [int(r[0]) for r in records]
    latencies = [float(r[2]) - float(r[1]) for r in records]
    arrivals = [float(r[2]) for r in records]
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    breaks = sum(1 for a, b in itertools.pairwise(indices) if b <= a)
    return {
        "received": len(records),
        "rate_per_s": (len(records) - 1) / span if span > 0 else float("nan"),
        "span_s": span,
        "latency_p50_s": _percentile(latencies, 50),
        "latency_p99_s": _percentile(latencies, 99),
        "latency_max_s": max(latencies) if latencies else float("nan"),
        "in_order": breaks == 0,
        "order_breaks": breaks,
        "duplicates": len(indices) - len(set(indices)),
    }


def _phases(source: dict[str, Any], slow: list[list[float]] | None, rate: float, bounded: bool) -> dict[str, Any]:
    """The source's two phases: on schedule until it first falls ``ON_SCHEDULE_S`` behind, then held back.

    ``held_rate_per_s``: items a second from the last item on schedule to the last item (None if
    never behind).  ``stalls``: the gaps between two emissions longer than the schedule's by more
    than ``ON_SCHEDULE_S`` (``longest_stall_s``, ``stalled_s`` in all): held back, the source emits
    nothing for a while, then what is due at once (it never skips an item).  ``window`` (``bounded``:
    BATCH, where the slow branch gets every item): the most items emitted that the slow branch had
    not started on yet.
    """
    late, emitted_at = source["lateness_s"], source["emitted_at"]
    behind = next((i for i, x in enumerate(late) if x > ON_SCHEDULE_S), None)
    gaps = [b - a - 1 / rate for a, b in itertools.pairwise(emitted_at)]
    stalls = [g for g in gaps if g > ON_SCHEDULE_S]
    found: dict[str, Any] = {"on_schedule_items": len(late) if behind is None else behind,
                             "on_schedule_s": (len(late) if behind is None else behind) / rate,
                             "held_rate_per_s": None, "stalls": len(stalls),
                             "longest_stall_s": max(stalls, default=0.0), "stalled_s": sum(stalls), "window": None}
    if behind:
        span = emitted_at[-1] - emitted_at[behind - 1]
        found["held_rate_per_s"] = (len(emitted_at) - behind) / span if span > 0 else None
    if slow is not None and bounded:
        started = sorted(float(r[2]) for r in slow)
        found["window"] = max((i + 1 - bisect.bisect_right(started, t) for i, t in enumerate(emitted_at)), default=0)
    return found


def measure(flow_type: str, graph: str, items: int, rate: float = RATE, slow_s: float = SLOW_S,
            timeout: float | None = None) -> dict[str, Any]:
    """Run one graph under one flow type in a fresh interpreter; its figures (raises on failure or timeout)."""
    if flow_type not in FLOW_TYPES or graph not in GRAPHS:
        raise ValueError(f"flow type must be one of {FLOW_TYPES} and graph one of {tuple(GRAPHS)}")
    limit = timeout if timeout is not None else _default_timeout(graph, flow_type, items, rate, slow_s)
    with tempfile.TemporaryDirectory(prefix="asyncflow-fanout-") as scratch:
        folder = Path(scratch)
        args = [sys.executable, "-m", "benchmarks.fanout", "--child", flow_type, graph, "--items", str(items),
                "--rate", str(rate), "--slow-ms", str(slow_s * 1000), "--dir", str(folder)]
        code, out, err = _run_group(args, limit, folder)
        names = ["run", "source", "fast"] + (["slow"] if graph == "fanout" else [])
        files = {name: folder / f"{name}.json" for name in names}
        if code != 0 or not all(p.exists() for p in files.values()):
            missing = [name for name, p in files.items() if not p.exists()]
            raise RuntimeError(f"exit code {code}, missing {missing}: {_tail(err or out)}")
        data = {name: json.loads(p.read_text()) for name, p in files.items()}
    run, source = data["run"], data["source"]
    late = source["lateness_s"]
    t0 = source["emitted_at"][0] if source["emitted_at"] else run["t_start_wall"]
    slow = data["slow"]["records"] if "slow" in data else None
    result: dict[str, Any] = {
        "version": run["version"],
        "queue_size": run["queue_size"],
        "batch_size": run["batch_size"],
        "run_s": run["t_end_wall"] - run["t_start_wall"],
        "startup_s": t0 - run["t_start_wall"],
        "stream_s": run["t_end_wall"] - t0,
        "emitted": source["emitted"],
        "source_rate_per_s": ((len(source["emitted_at"]) - 1) / (source["emitted_at"][-1] - t0)
                              if len(source["emitted_at"]) > 1 else float("nan")),
        "lateness_p99_s": _percentile(late, 99),
        "lateness_max_s": max(late) if late else float("nan"),
        **_phases(source, slow, rate, flow_type == "BATCH"),
        "fast": _branch(data["fast"]["records"]),
        "slow": _branch(slow) if slow is not None else None,
        "engine_drops": run["drops"],
    }
    return result


def fanout(rate: float = RATE, seconds: float = SECONDS, slow_s: float = SLOW_S,
           flow_types: Sequence[str] = FLOW_TYPES, timeout: float | None = None,
           progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Both graphs under each flow type; the figures as a dict.

    ``result["runs"][flow_type][graph]`` is ``measure()``'s dict, or ``{"error": ...}``.
    """
    unknown = sorted(set(flow_types) - set(FLOW_TYPES))
    if unknown:
        raise ValueError(f"unknown flow type(s): {', '.join(unknown)}")
    items = max(1, round(rate * seconds))
    result: dict[str, Any] = {
        "rate": rate, "items": items, "clip_s": items / rate, "slow_s": slow_s, "graphs": dict(GRAPHS),
        "options": "default flow_options", "on_schedule_s": ON_SCHEDULE_S, "runs": {},
    }
    for flow_type in flow_types:
        entry: dict[str, Any] = {}
        for graph in GRAPHS:
            if progress:
                progress(f"fanout {flow_type} {graph}: {items} items at {rate:g}/s"
                         + (f", slow branch {slow_s * 1000:g} ms/item" if graph == "fanout" else ""))
            try:
                entry[graph] = measure(flow_type, graph, items, rate, slow_s, timeout)
            except Exception as exc:
                entry[graph] = {"error": _error(exc)}
                if progress:
                    progress(f"{flow_type} {graph}: {_error(exc)}")
        result["runs"][flow_type] = entry
    return result


# -- the table ------------------------------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _age(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1 else f"{_ms(seconds)} ms"


def _lost(e: dict[str, Any]) -> str:
    """``"; engine drops: fast 23 (full)"``: the drops the engine charged to each node, if any."""
    said = [f"{node} {sum(c.values())} ({', '.join(c)})" for node, c in sorted(e["engine_drops"].items())]
    return f"; engine drops: {', '.join(said)}" if said else ""


def reading(flow_type: str, graph: str, e: dict[str, Any], base: dict[str, Any] | None, rate: float,
            slow_s: float) -> str:
    """One line saying what a run's figures mean."""
    if "error" in e:
        return f"error: {e['error']}"
    fast = e["fast"]
    got = "every item" if fast["received"] == e["emitted"] else f"{fast['received']}/{e['emitted']} items"
    if graph == "fast_only":
        return (f"baseline: the fast branch alone gets {got}, p99 {_ms(fast['latency_p99_s'])} ms after emission; "
                f"source late at most {_ms(e['lateness_max_s'])} ms{_lost(e)}")
    slow = e["slow"]
    vs = ""
    if base and "fast" in base:
        vs = f" (alone: {_ms(base['fast']['latency_p99_s'])} ms)"
    head = (f"fast branch gets {got} p99 {_ms(fast['latency_p99_s'])} ms after emission{vs}, while the slow "
            f"branch's p50 is {_age(slow['latency_p50_s'])}")
    if flow_type == "BATCH":
        if e["held_rate_per_s"] is None:
            return (f"{head}; the source stayed on schedule (the slow branch's window reached {e['window']} "
                    f"items, never full: raise --seconds to see the source held back)")
        times = "once" if e["stalls"] == 1 else f"{e['stalls']} times"
        return (f"{head}; source on schedule for {e['on_schedule_items']} items ({e['on_schedule_s']:.2f} s), "
                f"then held back by the slow branch ({1 / slow_s:.0f}/s, at most {e['window']} items behind) "
                f"{times}, up to {e['longest_stall_s']:.1f} s, emitting what was due in a burst after: "
                f"{e['held_rate_per_s']:.0f}/s from then on, the cost of bounded memory; the fast branch "
                f"follows the source, not the slow branch")
    ideal = min(e["emitted"], math.floor(e["emitted"] / rate / slow_s))
    return (f"{head}; the slow branch keeps the newest it can ({slow['received']}, ~{ideal} ideal), "
            f"the source is never held back (late at most {_ms(e['lateness_max_s'])} ms){_lost(e)}")


def _row(flow_type: str, graph: str, e: dict[str, Any], base: dict[str, Any] | None, rate: float,
         slow_s: float) -> list[str]:
    label = [flow_type, "fan-out" if graph == "fanout" else "fast only"]
    if "error" in e:
        return [*label, "", "", "", "", "", "", reading(flow_type, graph, e, base, rate, slow_s)]
    fast, slow = e["fast"], e["slow"]
    order = "yes" if fast["in_order"] else f"NO ({fast['order_breaks']})"
    return [*label, f"{fast['received']}/{e['emitted']}", f"{fast['rate_per_s']:.0f}",
            f"{_ms(fast['latency_p50_s'])} / {_ms(fast['latency_p99_s'])} / {_ms(fast['latency_max_s'])}", order,
            "-" if slow is None else f"{slow['received']}/{e['emitted']}",
            f"{e['lateness_p99_s']:.3f} / {e['lateness_max_s']:.3f}", reading(flow_type, graph, e, base, rate, slow_s)]


def brief(e: dict[str, Any] | None) -> str:
    """The fast branch of one run in a line (for ``benchmarks.run_all``'s table)."""
    if not e:
        return "not run"
    if "error" in e:
        return f"error: {e['error']}"
    fast = e["fast"]
    return (f"fast got {fast['received']}/{e['emitted']} at {fast['rate_per_s']:.0f}/s, latency p50 "
            f"{_ms(fast['latency_p50_s'])} / p99 {_ms(fast['latency_p99_s'])} / max {_ms(fast['latency_max_s'])} ms"
            f"{'' if fast['in_order'] else ', out of order'}")


def brief_source(e: dict[str, Any] | None) -> str:
    """The slow branch and the source of one fan-out run in a line (for ``benchmarks.run_all``'s table)."""
    if not e or "error" in e:
        return brief(e)
    text = (f"slow got {e['slow']['received']}/{e['emitted']}; source late p99 {e['lateness_p99_s']:.3f} / "
            f"max {e['lateness_max_s']:.3f} s")
    if e["held_rate_per_s"] is not None:
        text += (f"; on schedule for {e['on_schedule_items']} items, then held back ({e['stalls']} stall(s), "
                 f"longest {e['longest_stall_s']:.1f} s; window {e['window']}): {e['held_rate_per_s']:.0f}/s")
    elif e["window"] is not None:
        text += f", on schedule throughout (window reached {e['window']}, never full)"
    return text


def format_table(result: dict[str, Any]) -> str:
    """The plain table of ``fanout()``'s result, one row per run with its reading."""
    rate, items, slow_s = result["rate"], result["items"], result["slow_s"]
    lines = [f"fanout: source paced at {rate:g} items/s, {items} items (clip {result['clip_s']:.2f} s), slow branch "
             f"{slow_s * 1000:g} ms/item ({1 / slow_s:.0f}/s), fast branch no work; {result['options']}",
             "latency = arrival at the consumer - emission; source late = emission - schedule; on schedule = "
             f"late <= {result['on_schedule_s'] * 1000:g} ms"]
    header = ["flow", "graph", "fast got", "fast /s", "fast lat p50/p99/max ms", "in order", "slow got",
              "src late p99/max s", "reading"]
    rows: list[list[str]] = []
    for flow_type, entry in result["runs"].items():
        base = entry.get("fast_only")
        base = base if base and "error" not in base else None
        for graph, e in entry.items():
            rows.append(_row(flow_type, graph, e, base, rate, slow_s))
    widths = [max([len(header[i])] + [len(r[i]) for r in rows]) for i in range(len(header) - 1)]
    table = [" | ".join(h.ljust(w) for h, w in zip(header, [*widths, 0], strict=True)).rstrip(),
             "-+-".join("-" * w for w in [*widths, len(header[-1])])]
    for r in rows:
        table.append(" | ".join(c.ljust(w) for c, w in zip(r, [*widths, 0], strict=True)).rstrip())
    for flow_type, entry in result["runs"].items():
        e = entry.get("fanout", {})
        if "queue_size" in e:
            window = "" if e["window"] is None else (
                f"; slow branch's window (most items emitted that it had not started on): {e['window']}")
            lines.append(f"  {flow_type}: queue_size {e['queue_size']}, batch_size {e['batch_size']}{window}")
    return "\n".join([*lines, "", *table])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fanout", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=RATE, help="source items a second (500)")
    parser.add_argument("--seconds", type=float, default=SECONDS, help="seconds of items on schedule (4)")
    parser.add_argument("--slow-ms", type=float, default=SLOW_S * 1000, help="slow branch ms per item (20)")
    parser.add_argument("--flow-types", default=",".join(FLOW_TYPES), help="comma-separated (BATCH,REALTIME)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per run before it is killed (default: clip + BATCH's slow work + 60)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    parser.add_argument("--child", nargs=2, metavar=("FLOW_TYPE", "GRAPH"), help=argparse.SUPPRESS)
    parser.add_argument("--items", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.seconds <= 0 or args.slow_ms < 0:
        parser.error("--rate and --seconds must be > 0, --slow-ms >= 0")
    if args.child:
        flow_type, graph = args.child
        if flow_type not in FLOW_TYPES or graph not in GRAPHS or not args.dir or not args.items:
            parser.error("--child FLOW_TYPE GRAPH --items N --dir DIR")
        return _child(flow_type, graph, args.items, args.rate, args.slow_ms / 1000, Path(args.dir))
    flow_types = [f.strip().upper() for f in args.flow_types.split(",") if f.strip()]
    try:
        result = fanout(args.rate, args.seconds, args.slow_ms / 1000, flow_types, args.timeout,
                        progress=lambda m: print(f"  … {m}", file=sys.stderr, flush=True))
    except ValueError as exc:
        parser.error(str(exc))
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
