//! Opening a dataset of 100 DICOM studies reads headers only; the target is under 2 s on two
//! cores. Each study has three series (axial 40, coronal 34, sagittal 30 slices: MRNet's
//! typical counts), one file per slice, 10,400 files in all. The images are 32×32: opening stops
//! at the pixel data, so its size does not matter (a 256×256 image only adds bytes after it).
use std::fs;
use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{meta::FileMetaTableBuilder, InMemDicomObject};
use kneecam::data::dataset::{Dataset, Layout};

const STUDIES: usize = 100;
const SIDE: u16 = 32;

fn slice_file(path: &Path, series: &str, plane: usize, k: usize) -> std::io::Result<()> {
    let (orientation, normal): ([f64; 6], [f64; 3]) = match plane {
        0 => ([1., 0., 0., 0., 1., 0.], [0., 0., 1.]),
        1 => ([1., 0., 0., 0., 0., -1.], [0., -1., 0.]),
        _ => ([0., 1., 0., 0., 0., -1.], [1., 0., 0.]),
    };
    let position = normal.map(|n| n * 3.0 * k as f64);
    let ds = |values: &[f64]| PrimitiveValue::Strs(values.iter().map(|v| format!("{v}")).collect());
    let instance = format!("{series}.{k}");
    let obj = InMemDicomObject::from_element_iter([
        DataElement::new(tags::SOP_CLASS_UID, VR::UI, uids::MR_IMAGE_STORAGE),
        DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, instance.as_str()),
        DataElement::new(tags::MODALITY, VR::CS, "MR"),
        DataElement::new(tags::SERIES_INSTANCE_UID, VR::UI, series),
        DataElement::new(tags::SERIES_DESCRIPTION, VR::LO, "bench"),
        DataElement::new(tags::IMAGE_POSITION_PATIENT, VR::DS, ds(&position)),
        DataElement::new(tags::IMAGE_ORIENTATION_PATIENT, VR::DS, ds(&orientation)),
        DataElement::new(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16)),
        DataElement::new(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(SIDE)),
        DataElement::new(tags::COLUMNS, VR::US, PrimitiveValue::from(SIDE)),
        DataElement::new(tags::PIXEL_SPACING, VR::DS, ds(&[4.8, 4.8])),
        DataElement::new(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16)),
        DataElement::new(tags::BITS_STORED, VR::US, PrimitiveValue::from(16u16)),
        DataElement::new(tags::HIGH_BIT, VR::US, PrimitiveValue::from(15u16)),
        DataElement::new(
            tags::PIXEL_REPRESENTATION,
            VR::US,
            PrimitiveValue::from(0u16),
        ),
        DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(vec![k as u16; usize::from(SIDE) * usize::from(SIDE)].into()),
        ),
    ]);
    let file = obj
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN))
        .map_err(std::io::Error::other)?;
    file.write_to_file(path).map_err(std::io::Error::other)
}

fn build(root: &Path) -> std::io::Result<()> {
    for study in 0..STUDIES {
        for (plane, slices) in [40, 34, 30].into_iter().enumerate() {
            let folder = root
                .join(format!("knee-{study:03}"))
                .join(format!("SE{plane}"));
            fs::create_dir_all(&folder)?;
            let series = format!("2.25.{}{}", study + 1, plane + 1);
            for k in 0..slices {
                slice_file(
                    &folder.join(format!("IM{:04}", (k * 7) % slices)),
                    &series,
                    plane,
                    k,
                )?;
            }
        }
    }
    Ok(())
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    build(dir.path()).expect("building the studies");
    let check = Dataset::open(dir.path()).expect("open");
    assert_eq!(check.layout(), Layout::Studies);
    assert_eq!(check.exams().len(), STUDIES);
    assert!(check.problems().is_empty(), "{:?}", &check.problems()[..1]);
    assert!(check
        .exams()
        .iter()
        .all(|e| e.available_planes().count() == 3));

    let mut group = c.benchmark_group("studies");
    group.sample_size(10);
    group.bench_function("open 100 DICOM studies (10,400 files)", |b| {
        b.iter(|| Dataset::open(black_box(dir.path())).map(|d| d.exams().len()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
