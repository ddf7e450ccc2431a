//! Listing a dataset folder: its exams, masks and label CSVs, and the problems found on the way.
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{Exam, LabelSource, Layout, PlaneSource, Problem, SPLITS};
use crate::data::labels::{self, LabelFile};
use crate::data::{exam_file_name, Labels, Plane, Split, Task};

/// Parses `NNNN.npy` (exactly four digits).
fn exam_id(name: &str) -> Option<u32> {
    let stem = name.strip_suffix(".npy")?;
    if stem.len() == 4 && stem.bytes().all(|b| b.is_ascii_digit()) {
        stem.parse().ok()
    } else {
        None
    }
}

/// The `NNNN.npy` files of one folder, by id; everything else is reported when `report`.
fn list_volumes(
    folder: &Path,
    report: bool,
    problems: &mut Vec<Problem>,
) -> io::Result<BTreeMap<u32, PathBuf>> {
    let mut found = BTreeMap::new();
    let mut ignored = Vec::new();
    for entry in fs::read_dir(folder)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let id = name.to_str().and_then(exam_id);
        let is_file = match entry.file_type() {
            Ok(t) if t.is_file() => true,
            // Follow symbolic links: datasets are often linked in from elsewhere.
            Ok(t) if t.is_symlink() => fs::metadata(&path).is_ok_and(|m| m.is_file()),
            _ => false,
        };
        match id {
            Some(id) if is_file => {
                found.insert(id, path);
            }
            Some(_) => ignored.push((path, "not a file")),
            None => ignored.push((path, "expected NNNN.npy (a 4-digit case id)")),
        }
    }
    if report {
        ignored.sort();
        for (path, why) in ignored {
            problems.push(Problem::warning(
                Some(path),
                None,
                format!("ignored: {why}"),
            ));
        }
    }
    Ok(found)
}

/// The optional per-exam extras of a folder, `folder/{kind}/{plane}/NNNN{suffix}` (masks,
/// geometry), by plane and id. Odd names there are not the user's problem: not reported.
fn extras(folder: &Path, kind: &str, suffix: &str) -> [BTreeMap<u32, PathBuf>; 3] {
    Plane::ALL.map(|plane| {
        let dir = folder.join(kind).join(plane.name());
        let Ok(entries) = fs::read_dir(&dir) else {
            return BTreeMap::new();
        };
        entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name();
                let stem = name.to_str()?.strip_suffix(suffix)?;
                let id = exam_id(&format!("{stem}.npy"))?;
                Some((id, entry.path()))
            })
            .collect()
    })
}

#[derive(Default)]
pub(super) struct Builder {
    pub(super) exams: BTreeMap<(Split, u32), Exam>,
    pub(super) label_sources: Vec<LabelSource>,
    /// (split, task) → the file read, for the cross-checks.
    label_files: Vec<(Split, Task, LabelFile)>,
    pub(super) problems: Vec<Problem>,
}

impl Builder {
    pub(super) fn split_folder(&mut self, root: &Path, split: Split) {
        let folder = root.join(split.name());
        if folder.is_dir() {
            self.exam_folder(&folder, split);
        }
    }

    /// Lists `folder/{plane}/NNNN.npy` (and `folder/masks/{plane}/NNNN.npy`).
    pub(super) fn exam_folder(&mut self, folder: &Path, split: Split) {
        let mut per_plane: [Option<BTreeMap<u32, PathBuf>>; 3] = Default::default();
        for plane in Plane::ALL {
            let plane_dir = folder.join(plane.name());
            if !plane_dir.is_dir() {
                continue;
            }
            match list_volumes(&plane_dir, true, &mut self.problems) {
                Ok(found) => per_plane[plane.index()] = Some(found),
                Err(e) => self.problems.push(Problem::error(
                    Some(plane_dir),
                    None,
                    format!("cannot list the folder: {e}"),
                )),
            }
        }
        let ids: BTreeSet<u32> = per_plane
            .iter()
            .flatten()
            .flat_map(|m| m.keys().copied())
            .collect();
        if ids.is_empty() {
            if split != Split::Flat {
                self.problems.push(Problem::warning(
                    Some(folder.to_path_buf()),
                    None,
                    "no exams: expected {axial,coronal,sagittal}/NNNN.npy in this folder",
                ));
            }
            return;
        }
        for plane in Plane::ALL {
            if per_plane[plane.index()].is_none() {
                self.problems.push(Problem::warning(
                    Some(folder.join(plane.name())),
                    None,
                    format!(
                        "missing folder: the {plane} plane is unavailable for all {} exams",
                        ids.len()
                    ),
                ));
            }
        }
        let masks = extras(folder, "masks", ".npy");
        let geometry = extras(folder, "geometry", ".json");
        for id in ids {
            let planes = Plane::ALL.map(|plane| {
                let expected = folder.join(plane.name()).join(exam_file_name(id));
                match &per_plane[plane.index()] {
                    None => PlaneSource::Unavailable {
                        expected,
                        reason: format!("no {plane} folder"),
                    },
                    Some(found) => match found.get(&id) {
                        Some(path) => PlaneSource::File(path.clone()),
                        None => PlaneSource::Unavailable {
                            expected,
                            reason: "no such file".to_string(),
                        },
                    },
                }
            });
            for (plane, source) in Plane::ALL.iter().zip(&planes) {
                if let (PlaneSource::Unavailable { expected, .. }, Some(_)) =
                    (source, &per_plane[plane.index()])
                {
                    self.problems.push(Problem::warning(
                        Some(expected.clone()),
                        None,
                        format!(
                            "missing: case {id:04} has other planes but no {plane} volume; \
                             that plane is unavailable"
                        ),
                    ));
                }
            }
            let masks = Plane::ALL.map(|plane| masks[plane.index()].get(&id).cloned());
            let geometry_files = Plane::ALL.map(|plane| geometry[plane.index()].get(&id).cloned());
            self.exams.insert(
                (split, id),
                Exam {
                    id,
                    split,
                    labels: Labels::default(),
                    planes,
                    masks,
                    geometry_files,
                    study: None,
                    series: Default::default(),
                },
            );
        }
    }

    pub(super) fn read_labels(&mut self, split: Split, task: Task, csv: PathBuf) {
        match labels::read_labels(&csv) {
            Ok(file) => {
                self.problems
                    .extend(file.errors.iter().map(Problem::from_labels));
                self.label_sources.push(LabelSource {
                    split,
                    task,
                    path: csv,
                    rows: file.len(),
                    positives: file.positives(),
                });
                self.label_files.push((split, task, file));
            }
            Err(err) => self.problems.push(Problem::from_labels(&err)),
        }
    }

    /// `DIR/{task}.csv`, else, for a folder named `train` or `valid`, `../{name}-{task}.csv`.
    pub(super) fn flat_labels(&mut self, root: &Path) {
        let split_name = folder_name(root).filter(|n| n == "train" || n == "valid");
        let parent = split_name.as_ref().and_then(|_| parent_folder(root));
        for task in Task::ALL {
            let local = root.join(format!("{}.csv", task.name()));
            let beside = match (&split_name, &parent) {
                (Some(name), Some(parent)) => {
                    Some(parent.join(format!("{name}-{}.csv", task.name())))
                }
                _ => None,
            }
            .filter(|p| p.is_file());
            if local.is_file() {
                if let Some(beside) = beside {
                    self.problems.push(Problem::warning(
                        Some(beside),
                        None,
                        format!("ignored: {} takes precedence", local.display()),
                    ));
                }
                self.read_labels(Split::Flat, task, local);
            } else if let Some(beside) = beside {
                self.read_labels(Split::Flat, task, beside);
            }
        }
    }

    /// Puts labels on exams; reports labels without volumes and volumes without labels.
    pub(super) fn cross_check(&mut self, root: &Path, layout: Layout) {
        let splits: &[Split] = match layout {
            Layout::Mrnet => &SPLITS,
            Layout::Flat | Layout::Studies => &[Split::Flat],
        };
        for &split in splits {
            let folder = match split {
                Split::Flat => root.to_path_buf(),
                _ => root.join(split.name()),
            };
            let split_has_exams = self.exams.keys().any(|&(s, _)| s == split);
            // Cases labelled but without volumes, each reported once, at its first row.
            let mut orphans: BTreeMap<u32, (PathBuf, usize)> = BTreeMap::new();
            for (s, task, file) in &self.label_files {
                if *s != split {
                    continue;
                }
                for row in file.rows.values() {
                    match self.exams.get_mut(&(split, row.id)) {
                        Some(exam) => exam.labels.set(*task, row.label),
                        None => {
                            orphans
                                .entry(row.id)
                                .or_insert_with(|| (file.path.clone(), row.line));
                        }
                    }
                }
                if !split_has_exams && !file.is_empty() {
                    self.problems.push(Problem::warning(
                        Some(file.path.clone()),
                        None,
                        format!(
                            "labels for {} cases but no exams in {}",
                            file.len(),
                            folder.display()
                        ),
                    ));
                }
            }
            if split_has_exams {
                for (id, (file, line)) in orphans {
                    self.problems.push(Problem::warning(
                        Some(file),
                        Some(line),
                        format!(
                            "case {id:04} is labelled but has no volume in {}",
                            folder.display()
                        ),
                    ));
                }
            }
            for (s, task, file) in &self.label_files {
                if *s != split {
                    continue;
                }
                for (&(_, id), exam) in self.exams.range((split, 0)..=(split, u32::MAX)) {
                    if exam.labels.get(*task).is_none() {
                        self.problems.push(Problem::warning(
                            Some(file.path.clone()),
                            None,
                            format!("case {id:04} has volumes but no row in this file"),
                        ));
                    }
                }
            }
        }
    }
}

/// The folder's own name, resolving `.` and `..` when needed.
pub(super) fn folder_name(dir: &Path) -> Option<String> {
    match dir.file_name() {
        Some(name) => Some(name.to_string_lossy().into_owned()),
        None => fs::canonicalize(dir)
            .ok()?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned()),
    }
}

/// The folder holding `dir`, as a path relative to the same place as `dir` where possible.
fn parent_folder(dir: &Path) -> Option<PathBuf> {
    if dir.file_name().is_some() {
        dir.parent().map(Path::to_path_buf)
    } else {
        fs::canonicalize(dir).ok()?.parent().map(Path::to_path_buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exam_ids_are_exactly_four_digits_and_npy() {
        assert_eq!(exam_id("0000.npy"), Some(0));
        assert_eq!(exam_id("1249.npy"), Some(1249));
        for bad in [
            "12.npy",
            "00012.npy",
            "0012.NPY",
            "0012.npy.bak",
            "abcd.npy",
            "0012",
            ".npy",
            "+123.npy",
        ] {
            assert_eq!(exam_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn parent_of_a_relative_split_folder() {
        assert_eq!(parent_folder(Path::new("valid")), Some(PathBuf::new()));
        assert_eq!(
            parent_folder(Path::new("data/valid/")),
            Some(PathBuf::from("data"))
        );
        assert_eq!(
            folder_name(Path::new("data/valid/")).as_deref(),
            Some("valid")
        );
    }
}
