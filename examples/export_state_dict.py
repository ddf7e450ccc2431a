#!/usr/bin/env python3
"""Convert a PyTorch MRNet file into a safetensors state dict that kneecam can load.

Usage (with the Python of kneecam's torch virtualenv, which scripts/setup-libtorch makes):

    ./.kneecam-python examples/export_state_dict.py IN.pt OUT.safetensors

IN may be
  * a whole pickled model, as the reference training script saves it (torch.save(model, path)),
    whose class is __main__.MRNet, some_module.MRNet, torchvision's AlexNet, ...;
  * a training checkpoint: a dict holding the state dict (or the model) under state_dict,
    model_state_dict, model or net;
  * a plain state dict (torch.save(model.state_dict(), path)), including PyTorch's legacy
    (pre-1.6) format that libtorch cannot read.

OUT gets every tensor of the state dict under its own name (kneecam accepts classifer.* and
classifier.*, a DataParallel module. prefix, and ignores AlexNet's unused
pretrained_model.classifier.*). The sha256 printed at the end is what a manifest.toml entry needs.

TRUST: a pickle is a program. Unpickling a whole model (torch.load(..., weights_only=False))
runs whatever Python code the file's author put into it, with your permissions. kneecam itself
never does this; this script is the one place where it happens, and only because you ran it on
a file you chose. Convert only files whose origin you trust. The script first tries
torch.load(..., weights_only=True), which executes nothing, and falls back to full unpickling
only when that fails (it says so on stderr). --safe-only refuses the fallback.

Needs only torch and safetensors (no torchvision): the classes the reference code pickles are
defined here with plain torch.nn, and any other class a pickle names that cannot be imported is
replaced by a bare torch.nn.Module, which is enough to read its parameters.
"""
import argparse
import hashlib
import os
import pickle
import sys

import torch
import torch.nn as nn

STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "net")


def alexnet_features():
    """torchvision AlexNet's `features`, layer for layer (convolutions at 0, 3, 6, 8, 10)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


class AlexNet(nn.Module):
    """torchvision's AlexNet layout (features, avgpool, classifier) in plain torch.nn."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.features = alexnet_features()
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = torch.flatten(self.avgpool(self.features(x)), 1)
        return self.classifier(x)


class MRNet(nn.Module):
    """The blog series' reference MRNet: AlexNet features per slice, global average pool, max
    over slices, then `classifer` (sic) Linear(256, 2)."""

    def __init__(self, classes=2):
        super().__init__()
        self.pretrained_model = AlexNet()
        self.pooling_layer = nn.AdaptiveAvgPool2d(1)
        self.classifer = nn.Linear(256, classes)

    def forward(self, x):
        x = torch.squeeze(x, dim=0)
        features = self.pretrained_model.features(x)
        pooled = self.pooling_layer(features).view(features.size(0), -1)
        return self.classifer(torch.max(pooled, 0, keepdim=True)[0])


KNOWN_CLASSES = {"MRNet": MRNet, "AlexNet": AlexNet}


class _Unpickler(pickle.Unpickler):
    """Resolves classes normally; a class that cannot be imported becomes MRNet/AlexNet above
    when named so, else a bare nn.Module subclass of the same name (parameters still load)."""

    def find_class(self, module, name):
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            if name in KNOWN_CLASSES:
                stand_in = KNOWN_CLASSES[name]
            else:
                stand_in = type(name, (nn.Module,), {"__module__": module})
            print(f"note: {module}.{name} is not importable here; using a stand-in", file=sys.stderr)
            return stand_in


class _PickleModule:
    """What torch.load's pickle_module needs: an Unpickler (and load, for the legacy format)."""

    Unpickler = _Unpickler
    __name__ = "kneecam_export_pickle"

    @staticmethod
    def load(file, **kwargs):
        return _Unpickler(file, **kwargs).load()


def load_any(path, safe_only):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as safe_error:  # noqa: BLE001 - any failure means "not plain tensors"
        if safe_only:
            sys.exit(f"{path}: not loadable with weights_only=True ({safe_error}); refusing to unpickle it")
        print(
            f"{path}: not a plain state dict; unpickling it in full (this runs code from the file)",
            file=sys.stderr,
        )
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_PickleModule)


def state_dict_of(obj, path):
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
        for key in STATE_DICT_KEYS:
            if key in obj:
                return state_dict_of(obj[key], path)
        keys = ", ".join(map(str, obj.keys()))
        sys.exit(f"{path}: a dict of {keys}; expected tensors or one of {', '.join(STATE_DICT_KEYS)}")
    sys.exit(f"{path}: holds a {type(obj).__name__}, expected a model or a state dict")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="the PyTorch file (.pt / .pth)")
    parser.add_argument("output", help="the safetensors file to write")
    parser.add_argument("--safe-only", action="store_true", help="never unpickle code; plain state dicts only")
    args = parser.parse_args()

    from safetensors.torch import save_file

    state = state_dict_of(load_any(args.input, args.safe_only), args.input)
    tensors = {}
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            sys.exit(f"{args.input}: {name} is a {type(value).__name__}, not a tensor")
        # clone(): safetensors refuses tensors that share storage.
        tensors[name] = value.detach().cpu().contiguous().clone()
    if not tensors:
        sys.exit(f"{args.input}: the state dict is empty")

    tmp = f"{args.output}.tmp.{os.getpid()}"
    try:
        save_file(tensors, tmp, metadata={"converted_from": os.path.basename(args.input)})
        os.replace(tmp, args.output)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

    with open(args.output, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    head = tensors.get("classifer.weight", tensors.get("classifier.weight"))
    print(f"wrote {args.output}: {len(tensors)} tensors", end="")
    if head is not None:
        print(f", classifier {list(head.shape)}", end="")
    print(f"\nsha256 = \"{digest}\"")


if __name__ == "__main__":
    main()
