"""A flow on a Ray that it starts itself, run by ``asyncflow.run`` until a signal (see test_ray_engine)."""

from __future__ import annotations

import asyncflow
from asyncflow.core import Flow
from tests.helpers import CountProducer, Recorder


def main(out: str) -> None:
    producer = CountProducer(None, delay=0.002)
    consumer = Recorder(out)(producer)
    asyncflow.run(Flow([producer], [consumer], flow_options={"engine": "ray"}))
