"""How fresh live frames are: asyncflow ``REALTIME`` against videoflow 0.2.10's ``REALTIME``.

    python -m benchmarks.freshness [--frames 150] [--fps 30] [--only S1,S2,S3] [--engines asyncflow,videoflow]
                                   [--timeout S] [--json PATH]

A camera paced at ``fps`` (30) emits ``frames`` (150) small frames; each engine runs
the same three graphs with its default options and ``REALTIME`` flow type:

- ``S1``: camera → identity processor → consumer that takes 100 ms a frame;
- ``S2``: camera → "detector" processor that sleeps 60 ms a frame → fast consumer;
- ``S3``: as ``S2`` with the detector at ``nb_tasks=2`` (videoflow: its own
  ``ProcessorNode(nb_tasks=2)``, which it runs in ``REALTIME`` too).

The camera keeps a fixed schedule: frame ``i`` is due at ``t0 + i/fps`` (``t0``: its
first ``next()``); it sleeps until the frame is due and, when it is already late,
emits at once without skipping a frame or shifting the schedule; its *lateness* is
emission time - due time (what backpressure on the camera costs).  An item is
``(index, capture_time, frame)``, ``capture_time = time.time()`` at emission (wall
clock: comparable across processes) and ``frame`` a 64x64x3 uint8 array whose
pixels hold ``index & 255`` (so the consumer can check it got the right one).  The
consumer records, for each item, its *age* (``time.time()`` at the start of
``consume`` - ``capture_time``) and its index, and writes them at ``close()``.  The
processor and the consumer import numpy in ``open()``: a spawned task would otherwise
import it while unpickling the first frame, and that frame's age would be start-up.

Per engine and scenario: the wall time of the run (``run s``: from the call that
starts the flow to its return, process start-up included; ``stream s``: from the
camera's first frame to that return — what the targets use), frames kept (consumed)
of those emitted, age p50 / p99 / max at the consumer (nearest rank: with fewer than
100 frames kept, p99 is the max), whether indices arrived in increasing order, and
the camera's lateness p99 / max.  Next to them, the bound no
engine beats: the work per item (the slowest stage's seconds per item, divided by
its tasks), the ideal count kept (``clip / work``, at most every frame), the age
floor (the work before the consumer) and the p99 age of an engine that keeps the
ideal count (the floor plus up to one frame period of waiting for the freshest frame
when the slowest stage cannot keep up with the camera).

Targets, checked on asyncflow's numbers: ``S1``: stream ≤ clip + 0.5 s and p99 age ≤
0.07 s; ``S2``: p99 age ≤ 0.11 s; ``S3``: kept ≥ 1.8x ``S2``'s, p99 age ≤ 0.08 s,
capture order kept.

Every run is a fresh interpreter (``python -m benchmarks.freshness --child ...``) in
its own process group and a scratch directory, killed with all its processes if it
outlives ``--timeout`` (or if this process is interrupted): asyncflow spawns its
tasks, videoflow forks (it cannot run under spawn, see ``benchmarks._peer_videoflow``),
and videoflow's imports, loggers and log files stay out of this process.  Without
videoflow, its rows say "videoflow not installed" and the rest runs.

``freshness()`` runs it all and returns the figures (``benchmarks.run_all`` puts
them in ``results.json`` under ``workloads.freshness``); ``format_table()`` prints them.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from asyncflow.core import ConsumerNode, ProcessorNode, ProducerNode
from benchmarks._isolated import _error, _percentile, _run_group, _tail

__all__ = [
    "ENGINES",
    "SCENARIOS",
    "AgeConsumer",
    "CameraProducer",
    "Scenario",
    "SleepProcessor",
    "format_table",
    "freshness",
    "measure",
]

FPS = 30.0
FRAMES = 150
FRAME_SHAPE = (64, 64, 3)
ENGINES = ("asyncflow", "videoflow")
VIDEOFLOW_VERSION = "0.2.10"
#: Exit code of a child that could not import its engine.
_NOT_IMPORTABLE = 3


@dataclass(frozen=True)
class Scenario:
    """One graph: camera → processor (``processor_s`` a frame, ``nb_tasks``) → consumer (``consumer_s`` a frame)."""

    name: str
    description: str
    processor_s: float
    consumer_s: float
    nb_tasks: int = 1

    @property
    def work_per_item_s(self) -> float:
        """Seconds per item of the slowest stage, spread over its tasks: no engine keeps more than clip / this."""
        return max(self.processor_s / self.nb_tasks, self.consumer_s)

    def bounds(self, frames: int, fps: float) -> dict[str, float]:
        """What no engine beats: work per item, the ideal count kept, the age floor.

        ``age_floor_s``: the work before the consumer (transport counted as 0).
        ``age_at_ideal_kept_s``: the p99 age of an engine that also keeps the ideal
        count: a stage slower than the camera then starts, as soon as it is free, on
        the freshest frame, up to one frame period old (an engine may instead idle
        until the next frame: fresher, fewer frames).
        """
        clip = frames / fps
        work = self.work_per_item_s
        ideal = frames if work <= 1 / fps else min(frames, math.floor(clip / work))
        wait = 1 / fps if work > 1 / fps else 0.0
        return {"clip_s": clip, "work_per_item_s": work, "ideal_kept": ideal,
                "age_floor_s": self.processor_s, "age_at_ideal_kept_s": self.processor_s + wait}


SCENARIOS: dict[str, Scenario] = {
    "S1": Scenario("S1", "camera -> identity -> consumer 100 ms/frame", 0.0, 0.1),
    "S2": Scenario("S2", "camera -> detector 60 ms/frame -> consumer", 0.06, 0.0),
    "S3": Scenario("S3", "camera -> detector 60 ms/frame, nb_tasks=2 -> consumer", 0.06, 0.0, nb_tasks=2),
}


# -- what the nodes do, whichever engine runs them -----------------------------------------------------------


def _warm_up() -> None:
    """Import numpy in ``open()``, not while unpickling the first frame (a camera app has it before frame 0)."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        pass


def _write_json(path: str, data: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


class _CameraLogic:
    """A camera on a fixed schedule: frame ``i`` due at ``t0 + i/fps``; records its lateness."""

    frames: int
    fps: float
    out_path: str

    def _camera_reset(self) -> None:
        self._i = 0
        self._t0 = 0.0
        self._t0_wall = 0.0
        self._late: list[float] = []
        try:
            import numpy as np

            self._np: Any = np
        except ImportError:  # a bytes payload of the same size
            self._np = None

    def _camera_next(self) -> tuple[int, float, Any]:
        i = self._i
        if i >= self.frames:
            raise StopIteration
        if i == 0:
            self._t0 = time.monotonic()
            self._t0_wall = time.time()
        due = self._t0 + i / self.fps
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._late.append(time.monotonic() - due)  # late: emitted at once, the schedule stays put
        self._i = i + 1
        if self._np is not None:
            frame: Any = self._np.full(FRAME_SHAPE, i & 255, self._np.uint8)
        else:
            frame = bytes([i & 255]) * (FRAME_SHAPE[0] * FRAME_SHAPE[1] * FRAME_SHAPE[2])
        return i, time.time(), frame

    def _camera_close(self) -> None:
        _write_json(self.out_path, {"t0_wall": self._t0_wall, "emitted": self._i, "lateness_s": self._late})


class _ConsumerLogic:
    """Records (index, age at the start of consume), sleeps ``work_s``; writes the records at close()."""

    out_path: str
    work_s: float

    def _consumer_reset(self) -> None:
        _warm_up()
        self._records: list[tuple[int, float]] = []
        self._wrong = 0
        self._t_last = 0.0

    def _consume(self, item: Any) -> None:
        now = time.time()
        index, captured, frame = item
        self._records.append((index, now - captured))
        first = frame[0, 0, 0] if hasattr(frame, "shape") else frame[0]
        if int(first) != index & 255:
            self._wrong += 1
        if self.work_s:
            time.sleep(self.work_s)
        self._t_last = time.time()

    def _consumer_close(self) -> None:
        _write_json(self.out_path, {"records": self._records, "wrong_payload": self._wrong,
                                    "t_last_wall": self._t_last, "t_close_wall": time.time()})


# -- asyncflow nodes (top level: spawned tasks import this module to unpickle them) ----------------------------


class CameraProducer(_CameraLogic, ProducerNode):
    """asyncflow camera: ``frames`` items at ``fps`` on a fixed schedule (blocking sleeps, as a camera read)."""

    def __init__(self, frames: int, fps: float, out_path: str, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.frames = frames
        self.fps = fps
        self.out_path = out_path

    def open(self) -> None:
        self._camera_reset()

    def next(self) -> Any:
        return self._camera_next()

    def close(self) -> None:
        self._camera_close()


class SleepProcessor(ProcessorNode):
    """asyncflow processor: sleeps ``work_s`` a frame (0: identity) and passes the item on."""

    def __init__(self, work_s: float, nb_tasks: int = 1, *, name: str | None = None) -> None:
        super().__init__(nb_tasks=nb_tasks, name=name)
        self.work_s = work_s

    def open(self) -> None:
        _warm_up()

    def process(self, *inputs: Any) -> Any:
        if self.work_s:
            time.sleep(self.work_s)
        return inputs[0]


class AgeConsumer(_ConsumerLogic, ConsumerNode):
    """asyncflow consumer: records each item's age and index, sleeps ``work_s``; writes to ``out_path`` at close()."""

    def __init__(self, out_path: str, work_s: float = 0.0, *, name: str | None = None) -> None:
        super().__init__(name=name)
        self.out_path = out_path
        self.work_s = work_s

    def open(self) -> None:
        self._consumer_reset()

    def consume(self, *inputs: Any) -> None:
        self._consume(inputs[0])

    def close(self) -> None:
        self._consumer_close()


# -- child side: one engine, one scenario, in a fresh interpreter -----------------------------------------------


def _dropped(flow: Any) -> int | None:
    """Items the engine says it dropped (``flow.stats()``), if it says."""
    try:
        return sum(int(getattr(s, "dropped", 0)) for s in flow.stats().values())
    except Exception:
        return None


def _child_asyncflow(sc: Scenario, frames: int, fps: float, folder: Path) -> dict[str, Any]:
    import asyncflow
    from asyncflow.core import REALTIME, Flow

    cam = CameraProducer(frames, fps, str(folder / "camera.json"))
    det = SleepProcessor(sc.processor_s, nb_tasks=sc.nb_tasks)(cam)
    sink = AgeConsumer(str(folder / "consumer.json"), sc.consumer_s)(det)
    flow = Flow([cam], [sink], flow_type=REALTIME)
    t_start = time.time()
    asyncflow.run(flow, progress=False, report=False)
    t_end = time.time()
    return {"t_start_wall": t_start, "t_end_wall": t_end, "engine_dropped": _dropped(flow),
            "version": metadata.version("asyncflow")}


def _child(engine: str, name: str, frames: int, fps: float, folder: Path) -> int:
    sc = SCENARIOS[name]
    if engine == "asyncflow":
        run = _child_asyncflow(sc, frames, fps, folder)
    else:
        try:
            from benchmarks import _fresh_videoflow
        except ImportError as exc:
            print(f"videoflow not installed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return _NOT_IMPORTABLE
        run = _fresh_videoflow.run(sc, frames, fps, folder)
    _write_json(str(folder / "run.json"), run)
    return 0


# -- parent side --------------------------------------------------------------------------------------------------


class _Skipped(Exception):
    """The engine is not there: ``str(exc)`` says why."""


def _videoflow_missing() -> str | None:
    if importlib.util.find_spec("videoflow") is None:
        return "videoflow not installed"
    return None


def _default_timeout(sc: Scenario, frames: int, fps: float) -> float:
    # an engine that keeps every frame takes frames x the slowest stage; start-up and a margin on top
    return frames / fps + frames * max(sc.processor_s / sc.nb_tasks, sc.consumer_s) + 60.0


def measure(engine: str, scenario: str, frames: int = FRAMES, fps: float = FPS,
            timeout: float | None = None) -> dict[str, Any]:
    """Run one scenario on one engine in a fresh interpreter; its figures (raises ``_Skipped``, ``TimeoutError``)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    sc = SCENARIOS[scenario]
    if engine == "videoflow":
        missing = _videoflow_missing()
        if missing:
            raise _Skipped(missing)
    limit = timeout if timeout is not None else _default_timeout(sc, frames, fps)
    with tempfile.TemporaryDirectory(prefix="asyncflow-fresh-") as scratch:
        folder = Path(scratch)
        args = [sys.executable, "-m", "benchmarks.freshness", "--child", engine, scenario,
                "--frames", str(frames), "--fps", str(fps), "--dir", str(folder)]
        code, out, err = _run_group(args, limit, folder)
        if code == _NOT_IMPORTABLE:
            raise _Skipped(_tail(err))
        files = {name: folder / f"{name}.json" for name in ("run", "camera", "consumer")}
        if code != 0 or not all(p.exists() for p in files.values()):
            missing_files = [name for name, p in files.items() if not p.exists()]
            raise RuntimeError(f"exit code {code}, missing {missing_files}: {_tail(err or out)}")
        run, cam, con = (json.loads(files[name].read_text()) for name in ("run", "camera", "consumer"))
    records = con["records"]
    indices = [int(i) for i, _ in records]
    ages = [float(a) for _, a in records]
    late = cam["lateness_s"]
    steps = sum(1 for a, b in itertools.pairwise(indices) if b <= a)
    return {
        "version": run.get("version"),
        "run_s": run["t_end_wall"] - run["t_start_wall"],
        "startup_s": cam["t0_wall"] - run["t_start_wall"],
        "stream_s": run["t_end_wall"] - cam["t0_wall"],
        "emitted": cam["emitted"],
        "kept": len(records),
        "age_p50_s": _percentile(ages, 50),
        "age_p99_s": _percentile(ages, 99),
        "age_max_s": max(ages) if ages else float("nan"),
        "in_order": steps == 0,
        "order_breaks": steps,
        "duplicates": len(indices) - len(set(indices)),
        "wrong_payload": con["wrong_payload"],
        "lateness_p99_s": _percentile(late, 99),
        "lateness_max_s": max(late) if late else float("nan"),
        "engine_dropped": run.get("engine_dropped"),
        "kept_indices": indices,
        "kept_ages_s": [round(a, 6) for a in ages],
    }


def _targets(name: str, af: dict[str, Any], s2_kept: int | None, clip: float) -> list[dict[str, Any]]:
    """The targets of ``name`` on asyncflow's figures ``af``: text, value, met (None: cannot tell)."""
    if "kept" not in af:
        return []
    p99 = af["age_p99_s"]
    found: list[dict[str, Any]] = []
    if name == "S1":
        found.append({"target": f"stream <= {clip + 0.5:.2f} s", "value": af["stream_s"],
                      "met": af["stream_s"] <= clip + 0.5})
        found.append({"target": "p99 age <= 0.07 s", "value": p99, "met": p99 <= 0.07})
    elif name == "S2":
        found.append({"target": "p99 age <= 0.11 s", "value": p99, "met": p99 <= 0.11})
    elif name == "S3":
        need = None if s2_kept is None else 1.8 * s2_kept
        found.append({"target": "kept >= 1.8x S2" + ("" if need is None else f" ({need:.0f})"),
                      "value": af["kept"], "met": None if need is None else af["kept"] >= need})
        found.append({"target": "p99 age <= 0.08 s", "value": p99, "met": p99 <= 0.08})
        found.append({"target": "capture order kept", "value": af["in_order"], "met": bool(af["in_order"])})
    return found


def freshness(frames: int = FRAMES, fps: float = FPS, scenarios: Sequence[str] = tuple(SCENARIOS),
              engines: Sequence[str] = ENGINES, timeout: float | None = None,
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every scenario on every engine (asyncflow, then videoflow, scenario by scenario); the figures as a dict.

    ``result["scenarios"][name][engine]`` is ``measure()``'s dict, or ``{"unavailable": why}``
    (videoflow not installed) or ``{"error": ...}``; ``result["scenarios"][name]["targets"]``
    the targets checked on asyncflow's figures; ``result["scenarios"][name]["bounds"]``
    what no engine beats.
    """
    unknown = sorted(set(scenarios) - set(SCENARIOS)) + sorted(set(engines) - set(ENGINES))
    if unknown:
        raise ValueError(f"unknown scenario(s) or engine(s): {', '.join(unknown)}")
    try:
        vf_version: str | None = metadata.version("videoflow")
    except metadata.PackageNotFoundError:
        vf_version = None
    result: dict[str, Any] = {
        "fps": fps, "frames": frames, "clip_s": frames / fps, "frame": "x".join(map(str, FRAME_SHAPE)) + " uint8",
        "flow_type": "REALTIME, default options", "videoflow_version": vf_version, "scenarios": {},
    }
    for name in scenarios:
        sc = SCENARIOS[name]
        entry: dict[str, Any] = {"description": sc.description, "processor_s": sc.processor_s,
                                 "consumer_s": sc.consumer_s, "nb_tasks": sc.nb_tasks,
                                 "bounds": sc.bounds(frames, fps)}
        for engine in engines:
            if progress:
                progress(f"freshness {name} ({sc.description}): {engine}")
            try:
                entry[engine] = measure(engine, name, frames, fps, timeout)
            except _Skipped as exc:
                entry[engine] = {"unavailable": str(exc)}
                if progress:
                    progress(f"{engine}: {exc}; skipped")
            except Exception as exc:
                entry[engine] = {"error": _error(exc)}
                if progress:
                    progress(f"{engine}: {_error(exc)}")
        result["scenarios"][name] = entry
    s2 = result["scenarios"].get("S2", {}).get("asyncflow", {})
    for name, entry in result["scenarios"].items():
        entry["targets"] = _targets(name, entry.get("asyncflow", {}), s2.get("kept"), result["clip_s"])
    return result


# -- the table ------------------------------------------------------------------------------------------------------


def _met_text(targets: list[dict[str, Any]]) -> str:
    return ", ".join("n/a" if t["met"] is None else ("yes" if t["met"] else "NO") for t in targets)


def brief(entry: dict[str, Any] | None, frames: int) -> str:
    """One engine's figures in a line (for ``benchmarks.run_all``'s table)."""
    if not entry:
        return "not run"
    if "unavailable" in entry:
        return entry["unavailable"]
    if "error" in entry:
        return f"error: {entry['error']}"
    return (f"kept {entry['kept']}/{frames}, age p50 {entry['age_p50_s']:.3f} / p99 {entry['age_p99_s']:.3f} / "
            f"max {entry['age_max_s']:.3f} s, stream {entry['stream_s']:.2f} s"
            f"{'' if entry['in_order'] else ', out of order'}")


def format_table(result: dict[str, Any]) -> str:
    """The plain table of ``freshness()``'s result, with the bounds and the targets."""
    frames, fps = result["frames"], result["fps"]
    vf = result["videoflow_version"] or "not installed"
    lines = [f"freshness: {fps:g} fps camera, {frames} frames (clip {result['clip_s']:.2f} s), "
             f"{result['frame']} frames, {result['flow_type']}; videoflow {vf}",
             "bound no engine beats: work per item (slowest stage / its tasks), ideal kept = clip / work, age floor = "
             "work before the consumer (+ up to one frame period to keep the ideal count when a stage is slower "
             "than the camera)"]
    for name, entry in result["scenarios"].items():
        b = entry["bounds"]
        extra = " (videoflow: ProcessorNode(nb_tasks=2))" if entry["nb_tasks"] > 1 else ""
        lines.append(f"  {name}: {entry['description']}{extra}: work/item {b['work_per_item_s']:.3f} s, "
                     f"ideal kept {b['ideal_kept']}/{frames}, age floor {b['age_floor_s']:.3f} s "
                     f"(p99 ~{b['age_at_ideal_kept_s']:.3f} s at the ideal count)")
    header = ["scen", "engine", "run s", "stream s", "kept", "age p50 s", "p99 s", "max s", "in order",
              "cam late p99/max s", "target (asyncflow)", "met?"]
    rows: list[list[str]] = []
    for name, entry in result["scenarios"].items():
        for engine in ENGINES:
            if engine not in entry:
                continue
            e = entry[engine]
            version = result["videoflow_version"] if "kept" in e or "error" in e else None
            label = engine if engine == "asyncflow" else f"videoflow {version or ''}".strip()
            targets = entry["targets"] if engine == "asyncflow" else []
            target_text = "; ".join(t["target"] for t in targets)
            if "kept" not in e:
                why = e.get("unavailable") or f"error: {e.get('error')}"
                rows.append([name, label, why, "", "", "", "", "", "", "", target_text, _met_text(targets)])
                continue
            order = "yes" if e["in_order"] else f"NO ({e['order_breaks']} breaks)"
            rows.append([
                name, label, f"{e['run_s']:.2f}", f"{e['stream_s']:.2f}", f"{e['kept']}/{e['emitted']}",
                f"{e['age_p50_s']:.3f}", f"{e['age_p99_s']:.3f}", f"{e['age_max_s']:.3f}", order,
                f"{e['lateness_p99_s']:.3f} / {e['lateness_max_s']:.3f}", target_text, _met_text(targets),
            ])
    # a reason that does not fit ("videoflow not installed") spills over the empty cells after it
    widths = [max([len(header[i])] + [len(r[i]) for r in rows if i != 2 or r[3]]) for i in range(len(header))]
    table = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(),
             "-+-".join("-" * w for w in widths)]
    for r in rows:
        if not r[3]:  # unavailable or failed: the reason, then the targets
            table.append(" | ".join([r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2]]
                                    + ([f"targets: {r[10]}: {r[11]}"] if r[10] else [])).rstrip())
        else:
            table.append(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    lines += ["", *table]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.freshness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=FRAMES, help="frames the camera emits (150)")
    parser.add_argument("--fps", type=float, default=FPS, help="camera frames a second (30)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios (S1,S2,S3)")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated engines (asyncflow,videoflow)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per run before it is killed (default: clip + frames x slowest stage + 60)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    parser.add_argument("--child", nargs=2, metavar=("ENGINE", "SCENARIO"), help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.frames < 1 or args.fps <= 0:
        parser.error("--frames must be >= 1 and --fps > 0")
    if args.child:
        engine, name = args.child
        if engine not in ENGINES or name not in SCENARIOS or not args.dir:
            parser.error("--child ENGINE SCENARIO --dir DIR")
        # the classes of the importable module (not __main__'s copies): spawned tasks import it by name
        from benchmarks import freshness as module

        return module._child(engine, name, args.frames, args.fps, Path(args.dir))
    scenarios = [s.strip() for s in args.only.split(",") if s.strip()]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    try:
        result = freshness(args.frames, args.fps, scenarios, engines, args.timeout,
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

