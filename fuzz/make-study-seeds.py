"""Writes the `study_header` fuzz target's seeds with pydicom and nibabel (independent writers):
small DICOM MR images in several encodings and NIfTI-1 headers, sagittal, coronal, axial and
oblique. Run: python fuzz/make-study-seeds.py fuzz/corpus/study_header"""
import io, math, os, sys

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                         MRImageStorage)

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
orientations = {
    "axial": [1, 0, 0, 0, 1, 0],
    "coronal": [1, 0, 0, 0, 0, -1],
    "sagittal": [0, 1, 0, 0, 0, -1],
    "oblique": [math.cos(0.35), math.sin(0.35), 0, 0, 0, -1],
}


def dicom(name, syntax, orientation, frames=1):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = "2.25.1"
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, "2.25.1"
    ds.SeriesInstanceUID, ds.SeriesDescription, ds.SeriesNumber = "2.25.2", "SAG T2 FS", 3
    ds.Modality, ds.Rows, ds.Columns = "MR", 4, 4
    ds.PixelSpacing = [0.5, 0.5]
    ds.ImageOrientationPatient = orientation
    ds.ImagePositionPatient = [-1.0, -1.0, 2.0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = 2, -10
    if frames > 1:
        ds.NumberOfFrames = frames
        del ds.ImagePositionPatient
        groups = []
        for f in range(frames):
            position = Dataset()
            position.ImagePositionPatient = [-1.0, -1.0, 2.0 + 3 * f]
            group = Dataset()
            group.PlanePositionSequence = [position]
            groups.append(group)
        ds.PerFrameFunctionalGroupsSequence = groups
    ds.PixelData = np.arange(16 * frames, dtype=np.uint16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True, little_endian=syntax != ExplicitVRBigEndian,
               implicit_vr=syntax == ImplicitVRLittleEndian)
    with open(os.path.join(out, name), "wb") as f:
        f.write(buffer.getvalue())


for plane, orientation in orientations.items():
    dicom(f"dicom-{plane}", ExplicitVRLittleEndian, orientation)
dicom("dicom-implicit", ImplicitVRLittleEndian, orientations["sagittal"])
dicom("dicom-big-endian", ExplicitVRBigEndian, orientations["coronal"])
dicom("dicom-multiframe", ExplicitVRLittleEndian, orientations["axial"], frames=3)

for plane, affine in {
    "axial": np.diag([-0.6, -0.6, 3.0, 1.0]),
    "sagittal": np.array([[0, 0, 3.0, 0], [0.6, 0, 0, 0], [0, 0.6, 0, 0], [0, 0, 0, 1]]),
}.items():
    image = nib.Nifti1Image(np.zeros((4, 4, 3), dtype=np.uint8), affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    with open(os.path.join(out, f"nifti-{plane}"), "wb") as f:
        f.write(image.to_bytes())
