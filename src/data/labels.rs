//! MRNet label CSVs: headerless rows `case,label`, one per exam, label 0 or 1.
//!
//! Case ids may or may not be zero-padded (`0007,1` and `7,1` are the same case). Whitespace
//! around fields, CRLF line ends, a UTF-8 byte-order mark and empty lines at the end are
//! tolerated; every other deviation is reported with the file, the 1-based line number, the
//! text and what was expected, and the good rows are kept.
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What every row must look like, for error messages.
pub const EXPECTED_ROW: &str =
    "expected `case,label`: a case id, a comma, and label 0 or 1 (no header row)";

/// One good row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelRow {
    pub id: u32,
    pub label: bool,
    /// 1-based line number.
    pub line: usize,
}

/// A label CSV as read: its good rows by case id, and what was wrong with the others.
#[derive(Debug)]
pub struct LabelFile {
    pub path: PathBuf,
    pub rows: BTreeMap<u32, LabelRow>,
    pub errors: Vec<LabelError>,
}

impl LabelFile {
    pub fn get(&self, id: u32) -> Option<bool> {
        self.rows.get(&id).map(|r| r.label)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Rows labelled 1.
    pub fn positives(&self) -> usize {
        self.rows.values().filter(|r| r.label).count()
    }
}

/// A problem with a label CSV. [`fmt::Display`] gives `FILE:LINE: DETAIL`.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    Io {
        path: PathBuf,
        error: io::Error,
    },
    BadRow {
        path: PathBuf,
        line: usize,
        text: String,
        problem: String,
    },
    Duplicate {
        path: PathBuf,
        id: u32,
        first_line: usize,
        line: usize,
    },
}

impl LabelError {
    pub fn path(&self) -> &Path {
        match self {
            LabelError::Io { path, .. }
            | LabelError::BadRow { path, .. }
            | LabelError::Duplicate { path, .. } => path,
        }
    }

    /// The 1-based line concerned, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            LabelError::Io { .. } => None,
            LabelError::BadRow { line, .. } | LabelError::Duplicate { line, .. } => Some(*line),
        }
    }

    /// The message without the `FILE:LINE: ` in front.
    pub fn detail(&self) -> String {
        match self {
            LabelError::Io { error, .. } => format!("cannot read: {error}"),
            LabelError::BadRow { text, problem, .. } => {
                format!("bad row {text:?}: {problem}; {EXPECTED_ROW}")
            }
            LabelError::Duplicate {
                id,
                first_line,
                line,
                ..
            } => format!(
                "case {id} appears twice, on lines {first_line} and {line}: expected each case \
                 once"
            ),
        }
    }
}

impl fmt::Display for LabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path().display())?;
        if let Some(line) = self.line() {
            write!(f, ":{line}")?;
        }
        write!(f, ": {}", self.detail())
    }
}

/// MRNet's largest label CSV is 20 KB; a file past this is refused unread.
pub const MAX_LABEL_BYTES: u64 = 64 << 20;

/// Reads the label CSV at `path`. Only failing to read the file is an `Err`; bad rows are in
/// [`LabelFile::errors`].
pub fn read_labels(path: &Path) -> Result<LabelFile, LabelError> {
    let bytes =
        crate::fsutil::read_at_most(path, MAX_LABEL_BYTES, "a label CSV").map_err(|error| {
            LabelError::Io {
                path: path.to_path_buf(),
                error,
            }
        })?;
    Ok(parse_labels(path, &bytes))
}

/// Parses label CSV contents; `path` only names the file in errors.
pub fn parse_labels(path: &Path, bytes: &[u8]) -> LabelFile {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut file = LabelFile {
        path: path.to_path_buf(),
        rows: BTreeMap::new(),
        errors: Vec::new(),
    };
    let bad = |line: usize, raw: &[u8], problem: String| LabelError::BadRow {
        path: path.to_path_buf(),
        line,
        text: shorten(&String::from_utf8_lossy(raw)),
        problem,
    };
    // Empty lines are fine only at the end; remember them until a row follows.
    let mut blank_lines: Vec<usize> = Vec::new();
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            blank_lines.push(line);
            continue;
        }
        for blank in blank_lines.drain(..) {
            file.errors
                .push(bad(blank, b"", "empty line between rows".to_string()));
        }
        let text = match std::str::from_utf8(raw) {
            Ok(text) => text,
            Err(_) => {
                file.errors
                    .push(bad(line, raw, "not valid UTF-8 text".to_string()));
                continue;
            }
        };
        match parse_row(text) {
            Ok((id, label)) => {
                if let Some(first) = file.rows.get(&id) {
                    file.errors.push(LabelError::Duplicate {
                        path: path.to_path_buf(),
                        id,
                        first_line: first.line,
                        line,
                    });
                } else {
                    file.rows.insert(id, LabelRow { id, label, line });
                }
            }
            Err(problem) if line == 1 && problem.ends_with("is not a number") => file
                .errors
                .push(bad(line, raw, format!("{problem} (a header row?)"))),
            Err(problem) => file.errors.push(bad(line, raw, problem)),
        }
    }
    file.errors.sort_by_key(|e| e.line());
    file
}

fn parse_row(text: &str) -> Result<(u32, bool), String> {
    let fields: Vec<&str> = text.split(',').map(str::trim).collect();
    let [id, label] = fields[..] else {
        let n = fields.len();
        return Err(format!("{n} field{}, not 2", if n == 1 { "" } else { "s" }));
    };
    if id.is_empty() {
        return Err("no case id".to_string());
    }
    if !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("case id {:?} is not a number", shorten(id)));
    }
    let id = id
        .parse::<u32>()
        .map_err(|_| format!("case id {} is too large", shorten(id)))?;
    let label = match label {
        "0" => false,
        "1" => true,
        "" => return Err("no label".to_string()),
        other => return Err(format!("label {:?} is not 0 or 1", shorten(other))),
    };
    Ok((id, label))
}

fn shorten(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> LabelFile {
        parse_labels(Path::new("train-acl.csv"), text.as_bytes())
    }

    fn messages(file: &LabelFile) -> Vec<String> {
        file.errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn good_rows_with_padding_whitespace_crlf_and_trailing_blank_lines() {
        let file = parse("\u{feff}0000,0\r\n7,1\r\n 0012 , 1 \r\n\t1129,0\n\r\n\n  \n");
        assert!(file.errors.is_empty(), "{:?}", messages(&file));
        assert_eq!(file.len(), 4);
        assert_eq!(file.get(7), Some(true));
        assert_eq!(file.get(12), Some(true));
        assert_eq!(file.get(1129), Some(false));
        assert_eq!(file.rows[&12].line, 3);
        assert_eq!(file.positives(), 2);
    }

    #[test]
    fn every_bad_row_is_named_with_its_line_and_the_good_rows_are_kept() {
        let file = parse("case,label\n1,2\n2\n3,1,0\n-4,1\n,1\n5,\n\n6,1\n7,yes\n99999999999,1\n");
        let msgs = messages(&file);
        let expected = [
            "train-acl.csv:1: bad row \"case,label\": case id \"case\" is not a number (a header row?)",
            "train-acl.csv:2: bad row \"1,2\": label \"2\" is not 0 or 1",
            "train-acl.csv:3: bad row \"2\": 1 field, not 2",
            "train-acl.csv:4: bad row \"3,1,0\": 3 fields, not 2",
            "train-acl.csv:5: bad row \"-4,1\": case id \"-4\" is not a number",
            "train-acl.csv:6: bad row \",1\": no case id",
            "train-acl.csv:7: bad row \"5,\": no label",
            "train-acl.csv:8: bad row \"\": empty line between rows",
            "train-acl.csv:10: bad row \"7,yes\": label \"yes\" is not 0 or 1",
            "train-acl.csv:11: bad row \"99999999999,1\": case id 99999999999 is too large",
        ];
        assert_eq!(msgs.len(), expected.len(), "{msgs:#?}");
        for (msg, want) in msgs.iter().zip(expected) {
            assert!(msg.starts_with(want), "{msg}\n  wanted {want}");
            assert!(msg.ends_with(EXPECTED_ROW), "{msg}");
        }
        assert_eq!(file.rows.keys().copied().collect::<Vec<_>>(), [6]);
    }

    #[test]
    fn duplicates_name_both_lines_and_keep_the_first() {
        let file = parse("5,1\n6,0\n0005,0\n");
        assert_eq!(
            messages(&file),
            ["train-acl.csv:3: case 5 appears twice, on lines 1 and 3: expected each case once"]
        );
        assert_eq!(file.get(5), Some(true));
    }

    #[test]
    fn invalid_utf8_is_a_bad_row() {
        let file = parse_labels(Path::new("x.csv"), b"1,1\n\xff\xfe,1\n");
        assert_eq!(file.len(), 1);
        assert!(messages(&file)[0]
            .starts_with("x.csv:2: bad row \"\u{fffd}\u{fffd},1\": not valid UTF-8"));
    }

    #[test]
    fn long_lines_are_shortened_in_messages() {
        let file = parse(&"x".repeat(500));
        assert!(messages(&file)[0].contains(&format!("{}…", "x".repeat(60))));
    }

    #[test]
    fn long_fields_are_shortened_in_problems_too() {
        for (text, wanted) in [
            (format!("{},1", "7".repeat(500)), "is too large"),
            (format!("{},1", "\u{1}".repeat(500)), "is not a number"),
            (format!("1,{}", "y".repeat(500)), "is not 0 or 1"),
        ] {
            let file = parse(&text);
            let msg = &messages(&file)[0];
            assert!(msg.contains(wanted), "{msg}");
            assert!(msg.chars().count() < 1000, "{msg}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let file = parse_labels(Path::new("x.csv"), &bytes);
            for e in &file.errors {
                prop_assert!(e.to_string().starts_with("x.csv:"));
            }
        }

        #[test]
        fn csv_like_text_never_panics(
            parts in proptest::collection::vec(
                prop_oneof![Just("0"), Just("1"), Just("12"), Just(","), Just(" "), Just("\r"),
                            Just("\n"), Just("\r\n"), Just("-"), Just("a"), Just("\u{feff}")],
                0..60,
            ),
        ) {
            let _ = parse(&parts.concat());
        }

        #[test]
        fn written_rows_read_back(rows in proptest::collection::btree_map(0u32..100_000, any::<bool>(), 0..50), pad in any::<bool>()) {
            let text: String = rows
                .iter()
                .map(|(id, l)| if pad { format!("{id:04},{}\r\n", u8::from(*l)) } else { format!("{id},{}\n", u8::from(*l)) })
                .collect();
            let file = parse(&text);
            prop_assert!(file.errors.is_empty());
            let back: BTreeMap<u32, bool> = file.rows.values().map(|r| (r.id, r.label)).collect();
            prop_assert_eq!(back, rows);
        }
    }
}
