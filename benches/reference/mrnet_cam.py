"""The reference pipeline: a faithful re-implementation of the per-patient CAM export of the
MRNet blog series' code (PyTorch forward with a forward hook on AlexNet's `features`, NumPy CAM
per slice, OpenCV resize and JET colormap, PIL PNG saving of every slice and overlay).

Used by compare.py to time it against `kneecam cam --png` on the same exam, weights and threads.
"""
import os

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from PIL import Image


class MRNet(nn.Module):
    """The reference model: AlexNet features per slice, global average pool, max over slices,
    Linear(256, 2). Attribute names as the reference (`classifer` sic), so its state dicts load."""

    def __init__(self):
        super().__init__()
        self.pretrained_model = torchvision.models.alexnet(weights=None)
        self.pooling_layer = nn.AdaptiveAvgPool2d(1)
        self.classifer = nn.Linear(256, 2)

    def forward(self, x):
        x = torch.squeeze(x, dim=0)
        features = self.pretrained_model.features(x)
        pooled_features = self.pooling_layer(features)
        pooled_features = pooled_features.view(pooled_features.size(0), -1)
        flattened_features = torch.max(pooled_features, 0, keepdim=True)[0]
        return self.classifer(flattened_features)


def load_model(weights):
    mrnet = MRNet()
    state = torch.load(weights, map_location="cpu", weights_only=True)
    mrnet.load_state_dict(state, strict=False)
    return mrnet.eval()


def to_input(array):
    """The reference preprocessing: raw 0-255 values, stacked to 3 channels, a batch of one."""
    array = np.stack((array,) * 3, axis=1)
    return torch.FloatTensor(array).unsqueeze(0)


def return_cam(feature_conv, weight_softmax, class_idx):
    """The reference CAM: per slice, w·A, shifted and scaled to 0-255, resized to 256x256."""
    size_upsample = (256, 256)
    bz, nc, h, w = feature_conv.shape
    slice_cams = []
    for s in range(bz):
        for idx in class_idx:
            cam = weight_softmax[idx].dot(feature_conv[s].reshape((nc, h * w)))
            cam = cam.reshape(h, w)
            cam = cam - np.min(cam)
            cam_img = cam / np.max(cam)
            cam_img = np.uint8(255 * cam_img)
            slice_cams.append(cv2.resize(cam_img, size_upsample))
    return slice_cams


def forward_and_cams(mrnet, array):
    """Forward pass with the hook, then the per-slice CAMs of the top class."""
    features_blobs = []

    def hook_feature(module, input, output):
        features_blobs.append(output.data.cpu().numpy())

    handle = mrnet._modules.get("pretrained_model")._modules.get("features").register_forward_hook(
        hook_feature
    )
    try:
        params = list(mrnet.parameters())
        weight_softmax = np.squeeze(params[-2].cpu().data.numpy())
        with torch.no_grad():
            logit = mrnet(to_input(array))
        h_x = F.softmax(logit, dim=1).data.squeeze(0)
        probs, idx = h_x.sort(0, True)
        idx = idx.cpu().numpy()
        return return_cam(features_blobs[-1], weight_softmax, [idx[0]]), probs
    finally:
        handle.remove()


def export_patient(mrnet, array, out):
    """The whole per-patient export: CAMs, then every slice and overlay as PNG."""
    slice_cams, _ = forward_and_cams(mrnet, array)
    os.makedirs(os.path.join(out, "slices"), exist_ok=True)
    os.makedirs(os.path.join(out, "cams"), exist_ok=True)
    for s in range(array.shape[0]):
        img = array[s, :, :]
        Image.fromarray(img).save(os.path.join(out, "slices", f"{s}.png"))
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        heatmap = cv2.applyColorMap(cv2.resize(slice_cams[s], (256, 256)), cv2.COLORMAP_JET)
        result = heatmap * 0.3 + img * 0.5
        Image.fromarray(np.uint8(result)[:, :, ::-1]).save(os.path.join(out, "cams", f"{s}.png"))
