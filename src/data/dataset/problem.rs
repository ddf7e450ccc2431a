//! What is wrong or odd in a dataset folder, and how bad it is.
use std::fmt;
use std::path::PathBuf;

use crate::data::labels;
use crate::data::npy::NpyError;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_display_as_file_line_message() {
        let p = Problem::error(Some("a.csv".into()), Some(3), "bad");
        assert_eq!(p.to_string(), "a.csv:3: bad");
        let p = Problem::warning(Some("a.npy".into()), None, "odd");
        assert_eq!(p.to_string(), "a.npy: odd");
        let p = Problem::warning(None, None, "odd");
        assert_eq!(p.to_string(), "odd");
    }
}
