#!/usr/bin/env python3
"""kneecam against the reference Python pipeline, on one machine, one exam, one set of weights
and the same thread count (scripts/bench-reference runs this).

Measures (medians of --repeats runs, after a warm-up):
  1. the whole per-patient PNG export: `kneecam cam --png` as a whole process, against the
     reference pipeline inside an already-running interpreter (model loaded);
  2. the forward pass + CAM compute: kneecam's own timings (summary.json) against PyTorch eager
     with the reference's forward hook and NumPy CAM;
  3. Grad-CAM: kneecam's `--method gradcam` (forward + CAM) against pytorch-grad-cam's GradCAM
     on the same model (forward, backward, maps resized to the slice);
  4. with --cohort N (default 20): the reference code's cohort loop against `kneecam export`
     (cohort.py), once from an empty CAM store and once from the store that run filled;
     --only-cohort skips 1-3.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import cv2
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mrnet_cam  # noqa: E402
import cohort  # noqa: E402


def median_ms(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def make_inputs(out, slices):
    torch.manual_seed(0)
    model = mrnet_cam.MRNet()
    state = {
        k: v
        for k, v in model.state_dict().items()
        if k.startswith("pretrained_model.features.") or k.startswith("classifer.")
    }
    weights = os.path.join(out, "mrnet.pt")
    torch.save(state, weights)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:256, 0:256]
    exam = np.stack(
        [
            np.clip(
                128 + 80 * np.sin((xx + 7 * s) / 23.0) * np.cos((yy - 5 * s) / 31.0)
                + rng.normal(0, 12, (256, 256)),
                0,
                255,
            )
            for s in range(slices)
        ]
    ).astype(np.uint8)
    exam_path = os.path.join(out, "exam.npy")
    np.save(exam_path, exam)
    return weights, exam_path, exam


def kneecam_runs(kneecam, weights, exam_path, out, method, png, repeats, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    dest = os.path.join(out, f"kneecam-{method}")
    cmd = [kneecam, "--device", "cpu", "cam", "--model", weights, "--exam", exam_path,
           "--method", method, "--normalize", "slice", "--out", dest, "--force"]
    if png:
        cmd.append("--png")
    walls, computes, work = [], [], []
    for run in range(repeats + 1):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
        wall = (time.perf_counter() - start) * 1e3
        with open(os.path.join(dest, "summary.json")) as f:
            timings = json.load(f)["timings_ms"]
        if run > 0:  # the first run warms the page cache
            walls.append(wall)
            computes.append(timings["forward"] + timings["cam"])
            # What the in-interpreter Python pipeline is timed on: all but process start-up
            # and model loading.
            work.append(timings["load_exam"] + timings["forward"] + timings["cam"] + timings["write"])
    return statistics.median(walls), statistics.median(computes), statistics.median(work)


COLD = """
import sys, time, torch
sys.path.insert(0, sys.argv[1])
import mrnet_cam, numpy as np
torch.set_num_threads(int(sys.argv[4]))
model = mrnet_cam.load_model(sys.argv[2])
exam = np.load(sys.argv[3])
start = time.perf_counter()
mrnet_cam.forward_and_cams(model, exam)
print((time.perf_counter() - start) * 1e3)
"""


def cold_forward_cam(weights, exam_path, threads, repeats):
    """The first forward + CAM in a fresh interpreter, as kneecam's single-shot process does
    it (one-time kernel set-up included)."""
    here = os.path.dirname(os.path.abspath(__file__))
    times = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", COLD, here, weights, exam_path, str(threads)],
            check=True, capture_output=True, text=True,
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


SCRIPT = """
import sys
sys.path.insert(0, sys.argv[1])
import cv2, numpy as np, torch
import mrnet_cam
torch.set_num_threads(int(sys.argv[5]))
cv2.setNumThreads(int(sys.argv[5]))
mrnet_cam.export_patient(mrnet_cam.load_model(sys.argv[2]), np.load(sys.argv[3]), sys.argv[4])
"""


def python_script_export(weights, exam_path, out, threads, repeats):
    """The reference export as a script run from the shell: interpreter start, imports, model
    load and the export, timed from outside as kneecam's whole process is."""
    here = os.path.dirname(os.path.abspath(__file__))
    dest = os.path.join(out, "python-script-export")
    times = []
    for run in range(repeats + 1):
        shutil.rmtree(dest, ignore_errors=True)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", SCRIPT, here, weights, exam_path, dest,
                        str(threads)], check=True)
        if run > 0:  # the first run warms the page cache
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def gradcam_python(model, exam, repeats):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    # The slices as the batch, [S, 3, H, W] (the model's squeeze(0) leaves it so): a 5-D input
    # would make pytorch-grad-cam take the slices for a 3-D volume.
    x = mrnet_cam.to_input(exam).squeeze(0)
    cam = GradCAM(model=model, target_layers=[model.pretrained_model.features])
    targets = [ClassifierOutputTarget(1)]
    return median_ms(lambda: cam(input_tensor=x, targets=targets), repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kneecam", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--slices", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cohort", type=int, default=20, help="exams in the cohort export (0: none)")
    parser.add_argument("--only-cohort", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    rows, fidelity = [], None
    if args.cohort > 0:
        rows, fidelity = cohort.compare_cohort(args.kneecam, os.path.join(args.out, "cohort"),
                                               args.cohort, args.threads)
    if not args.only_cohort:
        rows = single_exam_rows(args) + rows
    print_report(args, rows, fidelity)


def single_exam_rows(args):
    weights, exam_path, exam = make_inputs(args.out, args.slices)
    model = mrnet_cam.load_model(weights)
    x = mrnet_cam.to_input(exam)

    def export():
        dest = os.path.join(args.out, "python-export")
        shutil.rmtree(dest, ignore_errors=True)
        mrnet_cam.export_patient(model, exam, dest)

    def forward_only():
        with torch.no_grad():
            model(x)

    py = {
        "export": median_ms(export, args.repeats),
        "forward": median_ms(forward_only, args.repeats),
        "forward_cam": median_ms(lambda: mrnet_cam.forward_and_cams(model, exam), args.repeats),
        "gradcam": gradcam_python(model, exam, args.repeats),
    }
    py["cold_forward_cam"] = cold_forward_cam(weights, exam_path, args.threads, args.repeats)
    py["script_export"] = python_script_export(weights, exam_path, args.out, args.threads,
                                               args.repeats)
    kc_export, kc_cam, kc_work = kneecam_runs(
        args.kneecam, weights, exam_path, args.out, "cam", True, args.repeats, args.threads
    )
    _, kc_gradcam, _ = kneecam_runs(
        args.kneecam, weights, exam_path, args.out, "gradcam", False, args.repeats, args.threads
    )
    print(f"(PyTorch eager forward alone: {py['forward']:.1f} ms)")
    return [
        ("PNG export of the exam (kneecam: whole process)", py["export"], kc_export, None),
        ("PNG export, work only (no process start, no model load)", py["export"], kc_work, None),
        ("PNG export, whole process vs the reference as a script from the shell",
         py["script_export"], kc_export, None),
        ("forward + CAM compute (Python warm)", py["forward_cam"], kc_cam, 0.95),
        ("forward + CAM compute, first in a fresh process", py["cold_forward_cam"], kc_cam, None),
        ("Grad-CAM (pytorch-grad-cam vs kneecam)", py["gradcam"], kc_gradcam, 2.0),
    ]


def print_report(args, rows, fidelity):
    print(f"AlexNet MRNet, {args.slices} slices 256x256 (cohort: 20-40), CPU, {args.threads} "
          f"threads, torch {torch.__version__}, medians of {args.repeats} (cohort: one run)")
    print("| what | Python (ms) | kneecam (ms) | speed-up | target |")
    print("|---|---|---|---|---|")
    report = []
    for name, python_ms, kneecam_ms, target in rows:
        speedup = python_ms / kneecam_ms
        if target is None:
            goal = "—"
        else:
            goal = f"≥ {target}x ({'met' if speedup >= target else 'missed'})"
        print(f"| {name} | {python_ms:.1f} | {kneecam_ms:.1f} | {speedup:.2f}x | {goal} |")
        report.append(dict(what=name, python_ms=python_ms, kneecam_ms=kneecam_ms,
                           speedup=speedup, target=target))
    if fidelity is not None:
        print(f"cohort tree: same files as the reference loop's: {fidelity['same_file_tree']}; "
              f"slice PNGs identical: {fidelity['slice_pngs_identical']}; overlays differ by at "
              f"most {fidelity['overlay_max_difference']} per channel "
              f"({fidelity['overlay_values_differing']} of {fidelity['overlay_values']} values "
              f"differ; all {fidelity['files']} files compared; NumPy's OpenBLAS kernels: "
              f"{fidelity['openblas_core']})")
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(dict(rows=report, cohort_fidelity=fidelity, slices=args.slices,
                       threads=args.threads), f, indent=2)


if __name__ == "__main__":
    main()
