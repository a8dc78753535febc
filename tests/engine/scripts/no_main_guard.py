"""A script that runs a flow at import time, without ``if __name__ == "__main__":``.

Spawned tasks import the script again; the flow must fail fast and say why, not hang.
"""

import asyncflow
from asyncflow.consumers import VoidConsumer
from asyncflow.core import Flow
from asyncflow.producers import IntProducer

a = IntProducer(0, 10)
c = VoidConsumer()(a)
asyncflow.run(Flow([a], [c]))
print("done")
