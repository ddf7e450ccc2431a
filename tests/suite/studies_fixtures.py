# Real DICOM and NIfTI files for tests/suite/studies.rs, written by independent writers (pydicom
# and nibabel, from scripts/setup-libtorch's virtualenv) from a phantom `.npy` cohort.
#
#   python studies_fixtures.py OUT FINAL COHORT
#
# OUT: the folder to fill (renamed to FINAL afterwards); COHORT: a `kneecam synth` cohort (MRNet
# layout). Writes, under OUT:
#   dicom/<exam>/...            the cohort as DICOM studies (nested folders, random names, no
#                               extensions, InstanceNumber not in position order, 16-bit stored
#                               values with a rescale that gives back the uint8 voxels)
#   nifti/<exam>/<plane>.nii.gz the cohort as NIfTI-1 volumes (sform and qform; one .nii)
#   multiframe/<exam>/...       one series as an Enhanced MR multi-frame file
#   oblique/<plane><angle>/     small series tilted by ±20° about an in-plane axis
#   bad/<case>/...              one bad input per folder
#   pydicom/<name>/<name>.dcm   pydicom's own test files; MR_small.i16 its decoded pixels
#   written.json                what was written where, for the Rust side to check
import gzip
import hashlib
import json
import math
import os
import random
import shutil
import struct
import sys

import nibabel as nib
import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    EnhancedMRImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    RLELossless,
)

out, final, cohort = sys.argv[1], sys.argv[2], sys.argv[3]
rng = random.Random(17)
PLANES = ["axial", "coronal", "sagittal"]
TASKS = ["abnormal", "acl", "meniscus"]
written = {"series": [], "bad": {}, "oblique": [], "pydicom": {}, "labels": {}}


def uid(*parts):
    # Deterministic UIDs (the fixtures are the same every time they are made).
    digest = int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:24], 16)
    return f"2.25.{digest}"


def random_name():
    return "".join(rng.choice("0123456789ABCDEF") for _ in range(8))


def unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


# --- geometry -------------------------------------------------------------------------------

# The phantom's series axes (src/data/phantom/render.rs): along a row, down a column, and the
# direction the slices advance in. The coronal slices advance against row × column, so one
# plane's file order is the opposite of its position order along the DICOM normal.
AXES = {
    "sagittal": ([0, -1, 0], [0, 0, -1], [1, 0, 0]),
    "coronal": ([1, 0, 0], [0, 0, -1], [0, -1, 0]),
    "axial": ([1, 0, 0], [0, -1, 0], [0, 0, -1]),
}


def geometry(split, plane, case, volume):
    """origins (one per .npy slice), column_step (along a row), row_step (down a column)."""
    path = f"{cohort}/{split}/geometry/{plane}/{case}.json"
    if os.path.exists(path):
        with open(path) as f:
            g = json.load(f)
        return (
            [np.array(o, dtype=float) for o in g["origins"]],
            np.array(g["column_step"], dtype=float),
            np.array(g["row_step"], dtype=float),
            "geometry file",
        )
    slices, rows, columns = volume.shape
    along, down, advance = (np.array(a, dtype=float) for a in AXES[plane])
    pixel, thickness = 0.6, 3.0
    centre = np.array([1.5, -2.0, 8.0])
    first = centre - along * pixel * (columns - 1) / 2 - down * pixel * (rows - 1) / 2
    first = first - advance * thickness * (slices - 1) / 2
    origins = [first + advance * thickness * s for s in range(slices)]
    return origins, along * pixel, down * pixel, "synthesised"


def cohort_exams():
    exams = []
    for split in ["train", "valid"]:
        folder = f"{cohort}/{split}/axial"
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if name.endswith(".npy"):
                exams.append((split, name[:-4]))
    return exams


# --- DICOM ----------------------------------------------------------------------------------


def base_dataset(sop_class, sop_uid, syntax):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.Modality = "MR"
    ds.PatientName = "Phantom^Knee"
    ds.PatientID = "PHANTOM"
    ds.StudyDate = "20260101"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    return ds


# How the uint8 voxels v become stored values, per encoding: stored * slope + intercept == v.
ENCODINGS = {
    # unsigned 12-bit in 16: stored = (v + 20) * 2
    "unsigned": dict(signed=False, bits=12, slope=0.5, intercept=-20.0,
                     store=lambda v: (v.astype(np.int32) + 20) * 2),
    # signed 16-bit, negative values: stored = v * 4 - 500
    "signed": dict(signed=True, bits=16, slope=0.25, intercept=125.0,
                   store=lambda v: v.astype(np.int32) * 4 - 500),
}


def pixel_bytes(stored, signed, little):
    dtype = ("<" if little else ">") + ("i2" if signed else "u2")
    return np.ascontiguousarray(stored.astype(dtype)).tobytes()


def write_file(ds, path, syntax):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    little = syntax != ExplicitVRBigEndian
    implicit = syntax == ImplicitVRLittleEndian
    ds.save_as(path, implicit_vr=implicit, little_endian=little, enforce_file_format=True)


def write_series(folder, exam, plane, volume, origins, column_step, row_step, *, syntax,
                 encoding, description, number, series_uid, keep=None):
    """One classic single-frame series: a file per slice, under nested folders of `folder`.
    keep: the .npy slice indices to write (default all). Returns what it wrote."""
    enc = ENCODINGS[encoding]
    slices = list(range(volume.shape[0])) if keep is None else list(keep)
    # Instance numbers deliberately in neither position nor file order.
    numbers = list(range(1, len(slices) + 1))
    rng.shuffle(numbers)
    subfolders = [os.path.join(folder, random_name(), random_name()) for _ in range(2)]
    subfolders.append(os.path.join(folder, random_name()))
    iop = [float(x) for x in list(unit(column_step)) + list(unit(row_step))]
    spacing = [float(np.linalg.norm(row_step)), float(np.linalg.norm(column_step))]
    thickness = float(np.linalg.norm(origins[1] - origins[0])) if len(origins) > 1 else 3.0
    files = []
    for index, s in enumerate(slices):
        sop = uid(exam, plane, series_uid, s)
        ds = base_dataset(MRImageStorage, sop, syntax)
        ds.StudyInstanceUID = uid(exam, "study")
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = uid(exam, "frame")
        ds.SeriesDescription = description
        ds.SeriesNumber = number
        ds.InstanceNumber = numbers[index]
        ds.ImageOrientationPatient = iop
        ds.ImagePositionPatient = [float(x) for x in origins[s]]
        ds.PixelSpacing = spacing
        ds.SliceThickness = thickness
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[2]
        ds.BitsStored = enc["bits"]
        ds.HighBit = enc["bits"] - 1
        ds.PixelRepresentation = 1 if enc["signed"] else 0
        ds.RescaleSlope = enc["slope"]
        ds.RescaleIntercept = enc["intercept"]
        ds.RescaleType = "US"
        stored = enc["store"](volume[s])
        if syntax == RLELossless:
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            arr = stored.astype(np.int16 if enc["signed"] else np.uint16)
            ds.compress(RLELossless, arr, encoding_plugin="pydicom")
        else:
            ds.PixelData = pixel_bytes(stored, enc["signed"], syntax != ExplicitVRBigEndian)
        path = os.path.join(rng.choice(subfolders), random_name())
        write_file(ds, path, syntax)
        # Read back with pydicom: what was written is what was meant.
        back = pydicom.dcmread(path)
        got = back.pixel_array.astype(np.float64) * enc["slope"] + enc["intercept"]
        assert np.array_equal(got, volume[s].astype(np.float64)), path
        files.append(path)
    return {
        "files": [os.path.relpath(f, out) for f in files],
        "positions": [[float(x) for x in origins[s]] for s in slices],
        "npy_slices": slices,
        "instance_numbers": numbers,
    }


def write_enhanced(path, exam, plane, volume, origins, column_step, row_step, series_uid):
    """One Enhanced MR Image file: every slice a frame (in shuffled order), the geometry and the
    rescale in functional groups."""
    enc = ENCODINGS["unsigned"]
    order = list(range(volume.shape[0]))
    rng.shuffle(order)
    ds = base_dataset(EnhancedMRImageStorage, uid(exam, plane, "enhanced"), ExplicitVRLittleEndian)
    ds.StudyInstanceUID = uid(exam, "study")
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = uid(exam, "frame")
    ds.SeriesDescription = f"{plane} enhanced multi-frame"
    ds.SeriesNumber = 7
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.NumberOfFrames = len(order)
    ds.Rows, ds.Columns = volume.shape[1], volume.shape[2]
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [float(np.linalg.norm(row_step)), float(np.linalg.norm(column_step))]
    measures.SliceThickness = float(np.linalg.norm(origins[1] - origins[0]))
    shared.PixelMeasuresSequence = Sequence([measures])
    orientation = Dataset()
    orientation.ImageOrientationPatient = [float(x) for x in list(unit(column_step)) + list(unit(row_step))]
    shared.PlaneOrientationSequence = Sequence([orientation])
    transform = Dataset()
    transform.RescaleSlope = enc["slope"]
    transform.RescaleIntercept = enc["intercept"]
    transform.RescaleType = "US"
    shared.PixelValueTransformationSequence = Sequence([transform])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for f, s in enumerate(order):
        group = Dataset()
        position = Dataset()
        position.ImagePositionPatient = [float(x) for x in origins[s]]
        group.PlanePositionSequence = Sequence([position])
        content = Dataset()
        content.InStackPositionNumber = f + 1
        group.FrameContentSequence = Sequence([content])
        frames.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    stored = np.stack([enc["store"](volume[s]) for s in order])
    ds.PixelData = pixel_bytes(stored, False, True)
    write_file(ds, path, ExplicitVRLittleEndian)
    back = pydicom.dcmread(path).pixel_array.astype(np.float64) * enc["slope"] + enc["intercept"]
    assert np.array_equal(back, volume[order].astype(np.float64)), path
    return {
        "files": [os.path.relpath(path, out)],
        "positions": [[float(x) for x in origins[s]] for s in order],
        "npy_slices": order,
    }


# The cohort's studies: which planes and encodings each exam gets (by its place in the cohort).
ROLES = [
    # all three planes, three transfer syntaxes
    {"sagittal": ImplicitVRLittleEndian, "coronal": DeflatedExplicitVRLittleEndian,
     "axial": ExplicitVRLittleEndian},
    # a second, shorter sagittal series; signed big-endian coronal; RLE axial
    {"sagittal": ExplicitVRLittleEndian, "coronal": ExplicitVRBigEndian, "axial": RLELossless,
     "second_sagittal": True},
    # no coronal series
    {"sagittal": ExplicitVRLittleEndian, "axial": ExplicitVRLittleEndian},
    {"sagittal": ExplicitVRLittleEndian, "coronal": ExplicitVRLittleEndian,
     "axial": ExplicitVRLittleEndian},
]
DESCRIPTIONS = {"sagittal": "SAG T2 FS", "coronal": "COR PD", "axial": "AX PD FS"}

exams = cohort_exams()
assert len(exams) >= 3, f"need at least 3 exams in {cohort}, found {len(exams)}"
for place, (split, case) in enumerate(exams):
    role = ROLES[place % len(ROLES)]
    exam_dicom = f"{out}/dicom/{case}"
    exam_nifti = f"{out}/nifti/{case}"
    os.makedirs(exam_nifti, exist_ok=True)
    for number, plane in enumerate(PLANES, start=1):
        npy = f"{split}/{plane}/{case}.npy"
        volume = np.load(f"{cohort}/{npy}")
        assert volume.dtype == np.uint8 and volume.ndim == 3, npy
        origins, column_step, row_step, source = geometry(split, plane, case, volume)
        entry = {"exam": case, "plane": plane, "npy": npy, "geometry": source}
        # DICOM
        syntax = role.get(plane)
        if syntax is not None:
            series_uid = uid(case, plane, "series")
            encoding = "signed" if syntax == ExplicitVRBigEndian else "unsigned"
            result = write_series(
                f"{exam_dicom}/{random_name()}", case, plane, volume, origins, column_step,
                row_step, syntax=syntax, encoding=encoding, description=DESCRIPTIONS[plane],
                number=number, series_uid=series_uid)
            written["series"].append(dict(entry, kind="dicom", uid=series_uid, syntax=str(syntax),
                                          syntax_name=syntax.name, description=DESCRIPTIONS[plane],
                                          **result))
        if plane == "sagittal" and role.get("second_sagittal"):
            series_uid = uid(case, plane, "second")
            keep = list(range(0, volume.shape[0], 2))
            result = write_series(
                f"{exam_dicom}/{random_name()}", case, plane, volume, origins, column_step,
                row_step, syntax=ExplicitVRLittleEndian, encoding="unsigned",
                description="SAG T1 localiser", number=11, series_uid=series_uid, keep=keep)
            written["series"].append(dict(entry, kind="dicom", uid=series_uid, second=True,
                                          syntax=str(ExplicitVRLittleEndian),
                                          syntax_name=ExplicitVRLittleEndian.name,
                                          description="SAG T1 localiser", **result))
        # NIfTI: voxel (i, j, k) = (column, row, slice); world RAS = diag(-1, -1, 1) · LPS.
        step = origins[1] - origins[0] if len(origins) > 1 else unit(np.cross(column_step, row_step)) * 3.0
        lps = np.eye(4)
        lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3] = column_step, row_step, step, origins[0]
        ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
        image = nib.Nifti1Image(volume.transpose(2, 1, 0).copy(), ras)
        # One exam keeps only the qform (sform code 0), to read the quaternion path.
        image.set_qform(ras, code=1)
        image.set_sform(ras, code=0 if place == 1 else 1)
        image.header["descrip"] = f"{plane} phantom".encode()
        name = f"{plane}.nii" if place == 2 else f"{plane}.nii.gz"
        nib.save(image, f"{exam_nifti}/{name}")
        back = nib.load(f"{exam_nifti}/{name}")
        assert np.array_equal(np.asarray(back.dataobj).transpose(2, 1, 0), volume)
        written["series"].append(dict(entry, kind="nifti", file=f"nifti/{case}/{name}",
                                      positions=[[float(x) for x in o] for o in origins],
                                      npy_slices=list(range(volume.shape[0])),
                                      sform=place != 1))
        if place == len(exams) - 1 and plane == "axial":
            result = write_enhanced(f"{out}/multiframe/{case}/{random_name()}/{random_name()}",
                                    case, plane, volume, origins, column_step, row_step,
                                    uid(case, plane, "enhanced"))
            written["series"].append(dict(entry, kind="multiframe", **result))

# Labels for the studies, from the cohort's CSVs: DIR/{task}.csv of `exam,label` rows.
for task in TASKS:
    rows = []
    for split in ["train", "valid"]:
        path = f"{cohort}/{split}-{task}.csv"
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    if line.strip():
                        exam, label = line.strip().split(",")
                        rows.append((exam.zfill(4), label.strip()))
    written["labels"][task] = rows
    for kind in ["dicom", "nifti"]:
        with open(f"{out}/{kind}/{task}.csv", "w") as f:
            f.write("exam,label\n")
            f.writelines(f"{exam},{label}\n" for exam, label in rows)


# --- small series for oblique planes and bad inputs ------------------------------------------

def small_volume(slices=5, size=64, seed=0):
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    base = (xx * 2 + yy) % 200
    return np.stack([(base + 10 * s + r.integers(0, 5, base.shape)) % 256 for s in range(slices)]).astype(np.uint8)


def rotation(axis, degrees):
    axis = unit(axis)
    a = math.radians(degrees)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(a) * k + (1 - math.cos(a)) * (k @ k)


def small_series(folder, plane, *, tilt=None, slices=5, size=64, name="slice", syntax=ExplicitVRLittleEndian,
                 series_uid=None, mutate=None):
    """A small classic series in `folder` (files slice0..), optionally tilted: tilt = (axis
    name 'row' or 'column', degrees). mutate(index, ds) may change a file before it is saved."""
    along, down, advance = (np.array(a, dtype=float) for a in AXES[plane])
    if tilt is not None:
        axis = along if tilt[0] == "row" else down
        r = rotation(axis, tilt[1])
        along, down, advance = r @ along, r @ down, r @ advance
    volume = small_volume(slices, size)
    origins = [np.array([0.0, 0.0, 0.0]) + advance * 3.0 * s for s in range(slices)]
    series_uid = series_uid or uid(folder, "series")
    paths = []
    for s in range(slices):
        ds = base_dataset(MRImageStorage, uid(folder, s), syntax)
        ds.StudyInstanceUID = uid(folder, "study")
        ds.SeriesInstanceUID = series_uid
        ds.SeriesDescription = f"{plane} test"
        ds.SeriesNumber = 1
        ds.InstanceNumber = s + 1
        ds.ImageOrientationPatient = [float(x) for x in list(along) + list(down)]
        ds.ImagePositionPatient = [float(x) for x in origins[s]]
        ds.PixelSpacing = [0.6, 0.6]
        ds.Rows = ds.Columns = size
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 15, 0
        ds.PixelData = volume[s].astype("<u2").tobytes()
        if mutate is not None:
            mutate(s, ds)
        path = f"{folder}/{name}{s}"
        write_file(ds, path, syntax)
        paths.append(os.path.relpath(path, out))
    return paths


for plane in PLANES:
    for sign, axis in [(+20, "row"), (-20, "column"), (-20, "row"), (+20, "column")]:
        folder = f"{out}/oblique/{plane}{sign:+d}{axis}"
        small_series(folder, plane, tilt=(axis, sign))
        written["oblique"].append({"folder": os.path.relpath(folder, out), "plane": plane,
                                   "degrees": sign, "about": axis})


def bad(case, files, **facts):
    written["bad"][case] = dict(files=[os.path.relpath(f, out) if os.path.isabs(f) else f for f in files], **facts)


b = f"{out}/bad"
# Not DICOM: a text file, and a file with the DICM magic but garbage after it.
os.makedirs(f"{b}/not_dicom", exist_ok=True)
with open(f"{b}/not_dicom/notes.txt", "w") as f:
    f.write("not an image\n")
bad("not_dicom", [f"{b}/not_dicom/notes.txt"])
os.makedirs(f"{b}/garbage_after_magic", exist_ok=True)
with open(f"{b}/garbage_after_magic/IM0001", "wb") as f:
    f.write(b"\0" * 128 + b"DICM" + bytes(rng.randrange(256) for _ in range(300)))
bad("garbage_after_magic", [f"{b}/garbage_after_magic/IM0001"])

# Truncated: pydicom's MR_truncated.dcm (pixel data cut short), one file cut inside its header,
# one cut inside its pixel data.
os.makedirs(f"{b}/truncated_pydicom", exist_ok=True)
shutil.copy(get_testdata_file("MR_truncated.dcm"), f"{b}/truncated_pydicom/MR_truncated.dcm")
bad("truncated_pydicom", [f"{b}/truncated_pydicom/MR_truncated.dcm"])
paths = small_series(f"{b}/truncated_header", "sagittal", slices=3)
cut = f"{out}/{paths[1]}"
data = open(cut, "rb").read()
open(cut, "wb").write(data[:300])
bad("truncated_header", [cut])
paths = small_series(f"{b}/truncated_dataset", "sagittal", slices=3)
cut = f"{out}/{paths[0]}"
data = open(cut, "rb").read()
open(cut, "wb").write(data[: len(data) - 64 * 64 * 2 - 120])  # inside the data set, before the pixels
bad("truncated_dataset", [cut])
paths = small_series(f"{b}/truncated_pixels", "sagittal", slices=3)
cut = f"{out}/{paths[2]}"
data = open(cut, "rb").read()
open(cut, "wb").write(data[: len(data) - 2000])
bad("truncated_pixels", [cut])

# Missing pixel data, and missing required tags (one folder each).
def without(keyword):
    def mutate(index, ds):
        if index == 1:
            delattr(ds, keyword)
    return mutate


for case, keyword in [("no_pixel_data", "PixelData"), ("no_position", "ImagePositionPatient"),
                      ("no_orientation", "ImageOrientationPatient"),
                      ("no_spacing", "PixelSpacing"), ("no_rows", "Rows"),
                      ("no_series_uid", "SeriesInstanceUID")]:
    paths = small_series(f"{b}/{case}", "coronal", slices=3, mutate=without(keyword))
    bad(case, [paths[1]], tag=keyword)

# Unsupported transfer syntaxes: pydicom's JPEG-LS file, and a private one kneecam cannot know.
os.makedirs(f"{b}/jpeg_ls", exist_ok=True)
shutil.copy(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"), f"{b}/jpeg_ls/MR_small_jpeg_ls_lossless.dcm")
bad("jpeg_ls", [f"{b}/jpeg_ls/MR_small_jpeg_ls_lossless.dcm"], syntax="1.2.840.10008.1.2.4.80")
paths = small_series(f"{b}/private_syntax", "axial", slices=2)
ds = pydicom.dcmread(f"{out}/{paths[1]}")
ds.file_meta.TransferSyntaxUID = "1.2.826.0.1.3680043.9.9999.1"
ds.save_as(f"{out}/{paths[1]}", implicit_vr=False, little_endian=True, enforce_file_format=True)
bad("private_syntax", [paths[1]], syntax="1.2.826.0.1.3680043.9.9999.1")

# Inconsistent series: one file of another size, spacing or orientation; two at one position.
def change(index_to_change, **values):
    def mutate(index, ds):
        if index == index_to_change:
            for k, v in values.items():
                setattr(ds, k, v)
            if "Rows" in values:
                ds.PixelData = np.zeros((ds.Rows, ds.Columns), "<u2").tobytes()
    return mutate


paths = small_series(f"{b}/inconsistent_size", "sagittal", mutate=change(3, Rows=32, Columns=32))
bad("inconsistent_size", [paths[3]])
paths = small_series(f"{b}/inconsistent_spacing", "sagittal", mutate=change(3, PixelSpacing=[0.7, 0.7]))
bad("inconsistent_spacing", [paths[3]])
paths = small_series(f"{b}/inconsistent_orientation", "sagittal",
                     mutate=change(3, ImageOrientationPatient=[0, 1, 0, 0, 0, -1]))
bad("inconsistent_orientation", [paths[3]])
paths = small_series(f"{b}/duplicate_position", "sagittal",
                     mutate=change(3, ImagePositionPatient=[6.0, 0.0, 0.0]))
bad("duplicate_position", [paths[2], paths[3]])

# Uneven slice spacing (a slice missing): a warning naming the series' first file; it loads.
paths = small_series(f"{b}/uneven_spacing", "sagittal")
os.remove(f"{out}/{paths[2]}")
bad("uneven_spacing", [paths[0]])

# Colour: three samples per pixel.
def rgb(index, ds):
    if index == 1:
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.PixelData = np.zeros((ds.Rows, ds.Columns, 3), np.uint8).tobytes()


paths = small_series(f"{b}/rgb", "sagittal", slices=3, mutate=rgb)
bad("rgb", [paths[1]])

# A study with no coronal series: the other planes work.
small_series(f"{b}/no_coronal/sag", "sagittal")
small_series(f"{b}/no_coronal/ax", "axial")
bad("no_coronal", [])


# NIfTI: zero and singular affines, a 4-D volume, wrong vox_offsets, no orientation at all. Each
# written by nibabel with a good affine, then the header field concerned patched in place
# (nibabel refuses to write most of these itself).
def nifti(path, data, patch=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    affine = np.diag([-0.6, -0.6, 3.0, 1.0])
    image = nib.Nifti1Image(data, affine)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    nib.save(image, path)
    if patch is not None:
        packed = path.endswith(".gz")
        data = bytearray(gzip.open(path).read() if packed else open(path, "rb").read())
        patch(data)
        if packed:
            with gzip.open(path, "wb") as f:
                f.write(bytes(data))
        else:
            open(path, "wb").write(bytes(data))
    return path


def affine_patch(rows, qform_code=0):
    # qform_code (int16 at 252), sform_code (254), srow_x/y/z (float32 × 4 at 280, 296, 312).
    def patch(data):
        struct.pack_into("<hh", data, 252, qform_code, 1)
        for index, row in enumerate(rows):
            struct.pack_into("<4f", data, 280 + 16 * index, *row)
    return patch


def offset_patch(offset):
    return lambda data: struct.pack_into("<f", data, 108, offset)


cube = small_volume(4, 16).transpose(2, 1, 0).copy()
zero = [[0.0] * 4] * 3
bad("nifti_zero_affine", [nifti(f"{b}/nifti_zero_affine/cor.nii.gz", cube, affine_patch(zero))])
singular = [[-0.6, 0, -0.6, 0], [0, -0.6, 0, 0], [0, 0, 0, 0]]  # the k column along i
bad("nifti_singular_affine",
    [nifti(f"{b}/nifti_singular_affine/cor.nii.gz", cube, affine_patch(singular))])
no_orientation = lambda data: struct.pack_into("<hh", data, 252, 0, 0)
bad("nifti_no_orientation", [nifti(f"{b}/nifti_no_orientation/cor.nii", cube, no_orientation)])
bad("nifti_4d", [nifti(f"{b}/nifti_4d/cor.nii.gz", np.stack([cube, cube], axis=3))])
for case, offset in [("nifti_vox_offset_small", 100.0), ("nifti_vox_offset_past_end", 1.0e6),
                     ("nifti_vox_offset_fraction", 352.5)]:
    bad(case, [nifti(f"{b}/{case}/cor.nii", cube, offset_patch(offset))], vox_offset=offset)
# The same wrong vox_offset inside a .nii.gz: found only when the voxels are read.
bad("nifti_gz_vox_offset_past_end",
    [nifti(f"{b}/nifti_gz_vox_offset_past_end/cor.nii.gz", cube, offset_patch(1.0e6))],
    vox_offset=1.0e6)

# MONOCHROME1 (low values bright) and the same series as MONOCHROME2 (stored 255 − v): one
# pattern on every slice, slice 0 with one brighter pixel, so that a file's own range differs
# from the others'.
def monochrome(folder, photometric):
    yy, xx = np.mgrid[0:32, 0:32]
    pattern = ((xx * 3 + yy * 2) % 200).astype(np.uint16)

    def mutate(index, ds):
        v = pattern.copy()
        if index == 0:
            v[0, 0] = 250
        ds.BitsStored, ds.HighBit = 8, 7
        ds.PhotometricInterpretation = photometric
        ds.PixelData = (v if photometric == "MONOCHROME1" else 255 - v).astype("<u2").tobytes()

    return small_series(folder, "sagittal", slices=3, size=32, mutate=mutate)


monochrome(f"{out}/monochrome/1", "MONOCHROME1")
monochrome(f"{out}/monochrome/2", "MONOCHROME2")

# --- pydicom's own test files ----------------------------------------------------------------
for name in ["MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm",
             "MR_small_padded.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm",
             "MR_small_jpeg_ls_lossless.dcm", "MR_truncated.dcm", "JPGExtended.dcm"]:
    try:
        source = get_testdata_file(name)
    except Exception:
        source = None
    if source is None:
        continue
    stem = name[:-4]
    os.makedirs(f"{out}/pydicom/{stem}", exist_ok=True)
    shutil.copy(source, f"{out}/pydicom/{stem}/{name}")
    ds = pydicom.dcmread(source, stop_before_pixels=True)
    written["pydicom"][stem] = {"file": f"pydicom/{stem}/{name}",
                               "syntax": str(ds.file_meta.TransferSyntaxUID),
                               "syntax_name": ds.file_meta.TransferSyntaxUID.name}

# JPGExtended.dcm is an NM image without patient geometry: a copy with an MR series' geometry
# added (its JPEG 12-bit codestream untouched), so that it can be read as a series.
ds = pydicom.dcmread(get_testdata_file("JPGExtended.dcm"))
ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
ds.ImagePositionPatient = [0.0, 0.0, 0.0]
os.makedirs(f"{out}/pydicom/JPGExtended_geometry", exist_ok=True)
ds.save_as(f"{out}/pydicom/JPGExtended_geometry/JPGExtended.dcm", enforce_file_format=True)
written["pydicom"]["JPGExtended_geometry"] = {
    "file": "pydicom/JPGExtended_geometry/JPGExtended.dcm",
    "syntax": str(ds.file_meta.TransferSyntaxUID),
    # pydicom's own reference values for this file (its pixels_reference JPGE_16_12_1_0_1F_M2):
    # pydicom here has no 12-bit JPEG decoder to compute them.
    "reference": {"420,140": 244, "230,120": 95},
}
mr = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
pixels = mr.pixel_array
assert pixels.shape == (64, 64) and pixels.dtype == np.int16
pixels.astype("<i2").tofile(f"{out}/pydicom/MR_small.i16")
written["pydicom_versions"] = {"pydicom": pydicom.__version__, "nibabel": nib.__version__}

with open(f"{out}/written.json", "w") as f:
    json.dump(written, f, indent=1)
