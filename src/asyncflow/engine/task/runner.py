"""``TaskRunner`` and ``run_task``: a task's set-up, its run from ``open()`` to ``done``, its host channels."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ...core.constants import REALTIME, STOP_FLOW
from ...core.host import FeedProducer, HostChannel, ResultsConsumer
from ...core.node import ConsumerNode, ProcessorNode, ProducerNode
from ..channel import BrokenChannelError, Link, Receiver, Sender, Tee, connect
from ..logs import ForwardingHandler
from ..spec import TaskSpec
from .common import (
    _NODE_ERRORS,
    _call,
    _Failed,
    _is_async,
)
from .producing import ProducerLoops
from .transforming import TransformLoops

__all__ = ["TaskRunner", "run_task"]


class TaskRunner(ProducerLoops, TransformLoops):
    """Runs one node in this process between its receiver and its sender."""

    # -- set-up -------------------------------------------------------------
    async def connect(self) -> None:
        spec = self.spec
        options = spec.options
        realtime = spec.flow_type == REALTIME
        if spec.inputs:
            links = [await connect(s, f"{spec.name}<in{i}>") for i, s in enumerate(spec.inputs)]
            self.receiver = Receiver.for_flow(
                links,
                options,
                positional=spec.in_positional,
                first=spec.worker,
                step=spec.stage.width,
                pull=realtime,
                order_of=spec.order_of,
            )
        width = spec.stage.width
        for g, group in enumerate(spec.outputs):
            links = [await connect(s, f"{spec.name}<out{g}.{i}>") for i, s in enumerate(group)]
            self._senders.append(
                Sender.for_flow(
                    links,
                    options,
                    realtime=realtime,
                    first=spec.worker if spec.out_positional else 0,
                    step=width if spec.out_positional else 1,
                    target=spec.out_targets[g],
                )
            )
        if len(self._senders) == 1 and spec.out_columns[0] == tuple(range(len(spec.stage.out_layout))):
            self.sender = self._senders[0]
        elif self._senders:
            self.sender = Tee(self._senders, list(spec.out_columns))

    async def connect_host(self) -> None:
        """Give a host node (FeedProducer, ResultsConsumer) its channel to the parent."""
        spec = self.spec
        if spec.host_link is None:
            return
        link = await connect(spec.host_link, f"{spec.name}<host>")
        options = spec.options
        if isinstance(self.node, ResultsConsumer):
            self.host_sender = Sender.for_flow([link], options)
            self.node._host = _HostSend(self.host_sender)
        elif isinstance(self.node, FeedProducer):
            self.host_receiver = Receiver.for_flow([link], options)
            feed = _HostRecv(self.host_receiver)
            self.node._host = feed
            feed.end_at_parent(self, link)

    # -- the run ------------------------------------------------------------
    async def run(self) -> None:
        opened = False
        try:
            await _call(self.node.open, _is_async(self.node.open))
            opened = True
        except _NODE_ERRORS as exc:
            self.report("open", exc)
        if opened:
            self.control.send_message(("ready",))
            self._started = time.perf_counter()
            self._send_stats()
            try:
                await self._stream()
            except _Failed:
                pass
            except BrokenChannelError:
                pass  # downstream died; the parent reports it
            finally:
                try:
                    await _call(self.node.close, _is_async(self.node.close))
                except _NODE_ERRORS as exc:
                    self.report("close", exc)
        await self._finish()
        if self._stats_timer is not None:
            self._stats_timer.cancel()
        self.finished = True
        final = self.snapshot()
        final.finished = True
        self.control.send_message(("done", final))

    async def _finish(self) -> None:
        """Pass STOP_FLOW on, then take (and discard) whatever upstream still sends."""
        if self.sender is not None:
            await self.sender.send_stop()
        if self.host_sender is not None:
            await self.host_sender.send_stop()
        if self.receiver is not None:
            await self.receiver.drain()

    async def _stream(self) -> None:
        if isinstance(self.node, ProducerNode):
            await self._produce(self.node)
        elif isinstance(self.node, ProcessorNode):
            await self._transform(self.node.process, self.node.on_error, "process")
        elif isinstance(self.node, ConsumerNode):
            await self._transform(self.node.consume, self.node.on_error, "consume")


class _HostSend(HostChannel):
    def __init__(self, sender: Sender) -> None:
        self.sender = sender

    async def send(self, row: tuple[Any, ...]) -> None:
        await self.sender.send_many([self.sender.freeze(row)])


class _HostRecv(HostChannel):
    """A FeedProducer's feed: what the host's ``put()`` accepted, in order, up to its end.

    "stop" does not end such a task at once: stopping would drop the items that
    ``put()`` has accepted and that wait in this link.  The task asks the parent to
    end the feed instead (a message on the link); the parent refuses new items and
    ends the feed behind the accepted ones, and the task emits them and ends there.
    """

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self._runner: TaskRunner | None = None
        self._link: Link | None = None

    def end_at_parent(self, runner: TaskRunner, link: Link) -> None:
        """Turn the task's "stop" into a request to the parent to end the feed."""
        self._runner, self._link = runner, link
        if runner.stop_requested:  # "stop" came while the task was connecting
            runner.stop_requested = False
            self._ask_end()
        runner.control.on_event = self._on_control

    def _on_control(self) -> None:
        runner = self._runner
        assert runner is not None
        messages = runner.control.messages
        if any(message[0] == "stop" for message in messages):
            kept = [message for message in messages if message[0] != "stop"]
            messages.clear()
            messages.extend(kept)
            self._ask_end()
        runner._on_control()

    def _ask_end(self) -> None:
        assert self._runner is not None and self._link is not None
        self._runner.go.set()  # as "stop" does: read the feed to its end without waiting for "go"
        self._link.send_message(("stop",))

    async def recv(self) -> Any:
        row = await self.receiver.recv()
        return None if row is STOP_FLOW else row


async def run_task(spec: TaskSpec) -> None:
    """Entry point of a task process (run on uvloop by the process wrapper)."""
    control = await connect(spec.control, f"{spec.name}<control>")
    handler = ForwardingHandler(control.send_message, asyncio.get_running_loop())
    logging.getLogger().addHandler(handler)
    runner = TaskRunner(spec, control)
    try:
        await runner.connect()
        await runner.connect_host()
        await runner.run()
    except _NODE_ERRORS as exc:
        runner.report("engine", exc)
    finally:
        try:
            await runner.aclose()
        finally:
            # A pool process runs other tasks after this one: leave nothing of it behind.
            logging.getLogger().removeHandler(handler)
