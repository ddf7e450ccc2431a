//! eval-cam's JSON report, read back for the explorer: per exam, task, plane and method,
//! whether the map's peak fell in the lesion (pointing game) and whether its top slice holds
//! lesion voxels (slice hit).
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Method;
use crate::data::{Plane, Task};

/// One exam's localisation result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EvalMark {
    pub pointing: Option<bool>,
    pub slice_hit: Option<bool>,
}

/// Every per-exam result of one report, by (exam name, task, plane, method).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EvalResults {
    marks: HashMap<(String, Task, Plane, Method), EvalMark>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: not an eval-cam report: {message}", path.display())]
    Format { path: PathBuf, message: String },
}

/// A report is a few megabytes at most (60 exams × 36 rows is ~1 MB).
const MAX_REPORT_BYTES: u64 = 256 << 20;

#[derive(Deserialize)]
struct Report {
    rows: Vec<Row>,
}

#[derive(Deserialize)]
struct Row {
    task: String,
    plane: String,
    method: String,
    per_exam: Vec<ExamRow>,
}

#[derive(Deserialize)]
struct ExamRow {
    exam: String,
    pointing: Option<bool>,
    slice_hit: Option<bool>,
}

impl EvalResults {
    /// Reads `path` (written by `kneecam eval-cam --out`).
    pub fn read(path: &Path) -> Result<EvalResults, ReportError> {
        let text = crate::fsutil::read_text_at_most(path, MAX_REPORT_BYTES, "an eval-cam report")
            .map_err(|error| ReportError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let format = |message: String| ReportError::Format {
            path: path.to_path_buf(),
            message,
        };
        let report: Report = serde_json::from_str(&text).map_err(|e| format(e.to_string()))?;
        let mut marks = HashMap::new();
        for (index, row) in report.rows.into_iter().enumerate() {
            let field = |name: &str, value: &str, expected: &str| {
                format(format!(
                    "rows[{index}].{name}: \"{value}\": expected one of {expected}"
                ))
            };
            let task: Task = row
                .task
                .parse()
                .map_err(|_| field("task", &row.task, "abnormal, acl, meniscus"))?;
            let plane: Plane = row
                .plane
                .parse()
                .map_err(|_| field("plane", &row.plane, "axial, coronal, sagittal"))?;
            let method: Method = row
                .method
                .parse()
                .map_err(|_| field("method", &row.method, "cam, contrib, gradcam, gradcam++"))?;
            for exam in row.per_exam {
                let mark = EvalMark {
                    pointing: exam.pointing,
                    slice_hit: exam.slice_hit,
                };
                marks.insert((exam.exam, task, plane, method), mark);
            }
        }
        Ok(EvalResults { marks })
    }

    pub fn get(&self, exam: &str, task: Task, plane: Plane, method: Method) -> Option<EvalMark> {
        self.marks
            .get(&(exam.to_string(), task, plane, method))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("report.json");
        std::fs::write(&path, text).expect("written");
        (dir, path)
    }

    #[test]
    fn per_exam_results_are_found_by_exam_task_plane_and_method() {
        let (_dir, path) = write(
            r#"{"data": "d", "models": "m", "split": "valid", "steps": 10, "rows": [
                {"task": "acl", "plane": "coronal", "method": "contrib", "exams": 1,
                 "per_exam": [{"exam": "0003", "probability": 0.9, "pointing": true,
                               "energy_share": 0.4, "slice_hit": false,
                               "deletion_auc": 0.1, "random_deletion_auc": 0.2}]}]}"#,
        );
        let results = EvalResults::read(&path).expect("reads");
        let mark = results.get("0003", Task::Acl, Plane::Coronal, Method::Contrib);
        assert_eq!(
            mark,
            Some(EvalMark {
                pointing: Some(true),
                slice_hit: Some(false)
            })
        );
        assert_eq!(
            results.get("0003", Task::Acl, Plane::Sagittal, Method::Contrib),
            None
        );
    }

    #[test]
    fn a_bad_report_names_the_file_and_the_field() {
        let (_dir, path) = write(
            r#"{"rows": [{"task": "knee", "plane": "axial", "method": "cam", "per_exam": []}]}"#,
        );
        let err = EvalResults::read(&path).expect_err("refused").to_string();
        assert!(err.contains("report.json"), "{err}");
        assert!(err.contains("rows[0].task: \"knee\""), "{err}");
        let (_dir, path) = write("[1, 2]");
        let err = EvalResults::read(&path).expect_err("refused").to_string();
        assert!(err.contains("not an eval-cam report"), "{err}");
    }
}
