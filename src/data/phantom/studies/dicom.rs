//! One phantom series as DICOM files, as a scanner writes them: MR Image Storage, one slice per
//! file, Explicit VR Little Endian, 16-bit unsigned pixels (the `.npy` values), named `IM{k}`
//! without an extension. Built as dicom-rs in-memory objects, written atomically.
use std::path::Path;

use dicom_core::smallvec::SmallVec;
use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;
use ndarray::{s, Array3};

use crate::data::geometry::{dot, unit, VolumeGeometry};
use crate::data::phantom::{io_error, PhantomError};
use crate::fsutil::atomic_write_unsynced;

/// What the files of one series say besides their pixels and geometry.
#[derive(Debug, Clone)]
pub struct SeriesInfo {
    /// PatientID, PatientName and StudyID.
    pub exam: String,
    pub study_uid: String,
    pub frame_uid: String,
    pub series_uid: String,
    /// SOPInstanceUID of each slice.
    pub instance_uids: Vec<String>,
    pub number: u32,
    pub description: String,
    pub thickness_mm: f64,
    /// `k` of each slice's file name `IM{k}`.
    pub file_numbers: Vec<u32>,
}

/// A number as a DICOM decimal string: at most 16 characters, as precise as they allow.
pub fn decimal_string(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".to_string();
    }
    let plain = v.to_string();
    if plain.len() <= 16 {
        return plain;
    }
    (0..=15)
        .rev()
        .map(|decimals| format!("{v:.decimals$}"))
        .find(|text| text.len() <= 16)
        .unwrap_or_else(|| format!("{v:.6e}"))
}

fn decimals(values: &[f64]) -> PrimitiveValue {
    PrimitiveValue::Strs(values.iter().map(|&v| decimal_string(v)).collect())
}

fn text(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
}

fn number(obj: &mut InMemDicomObject, tag: Tag, value: f64) {
    obj.put(DataElement::new(tag, VR::DS, decimals(&[value])));
}

fn short(obj: &mut InMemDicomObject, tag: Tag, value: u16) {
    obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
}

/// The file of slice `slice`.
fn slice_object(
    series: &SeriesInfo,
    geometry: &VolumeGeometry,
    image: &Array3<u8>,
    slice: usize,
) -> InMemDicomObject {
    let mut obj = InMemDicomObject::new_empty();
    let (rows, columns) = (image.dim().1, image.dim().2);
    text(&mut obj, tags::IMAGE_TYPE, VR::CS, "DERIVED\\SECONDARY");
    text(
        &mut obj,
        tags::SOP_CLASS_UID,
        VR::UI,
        uids::MR_IMAGE_STORAGE,
    );
    let instance = &series.instance_uids[slice];
    text(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, instance);
    text(&mut obj, tags::MODALITY, VR::CS, "MR");
    text(&mut obj, tags::MANUFACTURER, VR::LO, "kneecam synth");
    text(
        &mut obj,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        &series.description,
    );
    text(&mut obj, tags::PATIENT_NAME, VR::PN, &series.exam);
    text(&mut obj, tags::PATIENT_ID, VR::LO, &series.exam);
    text(&mut obj, tags::BODY_PART_EXAMINED, VR::CS, "KNEE");
    text(&mut obj, tags::SCANNING_SEQUENCE, VR::CS, "SE");
    text(&mut obj, tags::SEQUENCE_VARIANT, VR::CS, "NONE");
    text(&mut obj, tags::MR_ACQUISITION_TYPE, VR::CS, "2D");
    number(&mut obj, tags::SLICE_THICKNESS, series.thickness_mm);
    number(
        &mut obj,
        tags::SPACING_BETWEEN_SLICES,
        geometry.slice_gap_mm(),
    );
    text(
        &mut obj,
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        &series.study_uid,
    );
    text(
        &mut obj,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        &series.series_uid,
    );
    text(&mut obj, tags::STUDY_ID, VR::SH, &series.exam);
    text(
        &mut obj,
        tags::SERIES_NUMBER,
        VR::IS,
        &series.number.to_string(),
    );
    text(
        &mut obj,
        tags::INSTANCE_NUMBER,
        VR::IS,
        &(slice + 1).to_string(),
    );
    let origin = geometry.origins[slice];
    obj.put(DataElement::new(
        tags::IMAGE_POSITION_PATIENT,
        VR::DS,
        decimals(&origin),
    ));
    // Row direction (along a row: the column step), then column direction (down: the row step).
    let along = unit(geometry.column_step).unwrap_or([0.0; 3]);
    let down = unit(geometry.row_step).unwrap_or([0.0; 3]);
    obj.put(DataElement::new(
        tags::IMAGE_ORIENTATION_PATIENT,
        VR::DS,
        decimals(&[along[0], along[1], along[2], down[0], down[1], down[2]]),
    ));
    text(
        &mut obj,
        tags::FRAME_OF_REFERENCE_UID,
        VR::UI,
        &series.frame_uid,
    );
    number(
        &mut obj,
        tags::SLICE_LOCATION,
        dot(origin, geometry.normal()),
    );
    short(&mut obj, tags::SAMPLES_PER_PIXEL, 1);
    text(
        &mut obj,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2",
    );
    short(&mut obj, tags::ROWS, rows as u16);
    short(&mut obj, tags::COLUMNS, columns as u16);
    let (row_mm, column_mm) = geometry.pixel_mm();
    obj.put(DataElement::new(
        tags::PIXEL_SPACING,
        VR::DS,
        decimals(&[row_mm, column_mm]),
    ));
    short(&mut obj, tags::BITS_ALLOCATED, 16);
    short(&mut obj, tags::BITS_STORED, 16);
    short(&mut obj, tags::HIGH_BIT, 15);
    short(&mut obj, tags::PIXEL_REPRESENTATION, 0);
    number(&mut obj, tags::WINDOW_CENTER, 127.5);
    number(&mut obj, tags::WINDOW_WIDTH, 256.0);
    number(&mut obj, tags::RESCALE_INTERCEPT, 0.0);
    number(&mut obj, tags::RESCALE_SLOPE, 1.0);
    let pixels: SmallVec<[u16; 2]> = image
        .slice(s![slice, .., ..])
        .iter()
        .map(|&v| u16::from(v))
        .collect();
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(pixels),
    ));
    obj
}

/// Writes `image` (slices, rows, columns), whose voxels lie at `geometry`, as `dir/IM{k}`.
pub fn write_series(
    dir: &Path,
    series: &SeriesInfo,
    geometry: &VolumeGeometry,
    image: &Array3<u8>,
) -> Result<(), PhantomError> {
    for slice in 0..image.dim().0 {
        let path = dir.join(format!("IM{}", series.file_numbers[slice]));
        let file = slice_object(series, geometry, image, slice)
            .with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN))
            .map_err(|e| io_error(&path)(std::io::Error::other(e)))?;
        atomic_write_unsynced(&path, |w| file.write_all(w).map_err(std::io::Error::other))
            .map_err(io_error(&path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_fit_sixteen_characters_and_keep_precision() {
        for v in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.6,
            -123.456_789_012_345_67,
            1.0 / 3.0,
            -0.000_012_345_678_9,
            98_765.432_1,
        ] {
            let text = decimal_string(v);
            assert!(text.len() <= 16, "{v}: {text}");
            let back: f64 = text.parse().expect("a number");
            assert!((back - v).abs() <= 1e-9 * v.abs().max(1.0), "{v}: {text}");
        }
        assert_eq!(decimal_string(-0.0), "0");
        assert_eq!(decimal_string(0.6), "0.6");
    }
}
