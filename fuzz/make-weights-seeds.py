#!/usr/bin/env python3
"""Writes the `seed-*` inputs of the `torch_zip` and `pickle` fuzz targets with real PyTorch.

    .kneecam-python fuzz/make-weights-seeds.py     # from the repository root

Every archive goes to fuzz/corpus/torch_zip/seed-NAME.pt and its `*/data.pkl` to
fuzz/corpus/pickle/seed-NAME.pkl. Tensors are tiny so that each seed stays a few KB; the
structure (dtypes, shared storages, views, checkpoint nesting, module classes) is real.
"""
import io
import os
import sys
import tempfile
import zipfile

import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.abspath(__file__))
ZIP_DIR = os.path.join(ROOT, "corpus", "torch_zip")
PKL_DIR = os.path.join(ROOT, "corpus", "pickle")

# A module file named model.py holding MRNet, as MRNet's own training script has it, so that
# torch.save(model) pickles `model.MRNet` (not `__main__.MRNet`).
MODEL_PY = '''
import torch
import torch.nn as nn
import torchvision


class MRNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.pretrained_model = torchvision.models.alexnet(weights=None)
        self.pooling_layer = nn.AdaptiveAvgPool2d(1)
        self.classifer = nn.Linear(256, 2)

    def forward(self, x):
        x = torch.squeeze(x, dim=0)
        x = self.pretrained_model.features(x)
        x = self.pooling_layer(x)
        x = x.view(x.size(0), -1)
        x = torch.max(x, 0, keepdim=True)[0]
        return self.classifer(x)
'''


def tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2), nn.ReLU(), nn.Linear(2, 2))


def save(name, obj, **kwargs):
    buf = io.BytesIO()
    torch.save(obj, buf, **kwargs)
    write(name, buf.getvalue())


def write(name, data):
    with open(os.path.join(ZIP_DIR, f"seed-{name}.pt"), "wb") as f:
        f.write(data)
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return
    pkls = [n for n in z.namelist() if n.endswith("/data.pkl")]
    if pkls:
        with open(os.path.join(PKL_DIR, f"seed-{name}.pkl"), "wb") as f:
            f.write(z.read(pkls[0]))


def zip_of(pickle_bytes, extra=()):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pickle_bytes)
        z.writestr("archive/byteorder", "little")
        for name, data in extra:
            z.writestr(name, data)
        z.writestr("archive/version", "3\n")
    return buf.getvalue()


def main():
    os.makedirs(ZIP_DIR, exist_ok=True)
    os.makedirs(PKL_DIR, exist_ok=True)
    sd = tiny().state_dict()
    save("state-dict", sd)
    save("state-dict-protocol4", sd, pickle_protocol=4)
    save("data-parallel", nn.DataParallel(tiny()).state_dict())
    save("half", tiny().half().state_dict())
    save("checkpoint", {"state_dict": sd, "epoch": 3})
    save("checkpoint-optimizer", {"model_state_dict": sd, "epoch": 3, "loss": 0.25,
                                  "note": "tiny", "best": [1, 2.5, None, True]})
    base = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    save("views-and-dtypes", {
        "whole": base,
        "row": base[1],                      # same storage, offset 4
        "column": base[:, 2],                # stride 4
        "transposed": base.t(),
        "long": torch.tensor([1, -2, 3]),
        "bool": torch.tensor([True, False]),
        "bf16": torch.ones(2, dtype=torch.bfloat16),
        "int8": torch.tensor([-1, 1], dtype=torch.int8),
        "uint8": torch.tensor([255], dtype=torch.uint8),
        "int16": torch.tensor([7], dtype=torch.int16),
        "int32": torch.tensor([7], dtype=torch.int32),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
    })
    save("parameter", {"w": nn.Parameter(torch.ones(2, 2)),
                       "frozen": nn.Parameter(torch.ones(1), requires_grad=False)})

    # A whole pickled module: model.MRNet around torchvision's AlexNet, its tensors shrunk to
    # one value each (the pickle's structure is what matters, not the weights).
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "model.py"), "w") as f:
            f.write(MODEL_PY)
        sys.path.insert(0, tmp)
        import model  # noqa: E402

        m = model.MRNet()
        for p in m.parameters():
            p.data = torch.zeros(1)
        save("whole-module-mrnet", m)
        save("whole-module-sequential", tiny())
        sys.path.remove(tmp)

    # The legacy (pre-1.6) format: not a zip archive at all.
    save("legacy", {"w": torch.ones(2)}, _use_new_zipfile_serialization=False)

    # TorchScript: refused as weights.
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(nn.Linear(1, 1)), buf)
    write("torchscript", buf.getvalue())

    # Hand-written: a pickle that REDUCEs os.system('id'), as a pickle and inside an archive.
    evil = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."
    with open(os.path.join(PKL_DIR, "seed-os-system.pkl"), "wb") as f:
        f.write(evil)
    with open(os.path.join(ZIP_DIR, "seed-os-system.pt"), "wb") as f:
        f.write(zip_of(evil))
    # A storage record declared far larger than the archive (2^40 floats).
    huge = (b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01ctorch._utils\n_rebuild_tensor_v2\nq\x02"
            b"((X\x07\x00\x00\x00storageq\x03ctorch\nFloatStorage\nq\x04X\x01\x00\x00\x000q\x05"
            b"X\x03\x00\x00\x00cpuq\x06\x8a\x06\x00\x00\x00\x00\x00\x01tq\x07QK\x00K\x01\x85q\x08"
            b"K\x01\x85q\x09\x89ccollections\nOrderedDict\nq\x0a)Rq\x0btq\x0cRq\x0ds.")
    with open(os.path.join(PKL_DIR, "seed-huge-storage.pkl"), "wb") as f:
        f.write(huge)
    with open(os.path.join(ZIP_DIR, "seed-huge-storage.pt"), "wb") as f:
        f.write(zip_of(huge, [("archive/data/0", b"\0" * 8)]))


if __name__ == "__main__":
    main()
