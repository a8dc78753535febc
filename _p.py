import pickle, timeit, array
n=512
col=list(range(10**6, 10**6+n))
body=pickle.dumps((n,(col,),True,True),5)
def t(stmt, g, k=20000):
    return min(timeit.repeat(stmt, globals=g, number=k, repeat=5))/k/n*1e9
g=dict(pickle=pickle, col=col, n=n, body=body, array=array, range=range, list=list)
print("dumps ns/item", t("pickle.dumps((n,(col,),True,True),5)", g))
print("loads ns/item", t("pickle.loads(body)", g))
print("list(range)", t("list(range(1000000, 1000000+n))", g))
print("array q", t("array.array('q', col).tobytes()", g))
a=array.array('q', col).tobytes(); g['a']=a
print("array back", t("x=array.array('q'); x.frombytes(a); x.tolist()", g))
print("len body", len(body))
