//! What a file holds, judged from its bytes without running anything.
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::opcodes::pickle_globals;
use super::pickled::is_state_dict_global;
use super::torch_zip::{open_torch_zip, ZipVerdict};
use super::WeightsError;

/// What a file holds, judged from its bytes (never from its name) without running anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    /// A `.safetensors` file (8-byte header length, then a JSON header).
    Safetensors,
    /// A PyTorch zip archive whose `data.pkl` refers only to state-dict globals.
    StateDict,
    /// A PyTorch zip archive pickling Python objects: these globals besides tensors.
    PickledObject { globals: Vec<String> },
    /// A TorchScript archive (`torch.jit.save`): has `code/` or `constants.pkl`.
    TorchScript,
    /// PyTorch's pre-1.6 serialization (a bare pickle stream with torch's magic number).
    LegacyTorch,
    /// Anything else, described for people: "a NumPy .npy array", "a text file", …
    Other(String),
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileKind::Safetensors => write!(f, "a safetensors file"),
            FileKind::StateDict => write!(f, "a PyTorch state dict"),
            FileKind::PickledObject { .. } => write!(f, "a pickled PyTorch object"),
            FileKind::TorchScript => write!(f, "a TorchScript module"),
            FileKind::LegacyTorch => write!(f, "a PyTorch file in the legacy (pre-1.6) format"),
            FileKind::Other(what) => write!(f, "{what}"),
        }
    }
}

/// Says what `path` holds from its bytes, reading at most its zip directory and `data.pkl`.
pub fn inspect(path: &Path) -> Result<FileKind, WeightsError> {
    let io = |error| WeightsError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut head = Vec::with_capacity(512);
    (&mut file).take(512).read_to_end(&mut head).map_err(io)?;
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return inspect_zip(path, file);
    }
    Ok(kind_of_bytes(&head))
}

fn kind_of_bytes(head: &[u8]) -> FileKind {
    if head.len() >= 10 && head[8] == b'{' {
        return FileKind::Safetensors;
    }
    // torch.save's legacy format starts with the pickled magic number 0x1950a86a20f9469cfc6c.
    if head.starts_with(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19") {
        return FileKind::LegacyTorch;
    }
    let what = if head.is_empty() {
        "the file is empty".to_string()
    } else if head.starts_with(b"\x93NUMPY") {
        "a NumPy .npy array".into()
    } else if head.first() == Some(&0x80) {
        "a bare Python pickle".into()
    } else if head.starts_with(b"\x89HDF") {
        "an HDF5 file (Keras?)".into()
    } else if std::str::from_utf8(head).is_ok_and(|s| {
        s.chars()
            .all(|c| !c.is_control() || c.is_ascii_whitespace())
    }) {
        "a text file".into()
    } else {
        "unrecognised binary data".into()
    };
    FileKind::Other(what)
}

fn inspect_zip(path: &Path, file: File) -> Result<FileKind, WeightsError> {
    let zip = match open_torch_zip(path, file)? {
        ZipVerdict::Kind(kind) => return Ok(kind),
        ZipVerdict::Torch(zip) => zip,
    };
    Ok(match pickle_globals(&zip.pickle) {
        Err(why) => FileKind::Other(format!("a zip archive with an unreadable data.pkl: {why}")),
        Ok(globals) => {
            let foreign: Vec<String> = globals
                .into_iter()
                .filter(|g| !is_state_dict_global(g))
                .collect();
            if foreign.is_empty() {
                FileKind::StateDict
            } else {
                FileKind::PickledObject { globals: foreign }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_classified_without_trusting_the_name() {
        assert_eq!(
            kind_of_bytes(b"\x93NUMPY\x01\x00"),
            FileKind::Other("a NumPy .npy array".into())
        );
        assert_eq!(
            kind_of_bytes(b"hello\nworld\n"),
            FileKind::Other("a text file".into())
        );
        assert_eq!(
            kind_of_bytes(b""),
            FileKind::Other("the file is empty".into())
        );
        assert_eq!(
            kind_of_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":1}"),
            FileKind::Safetensors
        );
    }
}
