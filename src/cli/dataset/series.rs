//! The studies part of `dataset summary`: per exam, every series found, its plane, size,
//! transfer syntaxes, and which one each plane uses and why.
use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::data::dataset::Dataset;
use crate::data::study::SeriesSource;
use crate::data::Plane;

pub fn summary(dataset: &Dataset) -> String {
    let mut out = String::from("\nseries (the first of each plane is the one used)\n");
    let mut syntaxes: BTreeMap<String, usize> = BTreeMap::new();
    for exam in dataset.exams() {
        let _ = writeln!(out, "  {}", exam.name());
        for plane in Plane::ALL {
            let series = &exam.series[plane.index()];
            if series.is_empty() {
                let _ = writeln!(
                    out,
                    "    {:<8}  none: the plane is unavailable",
                    plane.name()
                );
            }
            for (index, s) in series.iter().enumerate() {
                let kind = match &s.source {
                    SeriesSource::Dicom(slices) => {
                        let files: std::collections::BTreeSet<_> =
                            slices.iter().map(|r| &r.file).collect();
                        format!("DICOM, {} files", files.len())
                    }
                    SeriesSource::Nifti(path) => format!("NIfTI {}", path.display()),
                };
                for ts in &s.transfer_syntaxes {
                    *syntaxes.entry(ts.clone()).or_default() += 1;
                }
                let (row_mm, column_mm) = s.original.pixel_mm();
                let _ = writeln!(
                    out,
                    "    {:<8}  {} '{}' #{}: {} slices of {}×{} ({:.2}×{:.2} mm), {kind}{}",
                    if index == 0 { plane.name() } else { "" },
                    if index == 0 { "uses" } else { "also" },
                    s.description,
                    s.number.map_or("-".into(), |n| n.to_string()),
                    s.slices(),
                    s.original.rows,
                    s.original.columns,
                    row_mm,
                    column_mm,
                    if s.transfer_syntaxes.is_empty() {
                        String::new()
                    } else {
                        format!(", {}", s.transfer_syntaxes.join(", "))
                    },
                );
                let _ = writeln!(out, "              {}; intensity {}", s.choice, s.intensity);
            }
        }
    }
    if !syntaxes.is_empty() {
        let list: Vec<String> = syntaxes
            .iter()
            .map(|(name, n)| format!("{name} ({n} series)"))
            .collect();
        let _ = writeln!(out, "transfer syntaxes  {}", list.join(", "));
    }
    out
}
