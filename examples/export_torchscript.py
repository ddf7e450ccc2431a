#!/usr/bin/env python3
"""Export a torchvision CNN as a TorchScript module that kneecam can explain.

Usage (with the Python of kneecam's torch virtualenv, which has torchvision):

    ./.kneecam-python examples/export_torchscript.py --arch resnet18 OUT.pt
    ./.kneecam-python examples/export_torchscript.py --arch densenet161 --weights FT.pth OUT.pt

The module's forward(x) takes slices x[N, 3, H, W] and returns (logits[N, K], features[N, C, h, w]):
the last convolutional feature maps and what the network computes from them by global average
pooling and one linear layer, so kneecam can apply MRNet's head (average per slice, max over
slices, linear) and draw class activation maps. The script prints the classifier parameter's
name and a manifest.toml entry to paste:

    resnet18       features: layer4 output (512 channels)     classifier: net.fc.weight
    densenet161    features: relu(features) (2208 channels)   classifier: net.classifier.weight
    squeezenet1_1  features: the class maps relu(conv1x1(features)) (K channels), pooled by the
                   network itself; an identity layer `cam_head` stands for the linear layer, so
                   the logits are exactly squeezenet's and each class's CAM is its own class map.

Weights are random unless --weights FILE gives a state dict for the torchvision model with
--classes outputs (nothing is downloaded). If only the final layer's shape differs (an ImageNet
checkpoint with 1000 classes), the backbone is loaded and the final layer stays random, with a
warning.

Loading a TorchScript file runs the code in it, so kneecam loads one only through an explicit
manifest entry (arch = "torchscript"), pinned by its sha256.
"""
import argparse
import hashlib
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    import torchvision
except ImportError:
    sys.exit("torchvision is missing: run scripts/setup-libtorch, then use ./.kneecam-python")


class ResNetCam(nn.Module):
    classifier = "net.fc.weight"

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        features = n.layer4(n.layer3(n.layer2(n.layer1(x))))
        logits = n.fc(torch.flatten(n.avgpool(features), 1))
        return logits, features


class DenseNetCam(nn.Module):
    classifier = "net.classifier.weight"

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        features = F.relu(self.net.features(x))
        logits = self.net.classifier(torch.flatten(F.adaptive_avg_pool2d(features, 1), 1))
        return logits, features


class SqueezeNetCam(nn.Module):
    classifier = "cam_head.weight"

    def __init__(self, net, classes):
        super().__init__()
        self.net = net
        self.cam_head = nn.Linear(classes, classes)
        with torch.no_grad():
            self.cam_head.weight.copy_(torch.eye(classes))
            self.cam_head.bias.zero_()
        self.cam_head.requires_grad_(False)

    def forward(self, x):
        _, conv, relu, _ = self.net.classifier  # Dropout, Conv2d(512, K, 1), ReLU, AvgPool
        features = relu(conv(self.net.features(x)))
        logits = self.cam_head(torch.flatten(F.adaptive_avg_pool2d(features, 1), 1))
        return logits, features


def build(arch, classes):
    net = getattr(torchvision.models, arch)(weights=None, num_classes=classes)
    if arch.startswith("resnet"):
        return net, lambda: ResNetCam(net)
    if arch.startswith("densenet"):
        return net, lambda: DenseNetCam(net)
    return net, lambda: SqueezeNetCam(net, classes)


def load_weights(net, path):
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = net.state_dict()
    skipped = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    head = ("fc.", "classifier.")
    if any(not k.startswith(head) for k in skipped):
        sys.exit(f"{path}: shapes differ from the model for {', '.join(skipped)}")
    for k in skipped:
        print(f"warning: {k} has shape {list(state[k].shape)}, the model {list(own[k].shape)}: "
              "left random", file=sys.stderr)
        del state[k]
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if k not in skipped]
    if missing or unexpected:
        sys.exit(f"{path}: missing {missing}, unexpected {unexpected}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", required=True, choices=["resnet18", "densenet161", "squeezenet1_1"])
    parser.add_argument("--classes", type=int, default=2, choices=[1, 2], help="outputs (default 2)")
    parser.add_argument("--weights", help="a state dict for the torchvision model (else random)")
    parser.add_argument("--preprocess", default="raw", choices=["raw", "crop224-norm"],
                        help="the manifest's preprocess; sets the tracing input size (256 or 224)")
    parser.add_argument("--seed", type=int, default=0, help="for the random weights")
    parser.add_argument("output", help="the TorchScript file to write (.pt)")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    net, wrap = build(args.arch, args.classes)
    if args.weights:
        load_weights(net, args.weights)
    model = wrap().eval()
    side = 256 if args.preprocess == "raw" else 224
    example = torch.rand(2, 3, side, side) * 255
    with torch.no_grad():
        traced = torch.jit.trace(model, example)
        logits, features = traced(example[:1])
        want_logits, want_features = model(example[:1])
    if not (torch.allclose(logits, want_logits, atol=1e-4) and torch.allclose(features, want_features, atol=1e-4)):
        sys.exit("the traced module disagrees with the model")
    weight = dict(model.named_parameters())[model.classifier]

    tmp = f"{args.output}.tmp.{os.getpid()}"
    try:
        torch.jit.save(traced, tmp)
        os.replace(tmp, args.output)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    with open(args.output, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()

    print(f"wrote {args.output}: {args.arch}, features [N, {features.shape[1]}, "
          f"{features.shape[2]}, {features.shape[3]}] at {side} px, classifier {model.classifier} "
          f"{list(weight.shape)}")
    print(f"""
[models.TASK-PLANE]            # e.g. acl-sagittal
file = "{os.path.basename(args.output)}"
arch = "torchscript"
classes = {args.classes}
preprocess = "{args.preprocess}"
sha256 = "{digest}"
classifier = "{model.classifier}\"""")


if __name__ == "__main__":
    main()
