#!/usr/bin/env python3
"""Writes the hand-made inputs of fuzz/findings/ (see its README.md) to /tmp/bugs."""
import io, struct, zipfile, os
def s(x):
    b = x.encode(); return b"X" + struct.pack("<I", len(b)) + b
def i(n):
    return b"\x8a\x08" + struct.pack("<q", n)
def tup(items):
    return b"(" + b"".join(items) + b"t"
def tensor(key, numel, offset, size, stride, kind="FloatStorage"):
    return (b"ctorch._utils\n_rebuild_tensor_v2\n" +
            tup([tup([s("storage"), b"ctorch\n" + kind.encode() + b"\n", s(key), s("cpu"), i(numel)]) + b"Q",
                 i(offset), tup([i(n) for n in size]), tup([i(n) for n in stride]), b"\x89",
                 b"ccollections\nOrderedDict\n)R"]) + b"R")
def zip_of(pkl, records):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        for n, d in records: z.writestr(n, d)
        z.writestr("archive/version", "3\n")
    return buf.getvalue()
out = "/tmp/bugs"
os.makedirs(out, exist_ok=True)
# 1. negative shape accepted by pickle_tensor_shapes
neg = b"\x80\x02}(" + s("w") + tensor("0", 1, 0, [-1], [1]) + b"u."
open(f"{out}/negative-shape.pkl","wb").write(neg)
# 2. string memo copies: a 1000-byte string, a list of 1000 copies, then 3000 copies of the list
big = b"\x80\x02" + s("x"*1000) + b"q\x00(" + b"h\x00"*1000 + b"lq\x01(" + b"h\x01"*3000 + b"l."
open(f"{out}/string-copies.pkl","wb").write(big)
# 3. stride-0 expansion: one float viewed 2^26 times
exp = b"\x80\x02}(" + s("w") + tensor("0", 1, 0, [1 << 26], [0]) + b"u."
open(f"{out}/stride0.pkl","wb").write(exp)
open(f"{out}/stride0.pt","wb").write(zip_of(exp, [("archive/data/0", b"\0"*4)]))
# 4. many transposed views of one 8 KiB storage, via memo copies of the tensor
view = tensor("0", 2048, 0, [32, 64], [1, 32])
many = b"\x80\x02}(" + s("w0") + view + b"q\x05" + b"".join(s(f"w{k}") + b"h\x05" for k in range(1, 600)) + b"u."
open(f"{out}/overlapping-views.pt","wb").write(zip_of(many, [("archive/data/0", b"\0"*8192)]))
# 5. two */data.pkl: which one is read depends on the hash order of the zip's names
good = b"\x80\x02}(" + s("w") + tensor("0", 1, 0, [1], [1]) + b"u."
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
    z.writestr("a/data.pkl", good); z.writestr("a/data/0", b"\0"*4)
    z.writestr("b/data.pkl", b"\x80\x02cos\nsystem\n.")
open(f"{out}/two-data-pkl.pt","wb").write(buf.getvalue())
for f in sorted(os.listdir(out)): print(f, os.path.getsize(f"{out}/{f}"))
