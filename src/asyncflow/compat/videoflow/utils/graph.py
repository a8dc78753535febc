"""videoflow's ``videoflow.utils.graph``: ``has_cycle``, ``topological_sort`` and ``flatten``.

The same algorithms as videoflow's, over asyncflow's nodes: depth-first from the
given nodes, down their ``children`` (in the order they were wired, where
videoflow iterated a set).  ``topological_sort`` returns the nodes reachable from
``producers``, each before every node below it, in videoflow's order (the
reversed post-order of that walk).  Both walk iteratively, so a long chain does
not hit Python's recursion limit, and key the nodes by identity.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from asyncflow.core.node import Node

__all__ = ["find_cycle", "flatten", "has_cycle", "topological_sort"]


def flatten(items: Iterable[Any]) -> list[Any]:
    """The leaves of any nesting of iterables, in order (strings and bytes are leaves)."""
    flat: list[Any] = []
    for item in items:
        if isinstance(item, Iterable) and not isinstance(item, (str, bytes)):
            flat.extend(flatten(item))
        else:
            flat.append(item)
    return flat


def has_cycle(producers: Sequence[Node]) -> bool:
    """Whether a cycle is reachable from ``producers`` going down the graph (parents to children)."""
    return find_cycle(producers) is not None


def find_cycle(producers: Sequence[Node]) -> list[Node] | None:
    """The nodes of a cycle reachable from ``producers`` (the first one found, in edge order), or ``None``."""
    done: set[int] = set()  # fully explored
    for start in producers:
        if id(start) in done:
            continue
        path: list[Node] = [start]
        on_path: set[int] = {id(start)}
        stack: list[Iterator[Node]] = [iter(start.children)]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                node = path.pop()
                on_path.discard(id(node))
                done.add(id(node))
            elif id(child) in on_path:
                first = next(i for i, node in enumerate(path) if node is child)
                return [*path[first:], child]
            elif id(child) not in done:
                path.append(child)
                on_path.add(id(child))
                stack.append(iter(child.children))
    return None


def topological_sort(producers: Sequence[Node]) -> list[Node]:
    """The nodes reachable from ``producers``, each before the nodes that depend on it.

    If node A is listed before node B, A does not depend on B's output.  The order
    is videoflow's: a depth-first walk from each producer in turn, a node placed in
    front of the list once everything below it is placed.  Below a cycle the order
    means nothing (see :func:`has_cycle`).
    """
    visited: set[int] = set()
    finished: list[Node] = []
    for start in producers:
        if id(start) in visited:
            continue
        visited.add(id(start))
        stack: list[tuple[Node, Iterator[Node]]] = [(start, iter(start.children))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                finished.append(node)
            elif id(child) not in visited:
                visited.add(id(child))
                stack.append((child, iter(child.children)))
    finished.reverse()
    return finished
