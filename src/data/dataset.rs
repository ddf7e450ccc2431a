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
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::npy::{self, NpyHeader};
use super::study::StudyOptions;
use super::{Plane, Split, Task};

mod builder;
mod exam;
mod problem;
mod studies;

pub use exam::{Exam, PlaneSource, VolumeError};
pub use problem::{Problem, Severity};
pub use studies::single_series;

use builder::Builder;

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
         (MRNet layout), {dir}/{{axial,coronal,sagittal}}/NNNN.npy (one flat folder), or \
         {dir}/<exam>/… holding DICOM files or NIfTI volumes (studies)"
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
    /// `DIR/<exam>/…`: DICOM studies or NIfTI volumes, one folder per exam.
    Studies,
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

pub(super) const SPLITS: [Split; 2] = [Split::Train, Split::Valid];

impl Dataset {
    /// Lists the exams and reads the labels of the dataset at `dir`; reads no volume (for
    /// studies: headers only, with the default [`StudyOptions`]).
    pub fn open(dir: impl AsRef<Path>) -> Result<Dataset, DatasetError> {
        Dataset::open_with(dir, &StudyOptions::default())
    }

    /// [`Dataset::open`], converting and choosing studies' series as `options` say (the
    /// manifest's intensity mapping and protocol, the configured rule).
    pub fn open_with(
        dir: impl AsRef<Path>,
        options: &StudyOptions,
    ) -> Result<Dataset, DatasetError> {
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
        let is_flat = Plane::ALL.iter().any(|p| root.join(p.name()).is_dir());
        if !is_mrnet && !is_flat && studies::looks_like_studies(&root) {
            return Dataset::open_studies(root, options);
        }
        let split_dir = |s: Split| root.join(s.name());
        let split_has_planes = |s: Split| {
            Plane::ALL
                .iter()
                .any(|p| split_dir(s).join(p.name()).is_dir())
        };
        if is_mrnet
            && !SPLITS.into_iter().any(split_has_planes)
            && SPLITS
                .into_iter()
                .any(|s| studies::looks_like_studies(&split_dir(s)))
        {
            return Dataset::open_split_studies(root, options);
        }
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
            Layout::Flat | Layout::Studies => builder.flat_labels(&root),
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

    /// `DIR/{train,valid}/<exam>/…`: each split folder a dataset of studies.
    fn open_split_studies(root: PathBuf, options: &StudyOptions) -> Result<Dataset, DatasetError> {
        let mut all = studies::Studies::default();
        for split in SPLITS {
            let folder = root.join(split.name());
            if !folder.is_dir() {
                continue;
            }
            let found = studies::open_studies(&folder, options, split);
            all.exams.extend(found.exams);
            all.label_sources.extend(found.label_sources);
            all.problems.extend(found.problems);
        }
        Dataset::from_studies(root, all)
    }

    fn open_studies(root: PathBuf, options: &StudyOptions) -> Result<Dataset, DatasetError> {
        let found = studies::open_studies(&root, options, Split::Flat);
        Dataset::from_studies(root, found)
    }

    fn from_studies(root: PathBuf, found: studies::Studies) -> Result<Dataset, DatasetError> {
        if found.exams.is_empty() {
            return Err(DatasetError::NoExams {
                path: root,
                problems: found.problems,
            });
        }
        Ok(Dataset {
            root,
            layout: Layout::Studies,
            exams: found.exams,
            label_sources: found.label_sources,
            problems: found.problems,
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
