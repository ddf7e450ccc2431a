//! A dataset of studies: `DIR/<exam>/…` (DICOM files or NIfTI volumes at any depth), labels in
//! `DIR/{task}.csv` as `exam,label` rows. A folder holding image files itself, and no exam
//! folders, is one study. `DIR/{train,valid}/<exam>/…` (labels in each split folder) is two
//! such folders, one per split.
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use super::{Exam, LabelSource, PlaneSource, Problem};
use crate::data::study::{self, sanitise_exam_id, Series, StudyOptions};
use crate::data::{Labels, Plane, Split, Task};

/// The exams of a dataset of studies, their label sources, and the problems found.
#[derive(Debug, Default)]
pub(super) struct Studies {
    pub exams: Vec<Exam>,
    pub label_sources: Vec<LabelSource>,
    pub problems: Vec<Problem>,
}

/// Whether `dir` looks like a dataset of studies (or one study): it has sub-folders, or image
/// files (DICOM, NIfTI) directly in it.
pub(super) fn looks_like_studies(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let path = entry.path();
        !is_hidden(&path) && (path.is_dir() || is_image_file(&path))
    })
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

fn is_image_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    name.ends_with(".nii")
        || name.ends_with(".nii.gz")
        || (path.is_file() && study::is_dicom_file(path))
}

/// The study folders of `root` (name as found, path), sorted; `root` itself when it holds
/// image files and no sub-folders.
fn study_folders(root: &Path, problems: &mut Vec<Problem>) -> Vec<(String, PathBuf)> {
    let mut folders = Vec::new();
    let mut loose = Vec::new();
    if let Ok(entries) = fs::read_dir(root) {
        for entry in entries.flatten() {
            let path = entry.path();
            if is_hidden(&path) {
                continue;
            }
            if path.is_dir() {
                let name = entry.file_name().to_string_lossy().into_owned();
                folders.push((name, path));
            } else if is_image_file(&path) {
                loose.push(path);
            }
        }
    }
    folders.sort();
    loose.sort();
    if folders.is_empty() && !loose.is_empty() {
        let name = super::builder::folder_name(root).unwrap_or_else(|| "study".into());
        return vec![(name, root.to_path_buf())];
    }
    for path in loose {
        problems.push(Problem::warning(
            Some(path),
            None,
            "ignored: in a dataset of studies, each exam's files live in its own folder \
             (DIR/<exam>/…)",
        ));
    }
    folders
}

/// Opens the studies of `root`: every header read, series chosen, labels attached.
pub(super) fn open_studies(root: &Path, options: &StudyOptions, split: Split) -> Studies {
    let mut out = Studies::default();
    let folders = study_folders(root, &mut out.problems);
    let named = unique_names(folders, &mut out.problems);
    let scans: Vec<study::StudyScan> = named
        .par_iter()
        .map(|(_, _, folder)| study::scan_study(folder, options))
        .collect();
    let mut raw_names = Vec::new();
    for (index, ((raw, id, folder), scan)) in named.into_iter().zip(scans).enumerate() {
        out.problems.extend(scan.problems);
        let planes = Plane::ALL.map(|plane| match scan.series[plane.index()].first() {
            Some(series) => PlaneSource::Series(Arc::clone(series)),
            None => PlaneSource::Unavailable {
                expected: folder.clone(),
                reason: format!("no {plane} series in this study"),
            },
        });
        let missing: Vec<&str> = Plane::ALL
            .iter()
            .filter(|p| scan.series[p.index()].is_empty())
            .map(|p| p.name())
            .collect();
        if missing.len() == 3 {
            out.problems.push(Problem::warning(
                Some(folder.clone()),
                None,
                "no usable series in this study: it is left out",
            ));
            continue;
        }
        if !missing.is_empty() {
            out.problems.push(Problem::warning(
                Some(folder.clone()),
                None,
                format!(
                    "no {} series: that plane is unavailable for this exam (the others work)",
                    missing.join(" or ")
                ),
            ));
        }
        raw_names.push(raw);
        out.exams.push(Exam {
            id: index as u32,
            split,
            labels: Labels::default(),
            planes,
            masks: Default::default(),
            geometry_files: Default::default(),
            study: Some(id),
            series: scan.series,
        });
    }
    // Ids are ordinals in name order, so that exams sort by name.
    for (index, exam) in out.exams.iter_mut().enumerate() {
        exam.id = index as u32;
    }
    attach_labels(root, &mut out, &raw_names, split);
    out
}

/// (name as found, sanitised id, folder), leaving out both folders of a collision.
fn unique_names(
    folders: Vec<(String, PathBuf)>,
    problems: &mut Vec<Problem>,
) -> Vec<(String, String, PathBuf)> {
    let mut by_id: BTreeMap<String, Vec<(String, PathBuf)>> = BTreeMap::new();
    for (raw, path) in folders {
        by_id
            .entry(sanitise_exam_id(&raw))
            .or_default()
            .push((raw, path));
    }
    let mut named = Vec::new();
    for (id, group) in by_id {
        if let [(raw, path)] = group.as_slice() {
            named.push((raw.clone(), id, path.clone()));
            continue;
        }
        let names: Vec<String> = group.iter().map(|(raw, _)| format!("{raw:?}")).collect();
        problems.push(Problem::error(
            Some(group[0].1.clone()),
            None,
            format!(
                "exam folders {} all become the exam id '{id}' once made safe for paths and \
                 the screen: rename them; all are left out",
                names.join(" and ")
            ),
        ));
    }
    named
}

/// Reads `root/{task}.csv` and puts the labels on the exams (by folder name).
fn attach_labels(root: &Path, out: &mut Studies, names: &[String], split: Split) {
    let index: BTreeMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    for task in Task::ALL {
        let path = root.join(format!("{}.csv", task.name()));
        if !path.is_file() {
            continue;
        }
        let labels = match study::read_study_labels(&path) {
            Ok(labels) => labels,
            Err(e) => {
                out.problems.push(Problem::error(
                    Some(path),
                    None,
                    format!("cannot read: {e}"),
                ));
                continue;
            }
        };
        for (line, why) in &labels.errors {
            out.problems
                .push(Problem::error(Some(path.clone()), Some(*line), why.clone()));
        }
        let mut rows = 0;
        let mut positives = 0;
        for (exam, &(label, line)) in &labels.rows {
            let found = index
                .get(exam.as_str())
                .or_else(|| index.get(sanitise_exam_id(exam).as_str()));
            match found {
                Some(&i) => {
                    out.exams[i].labels.set(task, label);
                    rows += 1;
                    positives += usize::from(label);
                }
                None => out.problems.push(Problem::warning(
                    Some(path.clone()),
                    Some(line),
                    format!("exam '{exam}' is labelled but has no study folder"),
                )),
            }
        }
        for exam in &out.exams {
            if exam.labels.get(task).is_none() {
                out.problems.push(Problem::warning(
                    Some(path.clone()),
                    None,
                    format!("exam '{}' has a study but no row in this file", exam.name()),
                ));
            }
        }
        out.label_sources.push(LabelSource {
            split,
            task,
            path,
            rows,
            positives,
        });
    }
}

/// The series of one study folder or one NIfTI file, for `cam --exam`: the chosen one of
/// `plane`; with `any_plane`, the only series whatever its plane.
pub fn single_series(
    path: &Path,
    plane: Plane,
    options: &StudyOptions,
    any_plane: bool,
) -> Result<(Arc<Series>, Vec<Problem>), Problem> {
    let scan = study::scan_path(path, options);
    let all: Vec<&Arc<Series>> = scan.series.iter().flatten().collect();
    let only = (any_plane && all.len() == 1).then(|| all[0]);
    let chosen = only.or_else(|| scan.series[plane.index()].first());
    match chosen {
        Some(series) => Ok((Arc::clone(series), scan.problems)),
        None => {
            let found: Vec<String> = all
                .iter()
                .map(|s| format!("{} '{}'", s.plane, s.description))
                .collect();
            let mut message = if found.is_empty() {
                "no DICOM series or NIfTI volume here: expected a .npy file, a DICOM series' (or \
                 study's) folder, a DICOM file or a NIfTI volume"
                    .to_string()
            } else if !any_plane {
                format!("no {plane} series: found {}", found.join(", "))
            } else {
                format!(
                    "no single series to use: found {}; say which plane with --plane (or use a \
                     manifest entry, whose plane decides)",
                    found.join(", ")
                )
            };
            for p in &scan.problems {
                message.push_str(&format!("\n  {p}"));
            }
            Err(Problem::error(Some(path.to_path_buf()), None, message))
        }
    }
}
