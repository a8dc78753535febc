import pickle, timeit
from benchmarks.workloads import ItemIntProducer, ItemIdentityProcessor, ItemStampConsumer
a = ItemIntProducer(0, 10**9, 0)
b = pickle.loads(pickle.dumps(a))
for name, n in (("fresh", a), ("unpickled", b)):
    f = n.next
    print(name, "next", round(min(timeit.repeat(f, number=200000, repeat=5)) / 200000 * 1e9, 1), "ns")
p = ItemIdentityProcessor(); q = pickle.loads(pickle.dumps(p))
for name, n in (("fresh", p), ("unpickled", q)):
    f = n.process
    print(name, "process", round(min(timeit.repeat(lambda: f(5), number=200000, repeat=5)) / 200000 * 1e9, 1), "ns")
c = ItemStampConsumer("/tmp/x.json"); d = pickle.loads(pickle.dumps(c))
for name, n in (("fresh", c), ("unpickled", d)):
    f = n.consume
    print(name, "consume", round(min(timeit.repeat(lambda: f(5), number=200000, repeat=5)) / 200000 * 1e9, 1), "ns")
print(type(b.__dict__), len(b.__dict__))
b2 = pickle.loads(pickle.dumps(ItemIntProducer(0, 10**9, 0))); b2.open()
f = b2.next
print("unpickled+open next", round(min(timeit.repeat(f, number=200000, repeat=5)) / 200000 * 1e9, 1), "ns")
from asyncflow.core.node import batch_method
batch_method(b2, "next")
print("after batch_method", round(min(timeit.repeat(f, number=200000, repeat=5)) / 200000 * 1e9, 1), "ns")
