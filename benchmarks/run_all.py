"""Every workload of issue 4, asyncflow against its baselines, in one process tree.

    python -m benchmarks.run_all [--quick] [--out benchmarks/results] [--repeat R] [--cores C] [--only a,b]

Prints one table (workload | asyncflow | baseline | ratio | target | met?) and
writes ``results.json`` (machine, versions, settings, every figure),
``throughput.png`` and ``speedup.png`` to ``--out``.

Workloads (``--only`` takes these names):

- ``tiny``: ``IntProducer → IdentityProcessor → consumer``, with the nodes' batch methods
  (called once a block of rows) against a 3-process chain of ``multiprocessing.Queue``
  moving 256 ints a put with no per-item code (target ≥ 1.0x), and with per-item
  nodes (a call per item, as a user's own nodes) against the same chain calling the
  very same node methods per item (the engine's cost alone), the chain calling bare
  functions per item, the chain moving 1 a put, videoflow 0.2.10 and ``pypeln.process.map``
  x2.  asyncflow and the 256-a-put chains run in turn, round after round.  asyncflow
  runs with its defaults (at most ``queue_size`` = 1024 items unacknowledged per hop,
  as the chain's bounded queues hold about 1024, and frames of up to 512 items), and
  once more with frames of 256 items, the chain's put size.
- ``frames``: 1080p uint8 frames through the same graph, against the frames pickled
  through the ``Queue`` chain (target ≥ 8x) and through shared-memory slots.
- ``cpu``: a processor spinning ~4 ms of pure Python an item, ``nb_tasks`` = 1, 2 (and
  4, 8, 14 as far as ``--cores`` allows), against ``multiprocessing.Pool``; the speedup
  of ``nb_tasks=2`` over 1 is the target (≥ 1.8x); start-up is reported apart.
- ``latency``: 500 items/s through 3 processes, p99 end to end (target ≤ 2 ms), with a
  producer that blocks in ``time.sleep`` and one that awaits ``asyncio.sleep``,
  against the 1-a-put ``Queue`` chain.
- ``memory``: RSS / USS / fds of an idle task (against a bare Python interpreter) and
  what one more node (a task and its channel) adds.
- ``freshness``: a 30 fps camera (150 frames) through ``REALTIME`` flows, asyncflow against
  videoflow 0.2.10's ``REALTIME``: a consumer of 100 ms a frame (S1), a 60 ms detector (S2),
  the detector at ``nb_tasks=2`` (S3); frames kept, age at the consumer p50 / p99 / max,
  capture order, the camera's lateness (``benchmarks.freshness``; targets: S1 stream ≤ clip
  + 0.5 s and p99 ≤ 0.07 s, S2 p99 ≤ 0.11 s, S3 ≥ 1.8x S2's frames, p99 ≤ 0.08 s, in order).
- ``fanout``: a source paced at 500 items/s for 4 s fanning out to a slow consumer (20 ms an
  item) and a fast one, in ``BATCH`` and ``REALTIME``, against the fast consumer alone: the fast
  branch's items, rate, latency p50 / p99 / max and order, the slow branch's items, the source's
  lateness and (``BATCH``) its two phases: on schedule until the slow branch's window is full,
  then held back by it: stalls, then bursts (``benchmarks.fanout``; reported, no target).

Throughputs are steady state: from the first item's arrival at the consumer to the
end of the stream there (``benchmarks._common.Rate``); each is the best of
``--repeat`` runs (every run is kept in the JSON).  ``--quick`` uses small sizes for
a smoke run (well under a minute): its figures say that everything runs, not how fast.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from . import baselines, fanout, freshness, peers, workloads
from ._common import Rate, calibrate_spin, machine_info, write_json

__all__ = ["FULL", "QUICK", "Sizes", "main"]

WORKLOADS = ("tiny", "frames", "cpu", "latency", "memory", "freshness", "fanout")
SPEEDUP_LEVELS = (1, 2, 4, 8, 14)


@dataclass(frozen=True)
class Sizes:
    """How much each workload moves."""

    tiny: int  # asyncflow and the 256-a-put chain
    tiny_one_a_put: int  # the 1-a-put chain (~76 k items/s)
    videoflow: int  # ~7 k items/s
    pypeln: int  # ~2.4 k items/s
    frames: int  # asyncflow and shared-memory slots
    frames_pickled: int  # ~56 frames/s
    cpu_per_task: int  # items per task at ~4 ms each
    latency_s: float  # seconds at 500 items/s
    repeat: int  # best of this many runs (throughputs)
    freshness_frames: int = freshness.FRAMES  # camera frames at 30 fps (one run per engine and scenario)
    fanout_seconds: float = fanout.SECONDS  # seconds at 500 items/s (BATCH's slow branch takes items x 20 ms)


FULL = Sizes(
    tiny=5_000_000, tiny_one_a_put=200_000, videoflow=20_000, pypeln=10_000, frames=1_000, frames_pickled=150,
    cpu_per_task=750, latency_s=4.0, repeat=3,
)
QUICK = Sizes(
    tiny=200_000, tiny_one_a_put=20_000, videoflow=2_000, pypeln=1_000, frames=60, frames_pickled=20,
    cpu_per_task=60, latency_s=1.0, repeat=1, freshness_frames=60, fanout_seconds=1.0,
)


# -- measuring ----------------------------------------------------------------------------------------------


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def best_of(repeat: int, fn: Callable[[], Rate]) -> dict[str, Any]:
    """Run ``fn`` ``repeat`` times: the best ``Rate`` as a dict, with every run's ``per_s`` in ``runs``.

    A peer that is not there gives ``{"unavailable": reason}``; any other failure
    ``{"error": ...}`` (the traceback goes to stderr), so one broken row does not
    cost the rest of the table.
    """
    rates: list[Rate] = []
    for _ in range(repeat):
        try:
            rates.append(fn())
        except peers.Unavailable as exc:
            return {"unavailable": str(exc)}
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            return {"error": _error(exc)}
    best = max(rates, key=lambda r: r.per_s)
    return {**best.as_dict(), "runs": [r.per_s for r in rates]}


def interleaved(repeat: int, fns: dict[str, Callable[[], Rate]]) -> dict[str, dict[str, Any]]:
    """``best_of`` for several contenders run in turn (A, B, C, A, B, C, ...).

    On a machine whose speed drifts (a shared VM), runs taken side by side compare
    better than two series taken one after the other.  Each entry also has the
    ``median`` of its runs.
    """
    rates: dict[str, list[Rate]] = {name: [] for name in fns}
    out: dict[str, dict[str, Any]] = {}
    for _ in range(repeat):
        for name, fn in fns.items():
            if name in out:
                continue  # failed or unavailable: keep the reason
            try:
                rates[name].append(fn())
            except peers.Unavailable as exc:
                out[name] = {"unavailable": str(exc)}
            except Exception as exc:
                traceback.print_exc(file=sys.stderr)
                out[name] = {"error": _error(exc)}
    for name, runs in rates.items():
        if name not in out and runs:
            best = max(runs, key=lambda r: r.per_s)
            values = sorted(r.per_s for r in runs)
            out[name] = {**best.as_dict(), "runs": [r.per_s for r in runs], "median": values[len(values) // 2]}
    return out


def _guard(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return fn()
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        return {"error": _error(exc)}


def _progress(message: str) -> None:
    print(f"  … {message}", file=sys.stderr, flush=True)


def run_tiny(sizes: Sizes) -> dict[str, Any]:
    r = max(sizes.repeat, 7) if sizes.repeat > 1 else 1  # the chains' speed varies run to run: more rounds
    n = sizes.tiny
    _progress(f"tiny items: asyncflow (batch and per-item nodes) and the mp.Queue 256-a-put chains, "
              f"{n} items, {r} rounds side by side")
    runs = interleaved(r, {
        "asyncflow": lambda: workloads.tiny_items(n),
        "asyncflow_per_item": lambda: workloads.tiny_items(n, per_item=True),
        "asyncflow_frames_of_256": lambda: workloads.tiny_items(n, {"batch_size": 256}),
        "mp_queue_256": lambda: baselines.queue_chain(n, 256),
        "mp_queue_256_per_item": lambda: baselines.queue_chain(n, 256, per_item=True),
        "mp_queue_256_same_nodes": lambda: baselines.queue_chain(n, 256, per_item=True, nodes=True),
    })
    result: dict[str, Any] = {
        "asyncflow": runs.pop("asyncflow"),
        "asyncflow_per_item": runs.pop("asyncflow_per_item"),
        "asyncflow_frames_of_256": runs.pop("asyncflow_frames_of_256"),
        "baselines": runs,
    }
    base = result["baselines"]
    _progress("tiny items: mp.Queue chain, one a put")
    base["mp_queue_1"] = best_of(sizes.repeat, lambda: baselines.queue_chain(sizes.tiny_one_a_put, 1))
    _progress("tiny items: videoflow, pypeln")
    base["videoflow"] = best_of(sizes.repeat, lambda: peers.videoflow_rate(sizes.videoflow))
    base["pypeln"] = best_of(sizes.repeat, lambda: peers.pypeln_rate(sizes.pypeln))
    return result


def run_frames(sizes: Sizes) -> dict[str, Any]:
    r = sizes.repeat
    _progress(f"1080p frames: asyncflow, {sizes.frames} frames")
    result: dict[str, Any] = {"asyncflow": best_of(r, lambda: workloads.frames(sizes.frames)), "baselines": {}}
    _progress("1080p frames: pickled mp.Queue chain, shared-memory slots")
    result["baselines"]["pickled_mp_queue"] = best_of(r, lambda: baselines.pickled_frames(sizes.frames_pickled))
    result["baselines"]["shm_slots"] = best_of(r, lambda: baselines.shm_frames(sizes.frames))
    return result


def run_cpu(sizes: Sizes, levels: Sequence[int], loops: int) -> dict[str, Any]:
    r = sizes.repeat
    result: dict[str, Any] = {"loops": loops, "levels": list(levels), "asyncflow": {}, "pool": {}}
    for k in levels:
        n = sizes.cpu_per_task * k
        _progress(f"~4 ms CPU items: asyncflow nb_tasks={k}, Pool({k}), {n} items")
        result["asyncflow"][str(k)] = best_of(r, functools.partial(workloads.cpu_bound, n, k, loops))
        result["pool"][str(k)] = best_of(r, functools.partial(baselines.pool_map, n, k, loops))
    for side in ("asyncflow", "pool"):
        one = result[side].get("1", {}).get("per_s")
        result[f"{side}_speedup"] = {
            k: (v["per_s"] / one if one and "per_s" in v else None) for k, v in result[side].items()
        }
    one = result["asyncflow"].get("1", {}).get("per_s")
    result["ms_per_item"] = 1000 / one if one else None
    return result


def run_latency(sizes: Sizes) -> dict[str, Any]:
    seconds = sizes.latency_s
    _progress(f"latency: 500 items/s for {seconds:g} s, blocking and async producers, mp.Queue chain")
    return {
        "rate": 500,
        "seconds": seconds,
        "asyncflow_blocking": _guard(lambda: workloads.latency(500, seconds, blocking=True)),
        "asyncflow_async": _guard(lambda: workloads.latency(500, seconds, blocking=False)),
        "baseline_mp_queue": _guard(lambda: baselines.queue_chain_latency(500, seconds)),
    }


def run_freshness(sizes: Sizes) -> dict[str, Any]:
    _progress(f"freshness: {sizes.freshness_frames} frames at 30 fps, asyncflow and videoflow REALTIME, S1-S3")
    return _guard(lambda: freshness.freshness(frames=sizes.freshness_frames, progress=_progress))


def run_fanout(sizes: Sizes) -> dict[str, Any]:
    _progress(f"fanout: {fanout.RATE:g} items/s for {sizes.fanout_seconds:g} s, a slow and a fast branch, "
              "BATCH and REALTIME, against the fast branch alone")
    return _guard(lambda: fanout.fanout(seconds=sizes.fanout_seconds, progress=_progress))


def run_memory() -> dict[str, Any]:
    _progress("memory: idle flows of 2 and 6 nodes (in a fresh interpreter), a bare interpreter")
    return {"asyncflow": _guard(workloads.memory_isolated),
            "baseline_idle_process": _guard(baselines.idle_process_memory)}


# -- the table ----------------------------------------------------------------------------------------------


@dataclass
class Row:
    workload: str
    asyncflow: str
    baseline: str
    ratio: str = ""
    target: str = ""
    met: str = ""


def _rate(entry: dict[str, Any] | None, unit: str = "/s") -> str:
    if not entry:
        return "not run"
    if "unavailable" in entry:
        return f"unavailable: {entry['unavailable']}"
    if "error" in entry:
        return f"error: {entry['error']}"
    value = float(entry["per_s"])
    if value >= 1e6:
        return f"{value / 1e6:.2f} M{unit}"
    if value >= 1e4:
        return f"{value / 1e3:.1f} k{unit}"
    return f"{value:,.0f}{unit}"


def _ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> float | None:
    if a and b and "per_s" in a and "per_s" in b and b["per_s"] > 0:
        return float(a["per_s"]) / float(b["per_s"])
    return None


def _x(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def _met(value: float | None, ok: Callable[[float], bool]) -> str:
    return "" if value is None else ("yes" if ok(value) else "NO")


def _rounds_won(mine: dict[str, Any], theirs: dict[str, Any]) -> str:
    """``"k/r"``: the rounds (run side by side, in turn) in which ``mine`` was faster."""
    a, b = mine.get("runs") or [], theirs.get("runs") or []
    if not a or len(a) != len(b):
        return ""
    return f"{sum(x > y for x, y in zip(a, b, strict=True))}/{len(a)}"


def build_rows(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    w = results["workloads"]
    if "tiny" in w:
        af, per_item, base = w["tiny"]["asyncflow"], w["tiny"].get("asyncflow_per_item"), w["tiny"]["baselines"]
        labels = (
            (af, "batch nodes", "mp_queue_256", "mp.Queue chain, 256 a put, no per-item code", "≥ 1.0x"),
            (w["tiny"].get("asyncflow_frames_of_256"), "batch nodes, batch_size=256", "mp_queue_256",
             "mp.Queue chain, 256 a put, no per-item code", ""),
            (per_item, "per-item nodes", "mp_queue_256_same_nodes",
             "mp.Queue chain, 256 a put, calling the same nodes", ""),
            (per_item, "per-item nodes", "mp_queue_256_per_item", "mp.Queue chain, 256 a put, a call per item", ""),
            (per_item, "per-item nodes", "mp_queue_256", "mp.Queue chain, 256 a put, no per-item code", ""),
            (per_item, "per-item nodes", "mp_queue_1", "mp.Queue chain, 1 a put", ""),
            (per_item, "per-item nodes", "videoflow", f"videoflow {peers.VIDEOFLOW_VERSION}", ""),
            (per_item, "per-item nodes", "pypeln", "pypeln process.map x2", ""),
        )
        for mine, kind, key, label, target in labels:
            theirs = base.get(key)
            ratio = _ratio(mine, theirs)
            met = _met(ratio, lambda v: v >= 1.0) if target else ""
            shown = _x(ratio)
            if mine and theirs and "median" in mine and "median" in theirs and theirs["median"] > 0:
                medians = mine["median"] / theirs["median"]
                shown += f" (medians {medians:.2f}x)"
                if target:
                    met = f"best {met}, medians {_met(medians, lambda v: v >= 1.0)}"
                    won = _rounds_won(mine, theirs)
                    if won:
                        met += f", won {won} rounds"
            rows.append(Row(f"tiny items/s, {kind}", _rate(mine), f"{label}: {_rate(theirs)}", shown, target, met))
        if "startup_s" in af and "startup_s" in base.get("mp_queue_256", {}):
            rows.append(Row("tiny items, start-up to 1st item", f"{af['startup_s']:.3f} s",
                            f"mp.Queue chain: {base['mp_queue_256']['startup_s']:.3f} s", target="reported"))
    if "frames" in w:
        af, base = w["frames"]["asyncflow"], w["frames"]["baselines"]
        ratio = _ratio(af, base.get("pickled_mp_queue"))
        rows.append(Row("1080p frames, frames/s", _rate(af), f"pickled mp.Queue: {_rate(base.get('pickled_mp_queue'))}",
                        _x(ratio), "≥ 8x", _met(ratio, lambda v: v >= 8.0)))
        ratio = _ratio(af, base.get("shm_slots"))
        shm = _rate(base.get("shm_slots"))
        rows.append(Row("1080p frames, frames/s", _rate(af), f"shm slots, 1 copy in+out: {shm}", _x(ratio)))
    if "cpu" in w:
        cpu = w["cpu"]
        for k in cpu["levels"]:
            af, pool = cpu["asyncflow"].get(str(k)), cpu["pool"].get(str(k))
            rows.append(Row(f"~4 ms CPU, nb_tasks={k}, items/s", _rate(af), f"Pool({k}).map: {_rate(pool)}",
                            _x(_ratio(af, pool))))
        for k in cpu["levels"][1:]:
            s_af, s_pool = cpu["asyncflow_speedup"].get(str(k)), cpu["pool_speedup"].get(str(k))
            target = "≥ 1.8x" if k == 2 else ""
            rows.append(Row(f"~4 ms CPU, speedup {k} vs 1", _x(s_af), f"Pool: {_x(s_pool)}",
                            _x(s_af / s_pool if s_af and s_pool else None), target,
                            _met(s_af, lambda v: v >= 1.8) if target else ""))
        for k in cpu["levels"]:
            af, pool = cpu["asyncflow"].get(str(k), {}), cpu["pool"].get(str(k), {})
            if "startup_s" in af and "startup_s" in pool:
                rows.append(Row(f"~4 ms CPU, nb_tasks={k}, start-up", f"{af['startup_s']:.3f} s",
                                f"Pool({k}) ready: {pool['startup_s']:.3f} s", target="reported"))
    if "latency" in w:
        lat = w["latency"]
        base = lat["baseline_mp_queue"]
        base_text = f"mp.Queue chain: {_ms(base)}"
        for key, label in (("asyncflow_blocking", "time.sleep"), ("asyncflow_async", "asyncio.sleep")):
            entry = lat[key]
            p99 = entry.get("p99_ms")
            rows.append(Row(f"latency at 500/s, producer {label}", _ms(entry), base_text, "", "p99 ≤ 2 ms",
                            _met(p99, lambda v: v <= 2.0)))
    if "memory" in w:
        mem = w["memory"]
        af, bare = mem["asyncflow"], mem["baseline_idle_process"]
        if "error" in af:
            rows.append(Row("memory", f"error: {af['error']}", ""))
        else:
            idle, per = af["idle_task"], af["per_node"]
            bare_text = (f"bare python: {bare['rss_mib']:.1f} / {bare['uss_mib']:.1f} MiB, {bare['fds']:.0f} fds"
                         if "rss_mib" in bare else f"error: {bare.get('error')}")
            ratio = idle["rss_mib"] / bare["rss_mib"] if "rss_mib" in bare else None
            rows.append(Row("idle task, RSS / USS, fds", f"{idle['rss_mib']:.1f} / {idle['uss_mib']:.1f} MiB, "
                            f"{idle['fds']:.0f} fds", bare_text, _x(ratio), "reported"))
            rows.append(Row("one more node (task + channel)", f"{per['rss_mib']:.1f} / {per['uss_mib']:.1f} MiB, "
                            f"{per['fds']:.0f} fds (+{per['parent_fds']:.0f} in parent)", "", "", "reported"))
    if "freshness" in w:
        fresh = w["freshness"]
        if "error" in fresh:
            rows.append(Row("freshness", f"error: {fresh['error']}", ""))
        else:
            frames, vf = fresh["frames"], fresh["videoflow_version"] or ""
            for name, entry in fresh["scenarios"].items():
                targets = entry.get("targets", [])
                met = ", ".join("n/a" if t["met"] is None else ("yes" if t["met"] else "NO") for t in targets)
                rows.append(Row(f"freshness {name}: {entry['description']}",
                                freshness.brief(entry.get("asyncflow"), frames),
                                (f"videoflow {vf}: " if vf else "") + freshness.brief(entry.get("videoflow"), frames),
                                "", "; ".join(t["target"] for t in targets), met))
    if "fanout" in w:
        fan = w["fanout"]
        if "error" in fan:
            rows.append(Row("fanout", f"error: {fan['error']}", ""))
        else:
            for flow_type, entry in fan["runs"].items():
                mine, alone = entry.get("fanout"), entry.get("fast_only")
                p99 = None
                if mine and alone and "fast" in mine and "fast" in alone and alone["fast"]["latency_p99_s"] > 0:
                    p99 = mine["fast"]["latency_p99_s"] / alone["fast"]["latency_p99_s"]
                rows.append(Row(f"fanout {flow_type}: fast branch (slow branch {fan['slow_s'] * 1000:g} ms/item)",
                                fanout.brief(mine), f"fast branch alone: {fanout.brief(alone)}",
                                "" if p99 is None else f"p99 {p99:.2f}x", "reported"))
                rows.append(Row(f"fanout {flow_type}: slow branch, source", fanout.brief_source(mine), "",
                                target="reported"))
    return rows


def _ms(entry: dict[str, Any]) -> str:
    if "error" in entry:
        return f"error: {entry['error']}"
    return f"p50 {entry['p50_ms']:.2f} / p99 {entry['p99_ms']:.2f} / max {entry['max_ms']:.2f} ms"


def format_table(rows: Sequence[Row]) -> str:
    header = Row("workload", "asyncflow", "baseline", "ratio", "target", "met?")
    table = [asdict(header), *(asdict(r) for r in rows)]
    keys = list(table[0])
    widths = {k: max(len(str(r[k])) for r in table) for k in keys}
    lines = []
    for i, r in enumerate(table):
        lines.append(" | ".join(str(r[k]).ljust(widths[k]) for k in keys).rstrip())
        if i == 0:
            lines.append("-+-".join("-" * widths[k] for k in keys))
    return "\n".join(lines)


# -- the plots ----------------------------------------------------------------------------------------------


def _save(plt: Any, fig: Any, title: str, size: int, path: Path) -> str:
    """Title, lay out, write and close a figure; its path."""
    fig.suptitle(title, fontsize=size)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def plot(results: dict[str, Any], out: Path) -> list[str]:
    """Write throughput.png and speedup.png; return the files written (none without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plots skipped: matplotlib is not installed (make bench installs it)", file=sys.stderr)
        return []
    written: list[str] = []
    w = results["workloads"]
    panels: list[tuple[str, list[tuple[str, dict[str, Any] | None]]]] = []
    if "tiny" in w:
        b = w["tiny"]["baselines"]
        panels.append(("tiny items (items/s)", [
            ("asyncflow\nbatch nodes", w["tiny"]["asyncflow"]),
            ("asyncflow\nper-item", w["tiny"].get("asyncflow_per_item")),
            ("mp.Queue\n256/put", b.get("mp_queue_256")),
            ("mp.Queue 256\n+ same nodes", b.get("mp_queue_256_same_nodes")),
            ("mp.Queue 256\n+ item calls", b.get("mp_queue_256_per_item")),
            ("mp.Queue\n1/put", b.get("mp_queue_1")), ("videoflow", b.get("videoflow")), ("pypeln", b.get("pypeln")),
        ]))
    if "frames" in w:
        b = w["frames"]["baselines"]
        panels.append(("1080p frames (frames/s)", [
            ("asyncflow", w["frames"]["asyncflow"]), ("pickled\nmp.Queue", b.get("pickled_mp_queue")),
            ("shm slots", b.get("shm_slots")),
        ]))
    if "cpu" in w:
        bars: list[tuple[str, dict[str, Any] | None]] = []
        for k in w["cpu"]["levels"]:
            bars.append((f"asyncflow\nnb_tasks={k}", w["cpu"]["asyncflow"].get(str(k))))
            bars.append((f"Pool({k})", w["cpu"]["pool"].get(str(k))))
        panels.append(("~4 ms CPU items (items/s)", bars))
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(5 + 3.2 * len(panels), 4.8), squeeze=False)
        for ax, (title, bars) in zip(axes[0], panels, strict=True):
            labels = [label for label, _ in bars]
            values = [float(e["per_s"]) if e and "per_s" in e else 0.0 for _, e in bars]
            colors = ["tab:blue" if label.startswith("asyncflow") else "tab:gray" for label in labels]
            ax.bar(range(len(values)), values, color=colors)
            ax.set_xticks(range(len(values)), labels, fontsize=8)
            ax.set_title(title)
            if title.startswith("tiny") and any(values):
                ax.set_yscale("log")
            for i, v in enumerate(values):
                ax.annotate(f"{v:,.0f}" if v else "n/a", (i, v), ha="center", va="bottom", fontsize=7)
        written.append(_save(plt, fig, _subtitle(results), 9, out / "throughput.png"))
    if "cpu" in w:
        cpu = w["cpu"]
        levels = cpu["levels"]
        fig, ax = plt.subplots(figsize=(6.4, 4.8))
        ax.plot(levels, levels, "k:", label="ideal")
        for side, label, style in (("asyncflow_speedup", "asyncflow nb_tasks", "o-"), ("pool_speedup", "Pool workers",
                                                                                          "s--")):
            points = [(k, cpu[side].get(str(k))) for k in levels]
            xs = [k for k, v in points if v is not None]
            ax.plot(xs, [v for _, v in points if v is not None], style, label=label)
        if 2 in levels:
            ax.plot([2], [1.8], "r^", label="target: 1.8x at 2")
        ax.set_xlabel("tasks / workers")
        ax.set_ylabel("speedup over 1 (steady state)")
        ax.set_xticks(levels)
        ax.set_title("~4 ms pure-Python processor: speedup", fontsize=10)
        ax.legend()
        ax.grid(alpha=0.3)
        written.append(_save(plt, fig, _subtitle(results), 8, out / "speedup.png"))
    return written


def _subtitle(results: dict[str, Any]) -> str:
    m = results["machine"]
    mode = "quick (smoke run)" if results["settings"]["quick"] else f"best of {results['settings']['sizes']['repeat']}"
    return f"{m['cpus_usable']} CPUs, Python {m['python']}, {m['platform']} — {mode}"


# -- main ---------------------------------------------------------------------------------------------------


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for dist in ("asyncflow", "aiomultiprocess", "uvloop", "numpy", "psutil", "matplotlib", "videoflow", "pypeln"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run_all", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run (< 60 s)")
    parser.add_argument("--out", default="benchmarks/results", help="folder for results.json and the plots")
    parser.add_argument("--repeat", type=int, default=None, help="best of R runs per throughput (3; quick: 1)")
    parser.add_argument("--cores", type=int, default=None,
                        help="cores to assume for the speedup curve (default: the usable CPUs)")
    parser.add_argument("--only", default=",".join(WORKLOADS), help=f"comma-separated subset of {', '.join(WORKLOADS)}")
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(only) - set(WORKLOADS))
    if unknown:
        parser.error(f"--only: unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    sizes = QUICK if args.quick else FULL
    if args.repeat is not None:
        if args.repeat < 1:
            parser.error("--repeat must be >= 1")
        sizes = Sizes(**{**asdict(sizes), "repeat": args.repeat})
    machine = machine_info()
    cores = args.cores or machine["cpus_usable"] or 1
    levels = [k for k in SPEEDUP_LEVELS if k <= max(2, cores)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    loops = calibrate_spin(0.004)
    results: dict[str, Any] = {
        "machine": machine,
        "versions": _versions(),
        "settings": {"quick": args.quick, "sizes": asdict(sizes), "cores": cores, "speedup_levels": levels,
                     "spin_loops_for_4ms": loops, "start_method": "spawn (videoflow: fork, see benchmarks.peers)"},
        "workloads": {},
    }
    w = results["workloads"]
    print(f"asyncflow benchmarks: {machine['cpus_usable']} CPUs, Python {machine['python']}, "
          f"{'quick smoke run' if args.quick else f'best of {sizes.repeat}'}; workloads: {', '.join(only)}",
          flush=True)
    if "tiny" in only:
        w["tiny"] = run_tiny(sizes)
    if "frames" in only:
        w["frames"] = run_frames(sizes)
    if "cpu" in only:
        w["cpu"] = run_cpu(sizes, levels, loops)
    if "latency" in only:
        w["latency"] = run_latency(sizes)
    if "memory" in only:
        w["memory"] = run_memory()
    if "freshness" in only:
        w["freshness"] = run_freshness(sizes)
    if "fanout" in only:
        w["fanout"] = run_fanout(sizes)
    results["elapsed_s"] = time.monotonic() - started

    rows = build_rows(results)
    results["table"] = [asdict(r) for r in rows]
    print()
    print(format_table(rows))
    write_json(out / "results.json", results)
    written = [str(out / "results.json"), *plot(results, out)]
    print(f"\n{results['elapsed_s']:.1f} s; wrote {', '.join(written)}")
    if args.quick:
        print("(--quick: small sizes on whatever else the machine is doing; run without it for figures to quote)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
