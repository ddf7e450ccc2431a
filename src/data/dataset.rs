//! A dataset folder: which exams exist, their labels, and where each plane's volume is.
//!
//! Two layouts are recognised:
//!
//! - MRNet: `DIR/{train,valid}/{axial,coronal,sagittal}/NNNN.npy` with headerless label CSVs
//!   `DIR/{train,valid}-{abnormal,acl,meniscus}.csv`;
//! - flat: `DIR/{axial,coronal,sagittal}/NNNN.npy`, labels (optional) in `DIR/{task}.csv`, or,
//!   when `DIR` is itself named `train` or `valid`, in `DIR/../{train|valid}-{task}.csv`.
//!
//! Ground-truth masks (`masks/{plane}/NNNN.npy` beside the plane folders, as the synthetic
//! phantom writes them) are attached to their exams. Opening lists folders and reads the label
//! CSVs only; a volume is read when [`Exam::load`] asks for it. Everything odd found on the way
//! is a [`Problem`]; only a missing folder or one without any exams is an `Err`.
use sha2::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::labels::{self, LabelFile};
use super::npy::{self, NpyError, NpyHeader, Volume};
use super::{exam_file_name, Labels, Plane, Split, Task};

/// How bad a [`Problem`] is: errors make a dataset unusable as it stands, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// Something wrong or odd in a dataset folder. [`fmt::Display`] gives `FILE:LINE: MESSAGE`
/// (without the parts that are `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub file: Option<PathBuf>,
    /// 1-based line number in `file`.
    pub line: Option<usize>,
    pub message: String,
}

impl Problem {
    pub fn error(file: Option<PathBuf>, line: Option<usize>, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Error,
            file,
            line,
            message: message.into(),
        }
    }

    pub fn warning(file: Option<PathBuf>, line: Option<usize>, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Warning,
            file,
            line,
            message: message.into(),
        }
    }

    /// An unreadable volume (an error).
    pub fn from_npy(err: &NpyError) -> Self {
        Problem::error(Some(err.path().to_path_buf()), None, err.detail())
    }

    /// A bad label file or row (an error).
    pub fn from_labels(err: &labels::LabelError) -> Self {
        Problem::error(Some(err.path().to_path_buf()), err.line(), err.detail())
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

/// Why a dataset could not be opened at all.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("dataset folder {} does not exist", .path.display())]
    NotFound { path: PathBuf },
    #[error("{} is not a folder: expected a dataset folder", .path.display())]
    NotAFolder { path: PathBuf },
    #[error("cannot read dataset folder {}: {error}", .path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("{}", no_exams_message(.path, .problems))]
    NoExams {
        path: PathBuf,
        /// What was found on the way, e.g. misnamed files.
        problems: Vec<Problem>,
    },
}

fn no_exams_message(path: &Path, problems: &[Problem]) -> String {
    let dir = path.display();
    let mut text = format!(
        "no exams in {dir}: expected {dir}/{{train,valid}}/{{axial,coronal,sagittal}}/NNNN.npy \
         (MRNet layout) or {dir}/{{axial,coronal,sagittal}}/NNNN.npy (one flat folder)"
    );
    for p in problems {
        text.push_str(&format!("\n  {p}"));
    }
    text
}

/// Which layout a dataset folder has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `DIR/{train,valid}/{plane}/NNNN.npy`.
    Mrnet,
    /// `DIR/{plane}/NNNN.npy`.
    Flat,
}

/// Where one plane of an exam comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaneSource {
    File(PathBuf),
    /// No file: `expected` is where it would be, `reason` says why there is none.
    Unavailable {
        expected: PathBuf,
        reason: String,
    },
}

/// One exam: its id, split, labels, and per plane a volume file or why there is none. Volumes
/// are read on demand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exam {
    pub id: u32,
    pub split: Split,
    pub labels: Labels,
    /// Indexed by [`Plane::index`].
    pub planes: [PlaneSource; 3],
    /// Ground-truth masks (synthetic phantom), indexed by [`Plane::index`].
    pub masks: [Option<PathBuf>; 3],
}

impl Exam {
    pub fn source(&self, plane: Plane) -> &PlaneSource {
        &self.planes[plane.index()]
    }

    /// The volume file of `plane`, if there is one.
    pub fn path(&self, plane: Plane) -> Option<&Path> {
        match self.source(plane) {
            PlaneSource::File(path) => Some(path),
            PlaneSource::Unavailable { .. } => None,
        }
    }

    /// The planes that have a file.
    pub fn available_planes(&self) -> impl Iterator<Item = Plane> + '_ {
        Plane::ALL.into_iter().filter(|&p| self.path(p).is_some())
    }

    /// Reads the volume of `plane`; an unavailable plane is [`NpyError::Unavailable`].
    pub fn load(&self, plane: Plane) -> Result<Volume, NpyError> {
        match self.source(plane) {
            PlaneSource::File(path) => npy::read_volume(path),
            PlaneSource::Unavailable { expected, reason } => Err(NpyError::Unavailable {
                path: expected.clone(),
                reason: reason.clone(),
            }),
        }
    }

    /// Reads `plane`'s volume and the sha256 of its file, from one read of the file (the CAM
    /// store's keys name exams by content).
    pub fn load_hashed(&self, plane: Plane) -> Result<(Volume, String), NpyError> {
        let path = match self.source(plane) {
            PlaneSource::File(path) => path,
            PlaneSource::Unavailable { expected, reason } => {
                return Err(NpyError::Unavailable {
                    path: expected.clone(),
                    reason: reason.clone(),
                })
            }
        };
        // The header first: its checked shape bounds how much of the file is read.
        let expected = npy::read_header(path)?.file_len();
        let bytes = match crate::fsutil::read_at_most(path, expected, "this header's data") {
            Ok(bytes) => bytes,
            // Longer than the header says: read_volume names the extra bytes without reading them.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(npy::read_volume(path).err().unwrap_or(NpyError::Io {
                    path: path.clone(),
                    error: e,
                }))
            }
            Err(error) => {
                return Err(NpyError::Io {
                    path: path.clone(),
                    error,
                })
            }
        };
        let sha: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok((npy::parse_volume(path, &bytes)?, sha))
    }

    /// Reads the header of `plane`'s volume only.
    pub fn header(&self, plane: Plane) -> Result<NpyHeader, NpyError> {
        match self.source(plane) {
            PlaneSource::File(path) => npy::read_header(path),
            PlaneSource::Unavailable { expected, reason } => Err(NpyError::Unavailable {
                path: expected.clone(),
                reason: reason.clone(),
            }),
        }
    }

    /// The ground-truth mask file of `plane`, if the dataset has one.
    pub fn mask_path(&self, plane: Plane) -> Option<&Path> {
        self.masks[plane.index()].as_deref()
    }

    /// Reads the ground-truth mask of `plane`; `Ok(None)` when there is none.
    pub fn load_mask(&self, plane: Plane) -> Result<Option<Volume>, NpyError> {
        self.mask_path(plane).map(npy::read_volume).transpose()
    }

    /// The exam's file name stem, zero-padded: `0007`.
    pub fn name(&self) -> String {
        format!("{:04}", self.id)
    }
}

/// A label CSV that was found and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSource {
    pub split: Split,
    pub task: Task,
    pub path: PathBuf,
    /// Good rows in the file.
    pub rows: usize,
    /// Good rows labelled 1.
    pub positives: usize,
}

/// An opened dataset folder.
#[derive(Debug, Clone)]
pub struct Dataset {
    root: PathBuf,
    layout: Layout,
    exams: Vec<Exam>,
    label_sources: Vec<LabelSource>,
    problems: Vec<Problem>,
}

/// One volume's header, as [`Dataset::scan_headers`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedVolume {
    pub split: Split,
    pub id: u32,
    pub plane: Plane,
    pub header: NpyHeader,
}

/// Every volume header of a dataset: the good ones, and a problem for each bad one.
#[derive(Debug, Clone, Default)]
pub struct HeaderScan {
    pub volumes: Vec<ScannedVolume>,
    pub problems: Vec<Problem>,
}

const SPLITS: [Split; 2] = [Split::Train, Split::Valid];

impl Dataset {
    /// Lists the exams and reads the labels of the dataset at `dir`; reads no volume.
    pub fn open(dir: impl AsRef<Path>) -> Result<Dataset, DatasetError> {
        let root = dir.as_ref().to_path_buf();
        match fs::metadata(&root) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(DatasetError::NotAFolder { path: root }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(DatasetError::NotFound { path: root })
            }
            Err(error) => return Err(DatasetError::Io { path: root, error }),
        }
        // Fail early, with the folder's name, when it cannot be listed.
        fs::read_dir(&root).map_err(|error| DatasetError::Io {
            path: root.clone(),
            error,
        })?;

        let mut builder = Builder::default();
        let is_mrnet = SPLITS.iter().any(|s| root.join(s.name()).is_dir());
        let layout = if is_mrnet {
            for split in SPLITS {
                builder.split_folder(&root, split);
            }
            for plane in Plane::ALL {
                let folder = root.join(plane.name());
                if folder.is_dir() {
                    builder.problems.push(Problem::warning(
                        Some(folder),
                        None,
                        "ignored: in the MRNet layout (train/, valid/) exams live in \
                         {train,valid}/{axial,coronal,sagittal}/",
                    ));
                }
            }
            Layout::Mrnet
        } else {
            builder.exam_folder(&root, Split::Flat);
            Layout::Flat
        };
        if builder.exams.is_empty() {
            return Err(DatasetError::NoExams {
                path: root,
                problems: builder.problems,
            });
        }
        match layout {
            Layout::Mrnet => {
                for split in SPLITS {
                    for task in Task::ALL {
                        let csv = root.join(format!("{}-{}.csv", split.name(), task.name()));
                        if csv.is_file() {
                            builder.read_labels(split, task, csv);
                        }
                    }
                }
            }
            Layout::Flat => builder.flat_labels(&root),
        }
        builder.cross_check(&root, layout);
        Ok(Dataset {
            root,
            layout,
            exams: builder.exams.into_values().collect(),
            label_sources: builder.label_sources,
            problems: builder.problems,
        })
    }

    /// The folder as given to [`Dataset::open`].
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// All exams, ordered by split (train, valid, flat) then id.
    pub fn exams(&self) -> &[Exam] {
        &self.exams
    }

    pub fn exam(&self, split: Split, id: u32) -> Option<&Exam> {
        self.exams
            .binary_search_by_key(&(split, id), |e| (e.split, e.id))
            .ok()
            .map(|i| &self.exams[i])
    }

    /// Exams of one split.
    pub fn split_exams(&self, split: Split) -> impl Iterator<Item = &Exam> + '_ {
        self.exams.iter().filter(move |e| e.split == split)
    }

    /// Splits that have at least one exam, in order.
    pub fn splits(&self) -> Vec<Split> {
        let set: BTreeSet<Split> = self.exams.iter().map(|e| e.split).collect();
        set.into_iter().collect()
    }

    /// The label CSVs found, in split then task order.
    pub fn label_sources(&self) -> &[LabelSource] {
        &self.label_sources
    }

    /// Whether a label CSV for `task` was found for `split`.
    pub fn has_labels(&self, split: Split, task: Task) -> bool {
        self.label_sources
            .iter()
            .any(|s| s.split == split && s.task == task)
    }

    /// Everything found wrong or odd while opening.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// No error-severity problems (warnings allowed).
    pub fn is_usable(&self) -> bool {
        !self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    /// Reads every volume's header and checks each file's length against it, without reading
    /// the data (so NaN in float volumes is found only on load).
    pub fn scan_headers(&self) -> HeaderScan {
        let mut scan = HeaderScan::default();
        for exam in &self.exams {
            for plane in Plane::ALL {
                let PlaneSource::File(path) = exam.source(plane) else {
                    continue;
                };
                match npy::read_header(path) {
                    Ok(header) => scan.volumes.push(ScannedVolume {
                        split: exam.split,
                        id: exam.id,
                        plane,
                        header,
                    }),
                    Err(err) => scan.problems.push(Problem::from_npy(&err)),
                }
            }
        }
        scan
    }
}

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

#[derive(Default)]
struct Builder {
    exams: BTreeMap<(Split, u32), Exam>,
    label_sources: Vec<LabelSource>,
    /// (split, task) → the file read, for the cross-checks.
    label_files: Vec<(Split, Task, LabelFile)>,
    problems: Vec<Problem>,
}

impl Builder {
    fn split_folder(&mut self, root: &Path, split: Split) {
        let folder = root.join(split.name());
        if folder.is_dir() {
            self.exam_folder(&folder, split);
        }
    }

    /// Lists `folder/{plane}/NNNN.npy` (and `folder/masks/{plane}/NNNN.npy`).
    fn exam_folder(&mut self, folder: &Path, split: Split) {
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
        let mut masks: [BTreeMap<u32, PathBuf>; 3] = Default::default();
        for plane in Plane::ALL {
            let mask_dir = folder.join("masks").join(plane.name());
            if mask_dir.is_dir() {
                // Masks are optional extras: odd names there are not the user's problem.
                if let Ok(found) = list_volumes(&mask_dir, false, &mut self.problems) {
                    masks[plane.index()] = found;
                }
            }
        }
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
            self.exams.insert(
                (split, id),
                Exam {
                    id,
                    split,
                    labels: Labels::default(),
                    planes,
                    masks,
                },
            );
        }
    }

    fn read_labels(&mut self, split: Split, task: Task, csv: PathBuf) {
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
    fn flat_labels(&mut self, root: &Path) {
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
    fn cross_check(&mut self, root: &Path, layout: Layout) {
        let splits: &[Split] = match layout {
            Layout::Mrnet => &SPLITS,
            Layout::Flat => &[Split::Flat],
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
fn folder_name(dir: &Path) -> Option<String> {
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
    fn problems_display_as_file_line_message() {
        let p = Problem::error(Some("a.csv".into()), Some(3), "bad");
        assert_eq!(p.to_string(), "a.csv:3: bad");
        let p = Problem::warning(Some("a.npy".into()), None, "odd");
        assert_eq!(p.to_string(), "a.npy: odd");
        let p = Problem::warning(None, None, "odd");
        assert_eq!(p.to_string(), "odd");
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
