//! `e`: the current case's CAMs as PNGs, the `cam` command's layout for every plane whose
//! CAM is computed, into a new folder (never over an earlier export).
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cam::colormap::Colormap;
use crate::cam::Explanation;
use crate::data::dataset::Exam;
use crate::data::Plane;

use super::app::App;

/// What one export writes, gathered on the UI thread; `run` does the writing elsewhere.
pub struct Job {
    pub folder: PathBuf,
    /// e.g. `0002-acl-contrib`.
    pub name: String,
    pub planes: Vec<(Plane, Option<Exam>, Option<Arc<Explanation>>)>,
    pub colormap: Colormap,
}

impl Job {
    pub fn from_app(app: &App, case: usize, exams: &[Exam], folder: &Path) -> Job {
        let method = app.display().method;
        let name = format!(
            "{}-{}-{}",
            app.cases()[case].name,
            app.task(),
            method.name().replace('+', "pp")
        );
        let planes = crate::data::Plane::ALL
            .into_iter()
            .map(|plane| {
                let key = app.cam_key(case, plane, method);
                // The series shown, whose CAM this is.
                let exam = exams
                    .get(case)
                    .and_then(|e| super::loader::exam_for(e, plane, key.series));
                (plane, exam, app.cams().peek(&key).cloned())
            })
            .collect();
        Job {
            folder: folder.to_path_buf(),
            name,
            planes,
            colormap: app.display().colormap,
        }
    }
}

/// Why an export wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// (`error`, not `source`: the message prints it, so it is no source of the chain.)
    #[error("{doing}: {error}")]
    Io {
        doing: String,
        error: std::io::Error,
    },
    #[error(transparent)]
    Png(std::io::Error),
    #[error(transparent)]
    Read(#[from] crate::data::dataset::VolumeError),
    #[error("no CAM of this case is computed yet; wait for the overlay")]
    NothingComputed,
}

impl ExportError {
    /// The root cause in a few words: the OS's, for a file system error (every message
    /// here ends with its cause).
    pub fn cause(&self) -> String {
        let text = self.to_string();
        text.rsplit(": ").next().unwrap_or(&text).to_string()
    }
}

fn io_error(doing: String) -> impl FnOnce(std::io::Error) -> ExportError {
    move |error| ExportError::Io { doing, error }
}

/// Writes the export under a temporary name, then renames it to the first free
/// `NAME`, `NAME-2`, …; the message says where it went and which planes were missing.
pub fn run(job: Job) -> Result<String, ExportError> {
    let in_folder = || format!("creating a folder in {}", job.folder.display());
    std::fs::create_dir_all(&job.folder)
        .map_err(io_error(format!("creating {}", job.folder.display())))?;
    // Claimed like the target: two exports of one case at once never share a folder.
    let tmp = claim_free_name(
        &job.folder,
        &format!(".{}.tmp.{}", job.name, std::process::id()),
    )
    .map_err(io_error(in_folder()))?;
    let written = write_planes(&job, &tmp);
    let outcome = written.and_then(|(done, missing)| {
        let target = claim_free_name(&job.folder, &job.name).map_err(io_error(in_folder()))?;
        // Renaming a folder over the empty one just claimed replaces it.
        std::fs::rename(&tmp, &target).map_err(|error| {
            let _ = std::fs::remove_dir(&target);
            ExportError::Io {
                doing: format!("renaming into {}", target.display()),
                error,
            }
        })?;
        let mut text = format!("exported {} to {}", done.join(", "), target.display());
        if !missing.is_empty() {
            text.push_str(&format!(" ({} not computed yet)", missing.join(", ")));
        }
        Ok(text)
    });
    if outcome.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    outcome
}

fn write_planes(job: &Job, tmp: &Path) -> Result<(Vec<String>, Vec<String>), ExportError> {
    let (mut done, mut missing) = (Vec::new(), Vec::new());
    for (plane, exam, explanation) in &job.planes {
        let (Some(exam), Some(explanation)) = (exam, explanation) else {
            missing.push(plane.to_string());
            continue;
        };
        let volume = exam.load(*plane)?;
        let folder = tmp.join(plane.name());
        // Its errors name the file already.
        crate::cam::png::write_pngs(
            &folder,
            &volume.data,
            &explanation.maps,
            job.colormap,
            crate::cam::png::Files::IntoFreshFolder,
        )
        .map_err(ExportError::Png)?;
        done.push(plane.to_string());
    }
    if done.is_empty() {
        return Err(ExportError::NothingComputed);
    }
    Ok((done, missing))
}

/// Creates the first of `NAME`, `NAME-2`, … that does not exist yet: creating is the claim,
/// so two explorers exporting at once never get the same folder, and nothing is overwritten.
fn claim_free_name(folder: &Path, name: &str) -> std::io::Result<PathBuf> {
    for n in 1u32.. {
        let candidate = match n {
            1 => folder.join(name),
            n => folder.join(format!("{name}-{n}")),
        };
        match std::fs::create_dir(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
    Err(std::io::Error::other("no free name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_claims_get_distinct_folders_and_leave_existing_ones_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("0001-acl-cam")).expect("an earlier export");
        std::fs::write(dir.path().join("0001-acl-cam/keep"), "mine").expect("its file");
        let claims: Vec<PathBuf> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| claim_free_name(dir.path(), "0001-acl-cam")))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread").expect("claimed"))
                .collect()
        });
        let distinct: std::collections::BTreeSet<_> = claims.iter().collect();
        assert_eq!(distinct.len(), 8);
        assert!(!claims.contains(&dir.path().join("0001-acl-cam")));
        let kept = std::fs::read_to_string(dir.path().join("0001-acl-cam/keep")).expect("kept");
        assert_eq!(kept, "mine");
    }
}
