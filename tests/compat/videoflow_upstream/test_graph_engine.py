# Copied from videoflow 0.2.10's own tests: https://github.com/videoflow/videoflow/blob/v0.2.10/tests/test_graph_engine.py
# (tag v0.2.10, commit 7f99f8d3bb95342c9f07c753c4cc7f877c09ad88). MIT License, Copyright (c) 2019 Jadiel de Armas:
# see LICENSE in this folder. The only change: the import prefix, videoflow. -> asyncflow.compat.videoflow.
# ruff: noqa

import pytest

from asyncflow.compat.videoflow.core.graph import GraphEngine
from asyncflow.compat.videoflow.producers import IntProducer
from asyncflow.compat.videoflow.processors import IdentityProcessor, JoinerProcessor
from asyncflow.compat.videoflow.consumers import CommandlineConsumer

def test_no_raise_error():
    a = IntProducer()
    b = IdentityProcessor()(a)
    c = IdentityProcessor()(b)
    d = CommandlineConsumer()(c)

    graph_engine = GraphEngine([a], [d])

def test_raise_error_1():
    a = IntProducer()
    b = IdentityProcessor()(a)
    c = IdentityProcessor()(b)
    d = CommandlineConsumer()

    with pytest.raises(ValueError):
        graph_engine = GraphEngine([a], [d])

def test_raise_error_2():
    a = IntProducer()
    b = IdentityProcessor()(a)
    c = IdentityProcessor()(b)
    d = IdentityProcessor()
    e = CommandlineConsumer()(d)

    with pytest.raises(ValueError):
        graph_engine = GraphEngine([a], [e])

if __name__ == "__main__":
    pytest.main([__file__])
