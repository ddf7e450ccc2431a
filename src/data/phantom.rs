//! The synthetic knee phantom: one analytic 3-D knee per exam, resliced into MRNet's three planes,
//! with ground-truth lesion masks. Deterministic: a seed gives byte-identical files anywhere.
//!
//! A cohort is written in MRNet's layout ([`Format::Npy`]: `.npy` volumes, masks, geometry files)
//! or as a dataset of studies ([`Format::Dicom`], [`Format::Nifti`]: one folder per exam, see
//! [`studies`]); the same seed gives the same pixels in every format.
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ndarray::Array3;
use rayon::prelude::*;

use crate::data::geometry::VolumeGeometry;
use crate::data::npy::write_u8_volume;
use crate::data::{exam_file_name, Plane, Split, Task};
use crate::fsutil::atomic_write;

pub mod anatomy;
pub mod geometry;
pub mod render;
pub mod studies;
pub mod texture;
/// The phantom's random generator, now [`crate::rng`]; this path still works.
pub use crate::rng;

use crate::rng::Rng;
use anatomy::{Knee, Lesions};
use render::{Appearance, Pose, SeriesGeometry};

/// Bumped whenever the same seed would give different files.
pub const FORMAT_VERSION: u32 = 4;
/// The file that marks a folder as a kneecam phantom cohort (and records how it was made).
pub const MARKER_FILE: &str = "phantom.toml";

/// How a cohort is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// MRNet's layout: `{split}/{plane}/NNNN.npy`, masks, geometry files, headerless CSVs.
    #[default]
    Npy,
    /// A dataset of DICOM studies: `{split}/NNNN/SE{n}/IM{k}`, one series per plane.
    Dicom,
    /// A dataset of NIfTI studies: `{split}/NNNN/{plane}.nii.gz`.
    Nifti,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Npy, Format::Dicom, Format::Nifti];

    pub fn name(self) -> &'static str {
        match self {
            Format::Npy => "npy",
            Format::Dicom => "dicom",
            Format::Nifti => "nifti",
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == text.trim().to_ascii_lowercase())
            .ok_or_else(|| format!("format \"{text}\": expected npy, dicom or nifti"))
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that decides one exam, before any pixel is drawn.
#[derive(Debug, Clone)]
pub struct ExamPlan {
    pub id: u32,
    pub knee: Knee,
    pub pose: Pose,
    pub series: [SeriesGeometry; 3],
    looks: [Appearance; 3],
    seed: u64,
}

impl ExamPlan {
    pub fn new(seed: u64, id: u32) -> Self {
        let mut rng = Rng::derive(seed, &[u64::from(id)]);
        let lesions = anatomy::random_lesions(&mut rng);
        let knee = Knee::random(&mut rng, lesions);
        let pose = Pose::random(&mut rng);
        let plane_rng =
            |plane: Plane| Rng::derive(seed, &[u64::from(id), 10 + plane.index() as u64]);
        let series = Plane::ALL.map(|plane| SeriesGeometry::random(plane, &mut plane_rng(plane)));
        let looks = Plane::ALL.map(|plane| Appearance::random(&mut plane_rng(plane)));
        ExamPlan {
            id,
            knee,
            pose,
            series,
            looks,
            seed,
        }
    }

    pub fn lesions(&self) -> &Lesions {
        &self.knee.lesions
    }

    /// MRNet labels, indexed by `Task::index`.
    pub fn labels(&self) -> [bool; 3] {
        self.knee.lesions.labels()
    }

    /// Image and mask of one plane, each (slices, 256, 256).
    pub fn scan(&self, plane: Plane) -> (Array3<u8>, Array3<u8>) {
        let mut noise = Rng::derive(self.seed, &[u64::from(self.id), 20 + plane.index() as u64]);
        // As MRNet's protocol: axial PD and sagittal T2 with fat saturation, coronal without.
        let mut knee = self.knee.clone();
        knee.fat_saturated = plane != Plane::Coronal;
        render::scan(
            &knee,
            &self.pose,
            &self.series[plane.index()],
            &self.looks[plane.index()],
            &mut noise,
        )
    }

    /// The knee-frame point at the centre of voxel (slice, row, col) of `plane`.
    pub fn knee_point(&self, plane: Plane, slice: usize, row: usize, col: usize) -> geometry::V3 {
        let q = self.series[plane.index()].point(slice as f64, row as f64, col as f64);
        self.pose.to_knee(q)
    }

    /// Where the voxels of `plane` lie in patient coordinates (LPS; [`render::patient_point`]).
    pub fn geometry(&self, plane: Plane) -> VolumeGeometry {
        self.series[plane.index()].volume_geometry()
    }
}

/// What `kneecam synth` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CohortSpec {
    /// All exams; ids 0..cases.
    pub cases: u32,
    /// How many of them (the last ids) go to `valid`.
    pub valid: u32,
    pub seed: u64,
}

impl CohortSpec {
    /// MRNet's split ratio (120 valid of 1,250) when `valid` is not given.
    pub fn default_valid(cases: u32) -> u32 {
        if cases < 2 {
            0
        } else {
            ((u64::from(cases) * 120 + 625) / 1250).max(1) as u32
        }
    }

    pub fn split_of(&self, id: u32) -> Split {
        if id >= self.cases - self.valid {
            Split::Valid
        } else {
            Split::Train
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PhantomError {
    #[error("{0}")]
    BadSpec(String),
    #[error("{dir} is not empty: choose an empty or new folder (or --force to replace a phantom cohort made there before)")]
    NotEmpty { dir: PathBuf },
    #[error("{dir} is not empty and holds no {MARKER_FILE}: --force only replaces a folder that kneecam synth made; choose an empty folder")]
    NotAPhantomFolder { dir: PathBuf },
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PhantomError + '_ {
    move |error| PhantomError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Counts of what was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CohortSummary {
    pub exams: [u32; 2],
    /// Positives per split (train, valid) and task.
    pub positives: [[u32; 3]; 2],
}

/// Writes the cohort in the MRNet layout, plus `masks/`, `geometry/` and the marker file. Exams
/// are generated in parallel; `on_exam` is called once per finished exam.
pub fn write_cohort(
    out: &Path,
    spec: &CohortSpec,
    force: bool,
    on_exam: impl Fn() + Sync,
) -> Result<CohortSummary, PhantomError> {
    write_cohort_as(out, spec, Format::Npy, force, on_exam)
}

/// Writes the cohort in `format` (the same pixels in each), plus the marker file.
pub fn write_cohort_as(
    out: &Path,
    spec: &CohortSpec,
    format: Format,
    force: bool,
    on_exam: impl Fn() + Sync,
) -> Result<CohortSummary, PhantomError> {
    validate(spec)?;
    prepare_folder(out, force)?;
    for split in [Split::Train, Split::Valid] {
        let split_dir = out.join(split.name());
        let dirs: Vec<PathBuf> = match format {
            Format::Npy => Plane::ALL
                .into_iter()
                .flat_map(|plane| {
                    [
                        split_dir.join(plane.name()),
                        split_dir.join("masks").join(plane.name()),
                        split_dir.join("geometry").join(plane.name()),
                    ]
                })
                .collect(),
            Format::Dicom | Format::Nifti => vec![split_dir],
        };
        for dir in dirs {
            std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        }
    }
    let labels: Vec<[bool; 3]> = (0..spec.cases)
        .into_par_iter()
        .map(|id| {
            let labels = match format {
                Format::Npy => write_exam(out, spec, id)?,
                Format::Dicom | Format::Nifti => studies::write_exam(out, spec, format, id)?,
            };
            on_exam();
            Ok(labels)
        })
        .collect::<Result<_, PhantomError>>()?;
    match format {
        Format::Npy => write_label_csvs(out, spec, &labels)?,
        Format::Dicom | Format::Nifti => studies::write_label_csvs(out, spec, &labels)?,
    }
    write_marker(out, spec, format)?;
    Ok(summarise(spec, &labels))
}

fn validate(spec: &CohortSpec) -> Result<(), PhantomError> {
    if spec.cases == 0 || spec.cases > 10_000 {
        return Err(PhantomError::BadSpec(format!(
            "--cases {}: expected 1 to 10000 exams",
            spec.cases
        )));
    }
    if spec.valid > spec.cases {
        return Err(PhantomError::BadSpec(format!(
            "--valid {} is more than --cases {}",
            spec.valid, spec.cases
        )));
    }
    Ok(())
}

/// An empty or new folder is used as is; a previous phantom cohort is cleared with `force`.
fn prepare_folder(out: &Path, force: bool) -> Result<(), PhantomError> {
    let occupied = match std::fs::read_dir(out) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(io_error(out)(e)),
    };
    if !occupied {
        return std::fs::create_dir_all(out).map_err(io_error(out));
    }
    if !force {
        return Err(PhantomError::NotEmpty {
            dir: out.to_path_buf(),
        });
    }
    if !out.join(MARKER_FILE).is_file() {
        return Err(PhantomError::NotAPhantomFolder {
            dir: out.to_path_buf(),
        });
    }
    // Remove the marker first: an interrupted clean-up leaves a folder --force will not touch.
    // A split folder holds everything of its split in any format (volumes, masks, geometry,
    // studies and their CSVs); the MRNet layout's CSVs sit beside the split folders.
    let marker = out.join(MARKER_FILE);
    std::fs::remove_file(&marker).map_err(io_error(&marker))?;
    for split in [Split::Train, Split::Valid] {
        let dir = out.join(split.name());
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io_error(&dir))?;
        }
        for task in Task::ALL {
            let csv = out.join(csv_name(split, task));
            if csv.exists() {
                std::fs::remove_file(&csv).map_err(io_error(&csv))?;
            }
        }
    }
    Ok(())
}

fn write_exam(out: &Path, spec: &CohortSpec, id: u32) -> Result<[bool; 3], PhantomError> {
    let plan = ExamPlan::new(spec.seed, id);
    let split_dir = out.join(spec.split_of(id).name());
    for plane in Plane::ALL {
        let (image, mask) = plan.scan(plane);
        let image_path = split_dir.join(plane.name()).join(exam_file_name(id));
        let mask_path = split_dir
            .join("masks")
            .join(plane.name())
            .join(exam_file_name(id));
        write_u8_volume(&image_path, &image).map_err(io_error(&image_path))?;
        write_u8_volume(&mask_path, &mask).map_err(io_error(&mask_path))?;
        let geometry_path = split_dir
            .join("geometry")
            .join(plane.name())
            .join(geometry_file_name(id));
        write_geometry(&geometry_path, &plan.geometry(plane)).map_err(io_error(&geometry_path))?;
    }
    Ok(plan.labels())
}

/// `NNNN.json`: the geometry file of exam `id` (in `{split}/geometry/{plane}/`).
pub fn geometry_file_name(id: u32) -> String {
    format!("{id:04}.json")
}

/// A geometry file: serde_json of the [`VolumeGeometry`], as `study::read_geometry_file` reads it.
fn write_geometry(path: &Path, geometry: &VolumeGeometry) -> std::io::Result<()> {
    crate::fsutil::atomic_write_unsynced(path, |w| {
        serde_json::to_writer(&mut *w, geometry).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    })
}

pub fn csv_name(split: Split, task: Task) -> String {
    format!("{}-{}.csv", split.name(), task.name())
}

fn write_label_csvs(
    out: &Path,
    spec: &CohortSpec,
    labels: &[[bool; 3]],
) -> Result<(), PhantomError> {
    for split in [Split::Train, Split::Valid] {
        for task in Task::ALL {
            let path = out.join(csv_name(split, task));
            atomic_write(&path, |w| {
                for (id, row) in labels.iter().enumerate() {
                    let id = id as u32;
                    if spec.split_of(id) == split {
                        writeln!(w, "{id:04},{}", u8::from(row[task.index()]))?;
                    }
                }
                Ok(())
            })
            .map_err(io_error(&path))?;
        }
    }
    Ok(())
}

fn write_marker(out: &Path, spec: &CohortSpec, format: Format) -> Result<(), PhantomError> {
    let path = out.join(MARKER_FILE);
    let about = match format {
        Format::Npy => {
            "masks/{plane}/NNNN.npy: 0 none, 1 ACL tear, 2 meniscal tear, 3 other abnormality"
        }
        Format::Dicom => "one DICOM study per exam, {split}/NNNN/SE{n}/IM{k}",
        Format::Nifti => "one folder of NIfTI volumes per exam, {split}/NNNN/{plane}.nii.gz",
    };
    let text = format!(
        "# Made by `kneecam synth`; {about}.\n\
         format_version = {FORMAT_VERSION}\nformat = \"{format}\"\nseed = {}\ncases = {}\nvalid = {}\n",
        spec.seed, spec.cases, spec.valid
    );
    atomic_write(&path, |w| w.write_all(text.as_bytes())).map_err(io_error(&path))
}

fn summarise(spec: &CohortSpec, labels: &[[bool; 3]]) -> CohortSummary {
    let mut summary = CohortSummary::default();
    for (id, row) in labels.iter().enumerate() {
        let split = usize::from(spec.split_of(id as u32) == Split::Valid);
        summary.exams[split] += 1;
        for task in Task::ALL {
            summary.positives[split][task.index()] += u32::from(row[task.index()]);
        }
    }
    summary
}
