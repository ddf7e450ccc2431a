//! Opening a study folder: its files recognised and their headers read (in parallel), DICOM
//! files grouped into series by SeriesInstanceUID and ordered along the slice normal, NIfTI
//! files one series each, every series given its plane, and each plane's series chosen.
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use super::dicom::{dicom_header, has_dicm_preamble, DicomHeader};
use super::nifti::nifti_header;
use super::{
    conversion_geometry, Series, SeriesRule, SeriesSource, SliceRef, StudyError, StudyErrorKind,
    StudyOptions,
};
use crate::data::dataset::Problem;
use crate::data::geometry::{cross, dot, norm, unit, Point, VolumeGeometry};
use crate::data::Plane;

/// Deepest folder nesting followed inside a study.
const MAX_DEPTH: usize = 32;
/// Positions closer than this along the normal are one position (mm).
const SAME_POSITION_MM: f64 = 1e-3;

/// What a study folder holds: each plane's series (the chosen first) and the problems found.
#[derive(Debug, Clone, Default)]
pub struct StudyScan {
    pub series: [Vec<Arc<Series>>; 3],
    pub problems: Vec<Problem>,
    /// Files that were neither DICOM nor NIfTI.
    pub ignored: usize,
}

/// What one file turned out to be.
enum Found {
    Dicom(Box<DicomHeader>),
    Nifti(PathBuf, Box<super::NiftiInfo>),
    NotAnImage,
    Other,
    Bad(StudyError),
}

/// Every file under `folder` (following links to files, not to folders), sorted.
pub fn files_under(folder: &Path, problems: &mut Vec<Problem>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![(folder.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                problems.push(Problem::error(
                    Some(dir),
                    None,
                    format!("cannot list the folder: {e}"),
                ));
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if depth + 1 >= MAX_DEPTH {
                    problems.push(Problem::warning(
                        Some(path),
                        None,
                        format!("ignored: nested deeper than {MAX_DEPTH} folders"),
                    ));
                } else {
                    stack.push((path, depth + 1));
                }
            } else if kind.is_file()
                || (kind.is_symlink() && fs::metadata(&path).is_ok_and(|m| m.is_file()))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn is_nifti_name(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    name.ends_with(".nii") || name.ends_with(".nii.gz")
}

fn classify(path: &Path) -> Found {
    if is_nifti_name(path) {
        return match nifti_header(path) {
            Ok(info) => Found::Nifti(path.to_path_buf(), Box::new(info)),
            Err(e) => Found::Bad(e),
        };
    }
    match has_dicm_preamble(path) {
        Err(e) => Found::Bad(StudyError::new(
            path,
            StudyErrorKind::Io,
            format!("cannot read: {e}"),
        )),
        Ok(false) => Found::Other,
        Ok(true) => match dicom_header(path) {
            Ok(Some(header)) => Found::Dicom(Box::new(header)),
            Ok(None) => Found::NotAnImage,
            Err(e) => Found::Bad(e),
        },
    }
}

fn problem(e: &StudyError) -> Problem {
    Problem::error(Some(e.path.clone()), None, e.detail.clone())
}

/// Reads the study at `folder`: every file's header, the series, and each plane's choice.
pub fn scan_study(folder: &Path, options: &StudyOptions) -> StudyScan {
    let mut problems = Vec::new();
    let files = files_under(folder, &mut problems);
    let mut scan = scan_files(folder, &files, options);
    problems.append(&mut scan.problems);
    scan.problems = problems;
    scan
}

/// A study folder as [`scan_study`] reads it, or one file (a NIfTI volume, a DICOM file) alone.
pub fn scan_path(path: &Path, options: &StudyOptions) -> StudyScan {
    if path.is_dir() {
        scan_study(path, options)
    } else {
        let folder = path.parent().unwrap_or(Path::new(""));
        scan_files(folder, &[path.to_path_buf()], options)
    }
}

/// Reads the headers of `files` (all of one study under `folder`) into series.
fn scan_files(folder: &Path, files: &[PathBuf], options: &StudyOptions) -> StudyScan {
    let mut scan = StudyScan::default();
    let found: Vec<Found> = files.par_iter().map(|path| classify(path)).collect();
    let mut dicom: BTreeMap<String, Vec<DicomHeader>> = BTreeMap::new();
    let mut all: Vec<Series> = Vec::new();
    for (path, what) in files.iter().zip(found) {
        match what {
            Found::Dicom(header) => dicom
                .entry(header.series_uid.clone())
                .or_default()
                .push(*header),
            Found::Nifti(path, info) => all.push(nifti_series(folder, &path, *info)),
            Found::NotAnImage => {}
            Found::Other => {
                scan.ignored += 1;
                scan.problems.push(Problem::warning(
                    Some(path.clone()),
                    None,
                    "ignored: not DICOM (no DICM preamble at byte 128) and not NIfTI \
                     (.nii, .nii.gz)",
                ));
            }
            Found::Bad(e) => scan.problems.push(problem(&e)),
        }
    }
    for (uid, headers) in dicom {
        match dicom_series(uid, headers) {
            Ok((series, warnings)) => {
                scan.problems.extend(warnings);
                all.push(series);
            }
            Err(e) => scan.problems.push(problem(&e)),
        }
    }
    for plane in Plane::ALL {
        let of_plane: Vec<Series> = all.iter().filter(|s| s.plane == plane).cloned().collect();
        scan.series[plane.index()] = choose(of_plane, plane, options);
    }
    scan
}

pub(super) fn nifti_series(folder: &Path, path: &Path, info: super::NiftiInfo) -> Series {
    let name = path
        .strip_prefix(folder)
        .unwrap_or(path)
        .display()
        .to_string();
    let geometry = Arc::new(conversion_geometry(&info.geometry));
    Series {
        uid: name.clone(),
        description: if info.description.is_empty() {
            name
        } else {
            info.description.clone()
        },
        number: None,
        plane: info.geometry.plane(),
        source: SeriesSource::Nifti(path.to_path_buf()),
        original: info.geometry,
        geometry,
        transfer_syntaxes: Vec::new(),
        intensity: Default::default(),
        choice: String::new(),
    }
}

fn inconsistent(path: &Path, detail: String) -> StudyError {
    StudyError::new(path, StudyErrorKind::Inconsistent, detail)
}

fn close(a: &[f64], b: &[f64], tolerance: f64) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tolerance)
}

/// One DICOM series from its files' headers: checked for one size, spacing and orientation,
/// ordered by position along the normal, with no two slices at one position.
pub(super) fn dicom_series(
    uid: String,
    headers: Vec<DicomHeader>,
) -> Result<(Series, Vec<Problem>), StudyError> {
    let first = &headers[0];
    for h in &headers[1..] {
        if (h.rows, h.columns) != (first.rows, first.columns) {
            return Err(inconsistent(
                &h.path,
                format!(
                    "series {uid}: {}×{} pixels, but {} has {}×{}: a series must have one size",
                    h.rows,
                    h.columns,
                    first.path.display(),
                    first.rows,
                    first.columns
                ),
            ));
        }
        if !close(&h.orientation, &first.orientation, 1e-4) {
            return Err(inconsistent(
                &h.path,
                format!(
                    "series {uid}: orientation {:?}, but {} has {:?}: mixed orientations in one \
                     series",
                    h.orientation,
                    first.path.display(),
                    first.orientation
                ),
            ));
        }
        if !close(
            &[h.pixel_mm.0, h.pixel_mm.1],
            &[first.pixel_mm.0, first.pixel_mm.1],
            1e-4,
        ) {
            return Err(inconsistent(
                &h.path,
                format!(
                    "series {uid}: pixel spacing {:?} mm, but {} has {:?}: a series must have \
                     one spacing",
                    h.pixel_mm,
                    first.path.display(),
                    first.pixel_mm
                ),
            ));
        }
    }
    let o = first.orientation;
    let (row_dir, column_dir) = ([o[0], o[1], o[2]], [o[3], o[4], o[5]]);
    let normal = unit(cross(row_dir, column_dir))
        .filter(|_| (norm(row_dir) - 1.0).abs() < 0.01 && (norm(column_dir) - 1.0).abs() < 0.01)
        .ok_or_else(|| {
            inconsistent(
                &first.path,
                format!(
                    "ImageOrientationPatient {o:?}: expected two perpendicular unit directions"
                ),
            )
        })?;
    let mut slices: Vec<(f64, Point, SliceRef)> = headers
        .iter()
        .flat_map(|h| {
            h.positions.iter().enumerate().map(|(frame, &p)| {
                let slice = SliceRef {
                    file: h.path.clone(),
                    frame: frame as u32,
                };
                (dot(p, normal), p, slice)
            })
        })
        .collect();
    slices.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.2.file.cmp(&b.2.file)));
    for pair in slices.windows(2) {
        if (pair[1].0 - pair[0].0).abs() < SAME_POSITION_MM {
            return Err(StudyError::new(
                &pair[1].2.file,
                StudyErrorKind::DuplicatePosition,
                format!(
                    "series {uid}: a slice at position {:.3} mm along the normal, as {}{}: \
                     duplicate positions (two acquisitions in one series?)",
                    pair[1].0,
                    pair[0].2.file.display(),
                    if pair[0].2.file == pair[1].2.file {
                        format!(
                            " (frames {} and {})",
                            pair[0].2.frame + 1,
                            pair[1].2.frame + 1
                        )
                    } else {
                        String::new()
                    }
                ),
            ));
        }
    }
    if slices.len() > crate::data::npy::MAX_SLICES {
        return Err(inconsistent(
            &first.path,
            format!(
                "series {uid}: {} slices, more than {}",
                slices.len(),
                crate::data::npy::MAX_SLICES
            ),
        ));
    }
    let warnings = gap_warnings(&uid, &first.path, &slices);
    let original = VolumeGeometry {
        origins: slices.iter().map(|s| s.1).collect(),
        column_step: row_dir.map(|v| v * first.pixel_mm.1),
        row_step: column_dir.map(|v| v * first.pixel_mm.0),
        rows: first.rows,
        columns: first.columns,
    };
    original
        .check()
        .map_err(|e| inconsistent(&first.path, format!("series {uid}: {e}")))?;
    let mut syntaxes: Vec<String> = headers.iter().map(|h| h.transfer_syntax.clone()).collect();
    syntaxes.sort();
    syntaxes.dedup();
    let series = Series {
        uid,
        description: first.description.clone(),
        number: first.number,
        plane: original.plane(),
        source: SeriesSource::Dicom(slices.into_iter().map(|s| s.2).collect()),
        geometry: Arc::new(conversion_geometry(&original)),
        original,
        transfer_syntaxes: syntaxes,
        intensity: Default::default(),
        choice: String::new(),
    };
    Ok((series, warnings))
}

/// A warning when the slices are unevenly spaced or drift off the normal (the series is still
/// used: its geometry keeps every slice's own position).
fn gap_warnings(uid: &str, path: &Path, slices: &[(f64, Point, SliceRef)]) -> Vec<Problem> {
    let gaps: Vec<f64> = slices.windows(2).map(|w| w[1].0 - w[0].0).collect();
    let (lo, hi) = gaps.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &g| {
        (lo.min(g), hi.max(g))
    });
    if gaps.len() > 1 && hi > lo * 1.1 + 0.01 {
        return vec![Problem::warning(
            Some(path.to_path_buf()),
            None,
            format!(
                "series {uid}: slices {lo:.2} to {hi:.2} mm apart (uneven spacing: a slice may \
                 be missing)"
            ),
        )];
    }
    Vec::new()
}

/// Orders one plane's series, the chosen first, each with why.
fn choose(mut series: Vec<Series>, plane: Plane, options: &StudyOptions) -> Vec<Arc<Series>> {
    let intensity = options.intensity[plane.index()];
    for s in &mut series {
        s.intensity = intensity;
    }
    if series.is_empty() {
        return Vec::new();
    }
    let protocol = options.protocol[plane.index()]
        .as_deref()
        .filter(|_| options.rule == SeriesRule::Protocol);
    let matches = |s: &Series| {
        protocol.is_some_and(|p| {
            s.description
                .to_ascii_lowercase()
                .contains(&p.to_ascii_lowercase())
        })
    };
    series.sort_by(|a, b| {
        let by_number = || {
            a.number
                .unwrap_or(i64::MAX)
                .cmp(&b.number.unwrap_or(i64::MAX))
        };
        match options.rule {
            SeriesRule::FirstNumber => by_number(),
            _ => matches(b)
                .cmp(&matches(a))
                .then(b.slices().cmp(&a.slices()))
                .then_with(by_number),
        }
        .then_with(|| a.uid.cmp(&b.uid))
    });
    let others = series.len() - 1;
    let why = match (options.rule, protocol) {
        (SeriesRule::FirstNumber, _) => "the lowest series number".to_string(),
        (SeriesRule::Protocol, Some(p)) if matches(&series[0]) => {
            format!("its description matches the models' protocol \"{p}\"")
        }
        (SeriesRule::Protocol, Some(p)) => {
            format!("none matches the models' protocol \"{p}\"; the most slices")
        }
        _ => "the most slices".to_string(),
    };
    for (index, s) in series.iter_mut().enumerate() {
        s.choice = if index == 0 && others == 0 {
            format!("the only {plane} series")
        } else if index == 0 {
            format!("chosen over {others} other {plane} series: {why}")
        } else {
            format!("not chosen ({why})")
        };
    }
    series.into_iter().map(Arc::new).collect()
}
