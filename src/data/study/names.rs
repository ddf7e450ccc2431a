//! Exam ids from folder names, and the `exam,label` CSVs of a dataset of studies.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Longest exam id kept, in characters (longer names are cut, and a collision then reported).
const MAX_ID_CHARS: usize = 120;

/// A folder name made safe for a path, the screen and a CSV: control characters, path
/// separators, `:` and `,` become `_`; no `..` and no leading `.`; surrounding whitespace goes;
/// at most 120 characters. An empty result is `_`.
pub fn sanitise_exam_id(name: &str) -> String {
    let mapped: String = name
        .trim()
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | ',' | '"' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .take(MAX_ID_CHARS)
        .collect();
    let mut safe = mapped.replace("..", "__");
    if safe.starts_with('.') {
        safe.replace_range(..1, "_");
    }
    if safe.is_empty() {
        safe.push('_');
    }
    safe
}

/// One study label CSV: label by the exam folder's name as written, and the errors by line.
#[derive(Debug, Clone, Default)]
pub struct StudyLabels {
    pub path: PathBuf,
    /// exam → (label, 1-based line).
    pub rows: BTreeMap<String, (bool, usize)>,
    /// (1-based line, what is wrong).
    pub errors: Vec<(usize, String)>,
}

/// Reads `exam,label` rows (an optional `exam,label` header; a field may be double-quoted, so a
/// folder name may hold commas; `label` is 0 or 1). A repeated exam is an error at its second
/// row; the first row stands.
pub fn read_study_labels(path: &Path) -> std::io::Result<StudyLabels> {
    let bytes = crate::fsutil::read_at_most(path, 64 << 20, "a label file")?;
    let text = String::from_utf8_lossy(&bytes);
    let mut labels = StudyLabels {
        path: path.to_path_buf(),
        ..StudyLabels::default()
    };
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || (number == 1 && is_header(line)) {
            continue;
        }
        match parse_row(line) {
            Ok((exam, label)) => match labels.rows.entry(exam) {
                std::collections::btree_map::Entry::Occupied(first) => {
                    let message = format!(
                        "exam '{}' appears again (first on line {}): expected each exam once",
                        first.key(),
                        first.get().1
                    );
                    labels.errors.push((number, message));
                }
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert((label, number));
                }
            },
            Err(why) => labels.errors.push((number, why)),
        }
    }
    Ok(labels)
}

fn is_header(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    let fields: Vec<&str> = lower.split(',').map(str::trim).collect();
    fields == ["exam", "label"]
}

fn parse_row(line: &str) -> Result<(String, bool), String> {
    let expected = "expected `exam,label` with label 0 or 1";
    let (exam, rest) = if let Some(quoted) = line.trim_start().strip_prefix('"') {
        let mut exam = String::new();
        let mut chars = quoted.chars().peekable();
        loop {
            match chars.next() {
                Some('"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    exam.push('"');
                }
                Some('"') => break,
                Some(c) => exam.push(c),
                None => return Err(format!("unterminated quoted exam name: {expected}")),
            }
        }
        let rest: String = chars.collect();
        let rest = rest
            .trim_start()
            .strip_prefix(',')
            .ok_or_else(|| format!("no comma after the quoted exam name: {expected}"))?
            .to_string();
        (exam, rest)
    } else {
        let (exam, rest) = line
            .rsplit_once(',')
            .ok_or_else(|| format!("'{line}': {expected}"))?;
        (exam.trim().to_string(), rest.to_string())
    };
    if exam.is_empty() {
        return Err(format!("empty exam name: {expected}"));
    }
    match rest.trim() {
        "0" => Ok((exam, false)),
        "1" => Ok((exam, true)),
        other => Err(format!("label '{other}' for exam '{exam}': {expected}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_are_made_safe() {
        assert_eq!(sanitise_exam_id("knee 12"), "knee 12");
        assert_eq!(sanitise_exam_id(".."), "__");
        assert_eq!(sanitise_exam_id("../etc"), "___etc");
        assert_eq!(sanitise_exam_id(".hidden"), "_hidden");
        assert_eq!(sanitise_exam_id("a/b\\c:d,e"), "a_b_c_d_e");
        assert_eq!(sanitise_exam_id("bell\u{7}\u{1b}[31m"), "bell__[31m");
        assert_eq!(sanitise_exam_id("   "), "_");
        assert_eq!(sanitise_exam_id(&"x".repeat(500)).chars().count(), 120);
        for name in ["..", "a/../b", "\u{0}", "./x"] {
            let safe = sanitise_exam_id(name);
            assert!(!safe.contains("..") && !safe.contains('/') && !safe.starts_with('.'));
        }
    }

    #[test]
    fn label_rows_with_quotes_headers_and_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("acl.csv");
        std::fs::write(
            &path,
            "exam,label\nknee-1,1\n\"smith, j\",0\nknee-1,0\nbad\nknee-2,yes\n\"open,1\n",
        )
        .expect("write");
        let labels = read_study_labels(&path).expect("reads");
        assert_eq!(labels.rows.get("knee-1"), Some(&(true, 2)));
        assert_eq!(labels.rows.get("smith, j"), Some(&(false, 3)));
        let lines: Vec<usize> = labels.errors.iter().map(|e| e.0).collect();
        assert_eq!(lines, [4, 5, 6, 7]);
    }
}
