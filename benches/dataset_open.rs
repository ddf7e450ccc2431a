//! Opening an MRNet-sized dataset (1,250 exams × 3 planes, six label CSVs) lists folders and
//! reads the CSVs only; the target is well under 100 ms. The volumes are tiny valid `.npy`
//! files: their size does not matter, since opening reads none of them. The header scan that
//! `kneecam dataset summary` does is measured too.
use std::fs;
use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use kneecam::data::dataset::Dataset;
use kneecam::data::npy::write_u8_volume;

fn build(root: &Path) -> std::io::Result<()> {
    let volume = ndarray::Array3::<u8>::zeros((1, 1, 1));
    for (split, ids) in [("train", 0u32..1130), ("valid", 1130..1250)] {
        for plane in ["axial", "coronal", "sagittal"] {
            let folder = root.join(split).join(plane);
            fs::create_dir_all(&folder)?;
            for id in ids.clone() {
                write_u8_volume(&folder.join(format!("{id:04}.npy")), &volume)?;
            }
        }
        for task in ["abnormal", "acl", "meniscus"] {
            let rows: String = ids
                .clone()
                .map(|id| format!("{id:04},{}\n", id % 2))
                .collect();
            fs::write(root.join(format!("{split}-{task}.csv")), rows)?;
        }
    }
    Ok(())
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    build(dir.path()).expect("building the dataset");
    let check = Dataset::open(dir.path()).expect("open");
    assert_eq!(check.exams().len(), 1250);
    assert!(check.problems().is_empty(), "{:?}", check.problems());

    c.bench_function("open 1,250 exams", |b| {
        b.iter(|| Dataset::open(black_box(dir.path())).map(|d| d.exams().len()))
    });
    c.bench_function("scan 3,750 headers", |b| {
        b.iter(|| black_box(&check).scan_headers().volumes.len())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
