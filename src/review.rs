//! Triage: what readers decide about the model's calls, kept in a database.
//!
//! A [`Verdict`] is what one reader says the truth of one exam is for one task (`positive`,
//! `negative`, `unsure`), with the model's call it was given against and everything needed to
//! weigh it later (probability, threshold, the models' fingerprint, the CAM method shown, the
//! seconds spent). Verdicts are never changed: a later one by the same reader on the same case
//! supersedes the earlier (history is kept), and an undo is a record of its own. So databases
//! merge by union, and the latest verdict wins.
//!
//! Storage sits behind [`ReviewStore`]; [`sqlite::SqliteStore`] is the one implementation (a
//! server database could be another). The explorer writes through [`writer::ReviewWriter`], a
//! thread of its own, so the UI never waits for the database.
use std::path::PathBuf;

use crate::data::{Split, Task};

pub mod consensus;
pub mod identity;
pub mod sqlite;
pub mod summary;
pub mod writer;

pub use identity::DatasetRef;

/// What a reader says the truth is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Truth {
    Positive,
    Negative,
    Unsure,
}

impl Truth {
    pub const ALL: [Truth; 3] = [Truth::Positive, Truth::Negative, Truth::Unsure];

    pub fn name(self) -> &'static str {
        match self {
            Truth::Positive => "positive",
            Truth::Negative => "negative",
            Truth::Unsure => "unsure",
        }
    }

    pub fn parse(text: &str) -> Option<Truth> {
        Truth::ALL.into_iter().find(|t| t.name() == text)
    }

    /// The call this truth stands for; None for unsure.
    pub fn call(self) -> Option<bool> {
        match self {
            Truth::Positive => Some(true),
            Truth::Negative => Some(false),
            Truth::Unsure => None,
        }
    }

    pub fn of_call(call: bool) -> Truth {
        if call {
            Truth::Positive
        } else {
            Truth::Negative
        }
    }
}

/// One reader's decision on one exam for one task.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Unique over every database (merging keeps one copy of each uid).
    pub uid: String,
    pub dataset: DatasetRef,
    pub split: Split,
    pub exam: String,
    pub task: Task,
    pub reader: String,
    pub truth: Truth,
    pub note: Option<String>,
    /// The model's combined P(positive) when the verdict was given.
    pub probability: Option<f32>,
    /// The model's call at `threshold`.
    pub model_call: Option<bool>,
    pub threshold: f32,
    /// The dataset's label for this task, if it has one.
    pub label: Option<bool>,
    /// sha256 of the models folder's manifest.
    pub models_fingerprint: String,
    /// The CAM method on screen.
    pub method: String,
    /// From first showing the exam to the verdict.
    pub seconds: f64,
    /// Unix time in milliseconds.
    pub recorded_at: i64,
}

/// A reader taking back one of their verdicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undo {
    pub verdict_uid: String,
    pub reader: String,
    pub undone_at: i64,
}

/// Which verdicts a query wants; None matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    pub dataset_fingerprint: Option<String>,
    pub task: Option<Task>,
    pub reader: Option<String>,
}

/// Everything a database holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contents {
    pub verdicts: Vec<Verdict>,
    pub undos: Vec<Undo>,
}

/// Where reviews are kept. Writes are whole or not at all.
pub trait ReviewStore: Send {
    fn record(&mut self, verdict: &Verdict) -> Result<(), ReviewError>;
    fn undo(&mut self, undo: &Undo) -> Result<(), ReviewError>;
    /// The verdicts `query` matches that were not undone, oldest first (ties by uid).
    fn verdicts(&self, query: &Query) -> Result<Vec<Verdict>, ReviewError>;
    /// Every verdict and undo, for merging.
    fn contents(&self) -> Result<Contents, ReviewError>;
    /// Adds what `contents` holds that this store lacks (by uid); returns how many verdicts
    /// and undos were new.
    fn import(&mut self, contents: &Contents) -> Result<(usize, usize), ReviewError>;
    /// What the store is, for messages: the file's path.
    fn describe(&self) -> String;
}

/// The latest verdict per (dataset, split, exam, task, reader) among `verdicts` (which come
/// oldest first).
pub fn latest(verdicts: &[Verdict]) -> Vec<&Verdict> {
    let mut by_case: std::collections::BTreeMap<_, &Verdict> = std::collections::BTreeMap::new();
    for verdict in verdicts {
        let key = (
            verdict.dataset.fingerprint.as_str(),
            verdict.split,
            verdict.exam.as_str(),
            verdict.task,
            verdict.reader.as_str(),
        );
        by_case.insert(key, verdict);
    }
    by_case.into_values().collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(
        "{}: not a SQLite database, so not a kneecam review database; the file was left \
         untouched",
        .0.display()
    )]
    NotDatabase(PathBuf),
    #[error(
        "{}: a SQLite database, but not kneecam's reviews ({detail}); the file was left \
         untouched",
        .path.display()
    )]
    Foreign { path: PathBuf, detail: String },
    #[error(
        "{}: written by a newer kneecam (review schema {found}; this one knows up to \
         {known}): update kneecam; the file was left untouched",
        .path.display()
    )]
    Newer {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("{}: read-only (check its and its folder's permissions)", .0.display())]
    ReadOnly(PathBuf),
    #[error("{}: the disk is full", .0.display())]
    Full(PathBuf),
    #[error("{}: locked by another writer for more than {seconds} s", .path.display())]
    Busy { path: PathBuf, seconds: u64 },
    #[error("{}: {doing}: {message}", .path.display())]
    Sqlite {
        path: PathBuf,
        doing: String,
        message: String,
    },
    #[error("{}: {doing}: {error}", .path.display())]
    Io {
        path: PathBuf,
        doing: String,
        error: std::io::Error,
    },
    #[error("the review writer stopped")]
    Stopped,
    #[error("{}: verdict {uid}: column {column}: {message}", .path.display())]
    BadRow {
        path: PathBuf,
        uid: String,
        column: &'static str,
        message: String,
    },
}

impl ReviewError {
    /// The message with the file named by its name alone (for the status line, one row).
    pub fn short(&self) -> String {
        let text = self.to_string();
        let path = match self {
            ReviewError::NotDatabase(path)
            | ReviewError::ReadOnly(path)
            | ReviewError::Full(path) => path,
            ReviewError::Foreign { path, .. }
            | ReviewError::Newer { path, .. }
            | ReviewError::Busy { path, .. }
            | ReviewError::Sqlite { path, .. }
            | ReviewError::Io { path, .. }
            | ReviewError::BadRow { path, .. } => path,
            ReviewError::Stopped => return text,
        };
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        text.replacen(&path.display().to_string(), &name, 1)
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `millis` since the epoch as ISO 8601 UTC: `2026-12-01T12:04:21.123Z`.
pub fn iso8601(millis: i64) -> String {
    let seconds = millis.div_euclid(1000);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        millis.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_matches_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso8601(1_796_126_661_123), "2026-12-01T12:04:21.123Z");
    }

    #[test]
    fn truths_round_trip() {
        for truth in Truth::ALL {
            assert_eq!(Truth::parse(truth.name()), Some(truth));
        }
        assert_eq!(Truth::parse("Positive"), None);
    }
}
