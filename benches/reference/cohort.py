"""The cohort export, side by side: the reference code's part-3 loop (every ACL-positive case
of the validation split, every plane, every slice and overlay as PNGs) timed inside a running
interpreter with its three models loaded, against `kneecam export --layout reference` timed as
a whole process, then again from the CAM store the first run filled.

Used by compare.py (`--cohort N`); the data and models are made here: N exams of 20-40 slices in
MRNet's layout, and three random-weight AlexNet MRNets with the reference code's key names.

Run as a script it is the fidelity check that tests/precompute/reference.rs runs: both trees on a
small cohort, every file compared, a JSON summary on stdout.
  cohort.py --kneecam BIN --out DIR [--exams 3] [--threads 2]
"""
import os
import shutil
import subprocess
import time

import numpy as np
import torch

import mrnet_cam
import numpy_dot

PLANES = ("axial", "coronal", "sagittal")


def make_cohort(out, exams):
    """`valid/{plane}/{id}.npy` and the six CSVs (every exam ACL-positive), and a kneecam
    models folder with an acl model per plane."""
    data = os.path.join(out, "cohort")
    models = os.path.join(out, "models")
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(models, ignore_errors=True)
    os.makedirs(models)
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:256, 0:256]
    ids = [1130 + i for i in range(exams)]
    for plane in PLANES:
        os.makedirs(os.path.join(data, "valid", plane))
        for n, case in enumerate(ids):
            slices = 20 + (7 * n + 3 * PLANES.index(plane)) % 21
            volume = np.stack([
                np.clip(128 + 80 * np.sin((xx + 7 * s + n) / 23.0) * np.cos((yy - 5 * s) / 31.0)
                        + rng.normal(0, 12, (256, 256)), 0, 255)
                for s in range(slices)
            ]).astype(np.uint8)
            np.save(os.path.join(data, "valid", plane, f"{case:04d}.npy"), volume)
    for split in ("train", "valid"):
        for task in ("abnormal", "acl", "meniscus"):
            rows = "".join(f"{case},1\n" for case in ids) if split == "valid" else ""
            with open(os.path.join(data, f"{split}-{task}.csv"), "w") as f:
                f.write(rows)
    manifest = ["format = 1\n"]
    weights = {}
    for i, plane in enumerate(PLANES):
        torch.manual_seed(100 + i)
        model = mrnet_cam.MRNet()
        state = {k: v for k, v in model.state_dict().items()
                 if k.startswith("pretrained_model.features.") or k.startswith("classifer.")}
        path = os.path.join(models, f"acl-{plane}.pt")
        torch.save(state, path)
        weights[plane] = path
        manifest.append(f'\n[models.acl-{plane}]\nfile = "acl-{plane}.pt"\narch = "mrnet"\n'
                        f'classes = 2\nsha256 = "{sha256(path)}"\n')
    with open(os.path.join(models, "manifest.toml"), "w") as f:
        f.write("".join(manifest))
    return data, models, weights, ids


def sha256(path):
    import hashlib
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def reference_loop(data, weights, ids, out):
    """The reference code's part 3 with its models already loaded: per plane and patient, the
    CAMs and every slice and overlay PNG under CAMS/{plane}/{patient}/."""
    loaded = {plane: mrnet_cam.load_model(weights[plane]) for plane in PLANES}
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    for plane in PLANES:
        for case in ids:
            array = np.load(os.path.join(data, "valid", plane, f"{case:04d}.npy"))
            mrnet_cam.export_patient(loaded[plane], array, os.path.join(out, plane, f"{case:04d}"))
    return time.perf_counter() - start


def kneecam_export(kneecam, data, models, out, cache, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    shutil.rmtree(out, ignore_errors=True)
    cmd = [kneecam, "--device", "cpu", "export", "--data", data, "--models", models,
           "--out", out, "--task", "acl", "--which", "positives", "--layout", "reference",
           "--normalize", "slice", "--cache", cache]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def compare_every_file(reference, kneecam):
    """Every PNG of the reference tree against kneecam's: same names, sizes and modes; slices
    pixel for pixel; overlays' largest per-channel difference, how many values differ and how
    many overlays differ anywhere by more than 1."""
    from PIL import Image

    def files(root):
        return sorted(os.path.relpath(os.path.join(d, f), root)
                      for d, _, names in os.walk(root) for f in names)
    names = files(reference)
    summary = dict(same_file_tree=names == files(kneecam), files=len(names), same_sizes=True,
                   slice_pngs_identical=True, overlay_max_difference=0,
                   overlay_values_differing=0, overlay_values=0, overlays=0,
                   overlays_beyond_1=0)
    for rel in names:
        path = os.path.join(kneecam, rel)
        if not os.path.exists(path):
            continue
        a, b = Image.open(os.path.join(reference, rel)), Image.open(path)
        if (a.size, a.mode) != (b.size, b.mode):
            summary["same_sizes"] = False
            continue
        pa, pb = np.asarray(a).astype(int), np.asarray(b).astype(int)
        if os.sep + "slices" + os.sep in rel:
            summary["slice_pngs_identical"] &= bool(np.array_equal(pa, pb))
        else:
            difference = np.abs(pa - pb)
            summary["overlays"] += 1
            summary["overlays_beyond_1"] += int(difference.max() > 1)
            summary["overlay_max_difference"] = max(summary["overlay_max_difference"],
                                                    int(difference.max()))
            summary["overlay_values_differing"] += int((difference > 0).sum())
            summary["overlay_values"] += int(difference.size)
    return summary


def check(kneecam, out, exams, threads):
    """The fidelity check: a small cohort through both pipelines, every file compared."""
    data, models, weights, ids = make_cohort(out, exams)
    shutil.rmtree(os.path.join(out, "store"), ignore_errors=True)
    torch.set_num_threads(threads)
    reference_loop(data, weights, ids, os.path.join(out, "CAMS-python"))
    kneecam_export(kneecam, data, models, os.path.join(out, "CAMS-kneecam"),
                   os.path.join(out, "store"), threads)
    summary = compare_every_file(os.path.join(out, "CAMS-python"),
                                 os.path.join(out, "CAMS-kneecam"))
    summary["openblas_core"] = numpy_dot.corename()
    return summary


def compare_cohort(kneecam, out, exams, threads):
    """Rows for compare.py's table, and the fidelity of kneecam's tree to the reference's."""
    data, models, weights, ids = make_cohort(out, exams)
    python_s = reference_loop(data, weights, ids, os.path.join(out, "CAMS-python"))
    cache = os.path.join(out, "store")
    shutil.rmtree(cache, ignore_errors=True)
    cold_s = kneecam_export(kneecam, data, models, os.path.join(out, "CAMS-kneecam"), cache,
                            threads)
    stored_s = kneecam_export(kneecam, data, models, os.path.join(out, "CAMS-kneecam-stored"),
                              cache, threads)
    fidelity = compare_every_file(os.path.join(out, "CAMS-python"),
                                  os.path.join(out, "CAMS-kneecam"))
    series = exams * len(PLANES)
    rows = [
        (f"cohort export, {exams} exams x 3 planes (kneecam: whole process)",
         python_s * 1e3, cold_s * 1e3, 3.0),
        ("cohort export from a filled CAM store (kneecam: whole process)",
         python_s * 1e3, stored_s * 1e3, 10.0),
    ]
    fidelity["series"] = series
    fidelity["openblas_core"] = numpy_dot.corename()
    return rows, fidelity


if __name__ == "__main__":
    import argparse
    import json
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kneecam", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--exams", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(check(args.kneecam, args.out, args.exams, args.threads)))
