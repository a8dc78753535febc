import timeit, pickle
from benchmarks.workloads import ItemIdentityProcessor
node = pickle.loads(pickle.dumps(ItemIdentityProcessor())); method = node.process
safe = {int, float, type(None), bool}
col = list(range(10**6, 10**6 + 512))
def plain(args=col, method=method, safe=safe):
    values = []; append = values.append
    for x in args[0:512]:
        value = method(x)
        if type(value) not in safe: pass
        append(value)
    return values
def mapped(args=col, method=method, safe=safe):
    values = []; append = values.append
    for value in map(method, args[0:512]):
        if type(value) not in safe: pass
        append(value)
    return values
def comp(args=col, method=method, safe=safe):
    values = [method(x) for x in args[0:512]]
    if not set(map(type, values)) <= safe: pass
    return values
def listmap(args=col, method=method, safe=safe):
    values = list(map(method, args[0:512]))
    if not set(map(type, values)) <= safe: pass
    return values
for f in (plain, mapped, comp, listmap):
    print(f.__name__, round(min(timeit.repeat(f, number=2000, repeat=5)) / 2000 / 512 * 1e9, 1), "ns/item")
