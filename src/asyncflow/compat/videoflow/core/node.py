"""videoflow's ``videoflow.core.node``: the node classes, which are asyncflow's own.

Subclass them exactly as in videoflow: ``ProducerNode.next()``,
``ProcessorNode.process(inp)``, ``ConsumerNode.consume(item)``, optional ``open()``
/ ``close()``; ``super().__init__(nb_tasks=..., device_type=..., name=...)``.

Where asyncflow's classes differ from videoflow's (they are re-exported, not
copies): ``node.parents`` is a tuple (``()`` before the node is called, where
videoflow returned ``None``) and ``node.children`` a tuple (videoflow: a set);
``name`` is keyword-only; videoflow's ``node.id`` and ``change_device()`` do not
exist; any of the node methods may be ``async def`` (see asyncflow's docs);
``ModuleNode`` works (videoflow left its ``__call__`` unimplemented) and runs its
sub-graph as one task.  ``Leaf`` (videoflow's base of ``ConsumerNode``: a node
without children) is ``ConsumerNode`` itself.

``TaskModuleNode`` behaves as videoflow's: built from an entry and an exit node
that are already wired, it takes over the entry's parents and the exit's
children; its inner nodes then belong to it (calling a node on one of them raises
``RuntimeError``); a module inside a module raises ``ValueError``.
"""

from __future__ import annotations

from asyncflow.core.node import ConsumerNode, Node, ProcessorNode, ProducerNode
from asyncflow.processors.basic import FunctionProcessorNode
from asyncflow.processors.module import ModuleNode, TaskModuleNode
from asyncflow.processors.onetask import OneTaskProcessorNode

#: videoflow's ``Leaf`` ("a node with no children"), the base of its ``ConsumerNode``.
Leaf = ConsumerNode

__all__ = [
    "ConsumerNode",
    "FunctionProcessorNode",
    "Leaf",
    "ModuleNode",
    "Node",
    "OneTaskProcessorNode",
    "ProcessorNode",
    "ProducerNode",
    "TaskModuleNode",
]
