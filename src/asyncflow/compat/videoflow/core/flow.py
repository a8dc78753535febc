"""videoflow's ``Flow``: synchronous ``run()`` / ``join()`` / ``stop()`` over asyncflow's engine.

    flow = Flow([producer], [printer])    # REALTIME by default, as in videoflow
    flow.run()                            # returns at once
    flow.join()                           # blocks until the flow ends; errors raise FlowError

There is one engine: ``run()`` starts a helper thread that runs a uvloop event
loop driving the real :meth:`asyncflow.core.Flow.run` (one OS process per task,
as always).  The calling thread stays free, as videoflow's did.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.machinery
import logging
import multiprocessing
import multiprocessing.util  # its exit hook (joins child processes) registered now runs after ours
import pickle
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, SupportsIndex

import uvloop

from asyncflow.consumers import VoidConsumer
from asyncflow.core import Flow as CoreFlow
from asyncflow.core import FlowError, FlowKilledError, FlowType, GraphError
from asyncflow.core.graph import check_graph
from asyncflow.core.node import ConsumerNode, Node, ProducerNode

from ..utils.graph import find_cycle
from .constants import REALTIME

__all__ = ["Flow", "check_videoflow_graph"]

log = logging.getLogger("asyncflow")


class Flow:
    """A videoflow ``Flow``: build it, ``run()`` it, ``join()`` or ``stop()`` it, all synchronously.

    ``Flow(producers, consumers, flow_type=REALTIME, flow_options=None)``: the graph
    is checked at once by :class:`asyncflow.core.Flow` (``ValueError`` for a cycle or
    an unreachable consumer, ``TypeError`` for non-nodes).  ``flow_options`` is
    asyncflow's (see ``asyncflow.core.FlowOptions``); videoflow had none.

    What videoflow accepted and the core does not, this class accepts, when it is
    harmless: an empty ``consumers`` list, a processor whose output nothing reads,
    and a consumer below the producers that is not listed.  videoflow ran every
    node below the producers; so does this class: every node reachable from the
    producers (``node.children``) that has no children and is not a consumer gets
    a hidden ``VoidConsumer`` (``hidden_consumers``), and unlisted consumers are
    added to the list.  Building the flow wires those hidden consumers into the
    graph (undone if the core rejects the graph).

    Deliberate choices (see also ``docs/migrating-from-videoflow.md``):

    - ``run()`` starts the flow and returns once every task is up and has opened
      its node (videoflow's returned once its forked processes were started;
      spawning takes longer, and a script's ``run(); time.sleep(2); stop()`` should
      time the flow, not its start-up); a second call raises ``RuntimeError``
      (build a new ``Flow`` -- and new nodes -- to run again).
    - ``join()`` blocks until the flow ends and raises ``asyncflow.FlowError`` if it
      failed (a node raised, a process died): videoflow would hang instead.  A
      Ctrl-C during ``join()`` stops the flow gracefully and ``join()`` keeps
      waiting, then returns normally; a second Ctrl-C ends the processes hard and
      ``join()`` raises ``KeyboardInterrupt`` -- as ``asyncflow.run()`` does.
    - ``stop()`` asks the producers to stop, then joins (so it raises what
      ``join()`` raises).  Called before ``run()``, it makes ``run()`` end at once.
    - ``join()`` (and ``stop()``) before ``run()`` return at once, as in videoflow.
    - A script that never joins still waits for its flow to end when it exits (as
      videoflow's non-daemon processes made it): an exit hook joins the flow.  If
      the script is ending on an uncaught ``KeyboardInterrupt`` (a Ctrl-C outside
      ``join()``), the hook first stops the flow gracefully.  An error found there
      is logged, as nothing is left to raise it to.
    - Task processes are spawned, not forked.  A spawned process normally imports
      the main script again; a videoflow script runs its flow at top level, with no
      ``if __name__ == "__main__":`` guard, so each process would run the flow
      again.  When no node needs anything defined in the main script (all of them
      pickle without a reference to ``__main__``), the flow's processes are told
      not to import it: while the flow runs, ``__main__.__spec__`` is a spec named
      ``__main__``, which ``multiprocessing`` reads as "do not re-run the main
      module".  That is process-wide: a process started meanwhile by other code
      that needs the main script would not get it.  When a node class *is* defined
      in the script, the processes must import it: then ``run()``, ``join()`` and
      ``stop()`` do nothing in a process that is importing its main script, and
      the script's own ``time.sleep()`` calls return at once there, so an
      unguarded script still works -- ``run()``, ``time.sleep(2)``, ``stop()``
      prints what it printed under videoflow -- but its other top-level
      statements do run again in each process (guard the script to avoid that).
    - When a node asks for a GPU and ``flow_options`` has no ``"gpus"``, the GPUs
      are those ``utils.system.get_gpus_available_to_process()`` lists, as in
      videoflow (a test may monkeypatch it).
    - The graph checks add videoflow's: a cycle below the producers is a
      ``ValueError`` even when no consumer reads it.
    """

    def __init__(
        self,
        producers: Sequence[ProducerNode],
        consumers: Sequence[ConsumerNode],
        flow_type: FlowType | str = REALTIME,
        flow_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._bootstrapping = _importing_main_in_child()
        _check_no_cycle(producers)
        reachable, extra, hidden = _complete_consumers(producers, consumers)
        try:
            all_consumers = [*consumers, *extra, *hidden] if extra or hidden else consumers
            # (Not in a task process re-running the script: its flow never runs there.)
            options = flow_options if self._bootstrapping else _with_gpus(flow_options, reachable)
            self._flow = CoreFlow(producers, all_consumers, flow_type, options)
        except BaseException:
            _unwire(hidden)
            raise
        self._hidden: tuple[ConsumerNode, ...] = tuple(hidden)
        self._lock = threading.Lock()
        self._started = False
        self._thread: threading.Thread | None = None
        self._finished = threading.Event()
        self._error: BaseException | None = None

    # -- what the flow is -----------------------------------------------------
    @property
    def core_flow(self) -> CoreFlow:
        """The :class:`asyncflow.core.Flow` this facade runs: its graph, options and stats."""
        return self._flow

    @property
    def flow_type(self) -> FlowType:
        """``REALTIME`` (videoflow's default) or ``BATCH``."""
        return self._flow.flow_type

    @property
    def hidden_consumers(self) -> tuple[ConsumerNode, ...]:
        """The ``VoidConsumer`` s added below the nodes whose output nothing reads."""
        return self._hidden

    @property
    def running(self) -> bool:
        """Whether the flow has been started and has not ended yet."""
        return self._thread is not None and not self._finished.is_set()

    def stats(self) -> dict[str, Any]:
        """Per task of the run, once it has ended: see :meth:`asyncflow.core.Flow.stats`."""
        return self._flow.stats()

    # -- videoflow's methods ----------------------------------------------------
    def run(self) -> None:
        """Start the flow: return once its tasks are up and opened; ``join()`` waits for its end.

        videoflow's ``run()`` returned once it had started its (forked) processes.
        asyncflow spawns them, which takes a moment (each imports Python and the
        nodes' modules), so ``run()`` waits until every task has started and
        opened its node -- the producers are then emitting.  The script's own
        timing (``run()``, ``time.sleep(2)``, ``stop()``) then measures the flow
        running, as it did in videoflow, rather than its start-up.  If the flow
        ends before that (a node failed to open), ``run()`` returns and ``join()``
        raises the error.  A Ctrl-C while it waits stops the flow (gracefully) and
        raises ``KeyboardInterrupt``.

        Raises ``RuntimeError`` if the flow was already run.  Does nothing in a
        process that is importing its main script to run one of this flow's tasks
        (see the class docstring).
        """
        with self._lock:
            if self._started:
                raise RuntimeError(
                    "Flow.run() was already called on this flow; a flow runs once: build new nodes and a new Flow"
                )
            self._started = True
        if self._bootstrapping:
            return
        thread = threading.Thread(target=self._main, name=f"asyncflow {self._flow!r}", daemon=True)
        self._thread = thread
        atexit.register(self._join_at_exit)
        thread.start()
        try:
            while not self._finished.wait(0.01):
                if self._flow.started:
                    break
        except KeyboardInterrupt:
            self._flow.stop()
            raise

    def join(self) -> None:
        """Block until the flow ends; raise ``asyncflow.FlowError`` if it failed.

        Ctrl-C (``KeyboardInterrupt``) while waiting stops the flow gracefully and
        keeps waiting; ``join()`` then returns normally.  A second Ctrl-C ends the
        processes hard and ``join()`` raises ``KeyboardInterrupt`` once they are gone.
        Returns at once if the flow was never started.
        """
        thread = self._thread
        if thread is None:
            return
        interrupts = 0
        while True:
            try:
                if self._finished.wait(0.25):
                    break
            except KeyboardInterrupt:
                interrupts += 1
                if interrupts == 1:
                    log.warning("Ctrl-C: stopping the flow (press it again to end the processes hard)")
                    self._flow.stop()
                else:
                    self._flow.kill()
        thread.join()
        atexit.unregister(self._join_at_exit)
        error = self._error
        if error is None:
            return
        if isinstance(error, FlowKilledError) and interrupts >= 2:
            raise KeyboardInterrupt from error
        if isinstance(error, FlowError):
            raise error
        raise FlowError(f"the flow ended with an unexpected error: {error!r}") from error

    def stop(self) -> None:
        """Stop the flow and wait for it to end (videoflow's ``stop()`` blocks too).

        Producers stop emitting and the stop travels the graph behind the data
        (in ``BATCH``, nothing already emitted is lost).  Raises what ``join()``
        raises.  Before ``run()``, the next ``run()`` ends at once.
        """
        if self._bootstrapping:
            return
        self._flow.stop()
        self.join()

    def kill(self) -> None:
        """End every task hard now, without waiting (``join()`` then raises ``FlowKilledError``)."""
        self._flow.kill()

    def __repr__(self) -> str:
        return f"<videoflow-compatible {self._flow!r}>"

    # -- the helper thread --------------------------------------------------------
    def _main(self) -> None:
        try:
            with (
                _children_skip_main(_may_skip_main(self._flow)),
                asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
            ):
                runner.run(self._flow.run())
        except BaseException as exc:
            self._error = exc
        finally:
            self._finished.set()

    def _join_at_exit(self) -> None:
        """The interpreter is exiting with the flow still running: wait for it (stop it after a Ctrl-C)."""
        if self._finished.is_set():
            return
        if isinstance(getattr(sys, "last_value", None), KeyboardInterrupt):
            self._flow.stop()
        try:
            self.join()
        except (FlowError, KeyboardInterrupt) as exc:
            log.error("asyncflow: the flow ended with an error while the program was exiting: %s", exc)


# -- hidden consumers -------------------------------------------------------------


def _complete_consumers(
    producers: object, consumers: object
) -> tuple[list[Node], list[ConsumerNode], list[ConsumerNode]]:
    """The nodes below the producers, the consumers among them that are not listed, and new sinks
    for the childless non-consumers among them (wired in)."""
    if not _is_node_list(producers) or not _is_node_list(consumers):
        return [], [], []  # let the core report what is wrong with the lists
    assert isinstance(producers, Sequence) and isinstance(consumers, Sequence)
    listed = {id(node) for node in consumers}
    reachable: dict[int, Node] = {}
    stack: list[Node] = [p for p in reversed(producers) if isinstance(p, ProducerNode)]
    while stack:
        node = stack.pop()
        if id(node) in reachable:
            continue
        reachable[id(node)] = node
        stack.extend(reversed(node.children))
    names = {node.name for node in reachable.values()}
    extra: list[ConsumerNode] = []
    hidden: list[ConsumerNode] = []
    for node in reachable.values():
        if isinstance(node, ConsumerNode):
            if id(node) not in listed:
                extra.append(node)
        elif not node.children:
            name = _free_name(f"{node.name}.void", names)
            hidden.append(VoidConsumer(name=name)(node))
    return list(reachable.values()), extra, hidden


def check_videoflow_graph(producers: Sequence[ProducerNode], consumers: Sequence[ConsumerNode]) -> None:
    """Raise what ``Flow(producers, consumers)`` raises for the graph, and leave the graph as it was.

    ``ValueError`` (``asyncflow.GraphError``) for a cycle, an unreachable consumer, a
    dangling input, clashing names, a node that does not pickle; ``TypeError`` for
    lists that do not hold nodes; ``NodeConfigError`` for bad node settings.
    """
    _check_no_cycle(producers)
    _, extra, hidden = _complete_consumers(producers, consumers)
    try:
        all_consumers = [*consumers, *extra, *hidden] if extra or hidden else consumers
        check_graph(producers, all_consumers)
    finally:
        _unwire(hidden)


def _check_no_cycle(producers: object) -> None:
    """videoflow's check: no cycle below the producers, even one that no consumer reads."""
    if not _is_node_list(producers):
        return  # the core reports it
    assert isinstance(producers, Sequence)
    cycle = find_cycle(producers)
    if cycle is not None:
        names = " -> ".join(node.name for node in cycle)
        raise GraphError(f"Flow: the graph has a cycle: {names}")


def _with_gpus(flow_options: Mapping[str, Any] | None, nodes: list[Node]) -> Mapping[str, Any] | None:
    """``flow_options``, with ``"gpus"`` from ``utils.system`` when a node wants a GPU and none is given.

    videoflow's engine gave its GPU tasks the devices
    ``videoflow.utils.system.get_gpus_available_to_process()`` listed; so does the
    facade, through its own ``utils.system`` (looked up at each call, so a test's
    ``monkeypatch`` of it counts).  ``flow_options["gpus"]`` wins; Ray places GPUs itself.
    """
    options = dict(flow_options) if isinstance(flow_options, Mapping) else None
    if flow_options is not None and options is None:
        return flow_options  # not a mapping: let the core report it
    if options is not None and ("gpus" in options or options.get("engine", "local") != "local"):
        return flow_options
    if not any(getattr(node, "device_type", "cpu") == "gpu" for node in nodes):
        return flow_options
    from ..utils import system

    return {**(options or {}), "gpus": [str(gpu) for gpu in system.get_gpus_available_to_process()]}


def _is_node_list(value: object) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, (str, bytes))
        and all(isinstance(item, Node) for item in value)
    )


def _free_name(wanted: str, taken: set[str]) -> str:
    name, counter = wanted, 1
    while name in taken:
        counter += 1
        name = f"{wanted}{counter}"
    taken.add(name)
    return name


def _unwire(hidden: list[ConsumerNode]) -> None:
    """Take the hidden consumers out of the graph again (the core rejected it)."""
    for sink in hidden:
        for parent in sink.parents:
            if parent._children is not None:
                parent._children = [child for child in parent._children if child is not sink]


# -- the main script and spawned processes ----------------------------------------------

_main_lock = threading.Lock()
_main_users = 0
_main_saved_spec: Any = None


def _skip_script_sleeps_in_child() -> None:
    """In a spawned task process re-running an unguarded script, make the script's ``time.sleep`` return at once.

    A videoflow script runs its flow at top level: ``flow.run()``, ``time.sleep(2)``,
    ``flow.stop()``.  When a task process must import that script (a node class is
    defined there), it runs those lines again: ``run()`` and ``stop()`` do nothing
    there, and the sleep only delays the task's start -- past the parent's
    ``stop()``, which then stops a flow that has not emitted anything.  So, in such
    a process only, ``time.sleep`` is replaced by a function that returns at once
    when called from the script's own code (its globals are the re-run main
    module, ``__mp_main__``) while the process is still importing it, and sleeps
    otherwise.
    """
    if not _importing_main_in_child() or getattr(time.sleep, "_asyncflow_script_sleep", False):
        return
    real_sleep = time.sleep

    def sleep(seconds: float | SupportsIndex) -> None:
        if _importing_main_in_child() and sys._getframe(1).f_globals.get("__name__") == "__mp_main__":
            return
        real_sleep(seconds)

    sleep._asyncflow_script_sleep = True  # type: ignore[attr-defined]
    sleep.__doc__ = real_sleep.__doc__
    time.sleep = sleep


def _importing_main_in_child() -> bool:
    """Whether this is a spawned process importing its parent's main script (before running its task).

    ``multiprocessing`` sets ``_inheriting`` on the process object while a new
    process prepares itself (it is how it refuses to start processes then).
    """
    return bool(getattr(multiprocessing.current_process(), "_inheriting", False))


def _may_skip_main(flow: CoreFlow) -> bool:
    """Whether the flow's processes can do without the main script: no node refers to ``__main__``.

    A node pickles a class or function defined in the main script as a reference
    to the module ``__main__``; the name then appears in the pickle.  (A false
    alarm -- the string in some data -- only means the processes import it.)
    """
    if flow.options.start_method == "fork":
        return False  # a forked process never imports the main script
    for node in flow.nodes:
        try:
            data = pickle.dumps(node, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            return False  # the core checked it pickles; be safe anyway
        if b"__main__" in data:
            return False
    return True


@contextlib.contextmanager
def _children_skip_main(enabled: bool) -> Iterator[None]:
    """While the flow runs, make spawned processes leave the main script alone.

    ``multiprocessing`` re-runs the main module in a spawned process unless the
    module's spec is named ``__main__`` (as for a package's ``__main__.py``); the
    real spec is put back when the last flow using this ends.
    """
    global _main_users, _main_saved_spec
    main = sys.modules.get("__main__")
    if not enabled or main is None:
        yield
        return
    with _main_lock:
        if _main_users == 0:
            _main_saved_spec = getattr(main, "__spec__", None)
            main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)
        _main_users += 1
    try:
        yield
    finally:
        with _main_lock:
            _main_users -= 1
            if _main_users == 0:
                main.__spec__ = _main_saved_spec
                _main_saved_spec = None


_skip_script_sleeps_in_child()
