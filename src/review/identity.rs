//! Who and what a verdict is about: the dataset's fingerprint, the reader's name, unique ids.
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::data::dataset::Dataset;
use crate::data::Plane;

/// A dataset as verdicts name it. The fingerprint is what identifies it (the same cohort
/// copied elsewhere, or regenerated, keeps its verdicts); the path is for people.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DatasetRef {
    pub fingerprint: String,
    pub path: String,
}

impl DatasetRef {
    /// `dataset`'s fingerprint: sha256 over every exam's split, id and series file sizes.
    /// Labels are left out on purpose, so that relabelling a cohort (from its readers'
    /// verdicts, say) keeps the verdicts attached to it.
    pub fn of(dataset: &Dataset) -> DatasetRef {
        let mut hasher = Sha256::new();
        for exam in dataset.exams() {
            let sizes = Plane::ALL.map(|plane| exam.path(plane).map_or(0, file_size));
            hasher.update(format!(
                "{},{},{},{},{}\n",
                exam.split.name(),
                exam.name(),
                sizes[0],
                sizes[1],
                sizes[2]
            ));
        }
        DatasetRef {
            fingerprint: format!("sha256:{:x}", hasher.finalize()),
            path: dataset.root().display().to_string(),
        }
    }
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The login name (`$USER`, else `$LOGNAME`, else `$USERNAME`), else "reader".
pub fn default_reader() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .into_iter()
        .filter_map(|var| std::env::var(var).ok())
        .map(|name| name.trim().to_string())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "reader".into())
}

/// Checks a reader's name: 1–64 printable characters, no control characters.
pub fn check_reader(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(format!(
            "'{}' is not a reader name: expected 1–64 printable characters",
            name.escape_default()
        ));
    }
    Ok(name.to_string())
}

/// An id no other verdict has: sha256 of the reader, the time, the process and a counter,
/// 128 bits of it in hex.
pub fn new_uid(reader: &str) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let seed = format!("{reader}\n{host}\n{nanos}\n{}\n{count}", std::process::id());
    crate::digest::sha256_hex(seed.as_bytes())[..32].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_differ() {
        let uids: std::collections::HashSet<_> = (0..1000).map(|_| new_uid("ann")).collect();
        assert_eq!(uids.len(), 1000);
    }

    #[test]
    fn reader_names_are_checked() {
        assert_eq!(check_reader(" ann ").as_deref(), Ok("ann"));
        assert!(check_reader("").is_err());
        assert!(check_reader("a\u{1b}[2J").is_err());
        assert!(check_reader(&"x".repeat(65)).is_err());
    }
}
