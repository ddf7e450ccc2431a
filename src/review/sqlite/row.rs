//! A verdict row as SQLite returns it, and its checks: a value the schema's CHECKs would
//! refuse (a file written by hand, say) is an error naming the verdict and the column.
use std::path::Path;

use super::super::{DatasetRef, ReviewError, Truth, Verdict};
use crate::data::Split;

/// A verdict row as SQLite holds it, before its text columns are checked.
pub(super) struct RawRow {
    uid: String,
    fingerprint: String,
    dataset_path: String,
    split: String,
    exam: String,
    task: String,
    reader: String,
    verdict: String,
    note: Option<String>,
    probability: Option<f64>,
    model_call: Option<String>,
    threshold: f64,
    label: Option<String>,
    models_fingerprint: String,
    method: String,
    seconds: f64,
    recorded_at: i64,
}

pub(super) fn raw_row(row: &rusqlite::Row) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        uid: row.get(0)?,
        fingerprint: row.get(1)?,
        dataset_path: row.get(2)?,
        split: row.get(3)?,
        exam: row.get(4)?,
        task: row.get(5)?,
        reader: row.get(6)?,
        verdict: row.get(7)?,
        note: row.get(8)?,
        probability: row.get(9)?,
        model_call: row.get(10)?,
        threshold: row.get(11)?,
        label: row.get(12)?,
        models_fingerprint: row.get(13)?,
        method: row.get(14)?,
        seconds: row.get(15)?,
        recorded_at: row.get(16)?,
    })
}

impl RawRow {
    pub(super) fn parse(self, path: &Path) -> Result<Verdict, ReviewError> {
        let bad = |column: &'static str, message: String| ReviewError::BadRow {
            path: path.to_path_buf(),
            uid: self.uid.clone(),
            column,
            message,
        };
        let call = |column: &'static str, text: &Option<String>| match text.as_deref() {
            None => Ok(None),
            Some(text) => match Truth::parse(text).and_then(Truth::call) {
                Some(call) => Ok(Some(call)),
                None => Err(bad(
                    column,
                    format!("'{text}': expected positive or negative"),
                )),
            },
        };
        Ok(Verdict {
            // Not `str::parse`: Split's FromStr knows train and valid only (what users
            // type), and verdicts on a flat folder's exams are stored as "flat".
            split: [Split::Train, Split::Valid, Split::Flat]
                .into_iter()
                .find(|s| s.name() == self.split)
                .ok_or_else(|| {
                    bad(
                        "split",
                        format!("'{}': expected train, valid or flat", self.split),
                    )
                })?,
            task: self.task.parse().map_err(|_| {
                bad(
                    "task",
                    format!("'{}': expected abnormal, acl or meniscus", self.task),
                )
            })?,
            truth: Truth::parse(&self.verdict).ok_or_else(|| {
                bad(
                    "verdict",
                    format!("'{}': expected positive, negative or unsure", self.verdict),
                )
            })?,
            model_call: call("model_call", &self.model_call)?,
            label: call("label", &self.label)?,
            dataset: DatasetRef {
                fingerprint: self.fingerprint.clone(),
                path: self.dataset_path.clone(),
            },
            exam: self.exam.clone(),
            reader: self.reader.clone(),
            note: self.note.clone(),
            probability: self.probability.map(|p| p as f32),
            threshold: self.threshold as f32,
            models_fingerprint: self.models_fingerprint.clone(),
            method: self.method.clone(),
            seconds: self.seconds,
            recorded_at: self.recorded_at,
            uid: self.uid,
        })
    }
}
