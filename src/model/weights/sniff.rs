//! What a file holds, judged from its bytes without running anything.
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::legacy::{is_legacy_magic, parse_legacy, LegacyError};
use super::module_tree::{state_dict_entries, Holds};
use super::opcodes::Reader;
use super::torch_zip::{open_torch_zip, ZipVerdict};
use super::unpickler::{self, UnpickleError};
use super::WeightsError;

/// What a file holds, judged from its bytes (never from its name) without running anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    /// A `.safetensors` file (8-byte header length, then a JSON header).
    Safetensors,
    /// A PyTorch file whose pickle reads as data: a state dict or a whole module.
    Torch { format: TorchFormat, holds: Holds },
    /// A PyTorch file whose pickle would call `global`, which kneecam does not allow.
    Refused { global: String, how: &'static str },
    /// A TorchScript archive (`torch.jit.save`): has `code/` or `constants.pkl`.
    TorchScript,
    /// Anything else, described for people: "a NumPy .npy array", "a text file", …
    Other(String),
}

/// How `torch.save` laid the file out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TorchFormat {
    /// The zip archive of PyTorch ≥ 1.6 (`data.pkl` and `data/N` records).
    Zip,
    /// The legacy format of PyTorch 0.4–1.5: pickles and raw storages in one stream.
    Legacy,
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileKind::Safetensors => write!(f, "a safetensors file"),
            FileKind::Torch { format, holds } => {
                match holds {
                    Holds::StateDict => write!(f, "a PyTorch state dict")?,
                    Holds::Module { class } => write!(f, "a whole pickled module ({class})")?,
                }
                match format {
                    TorchFormat::Zip => Ok(()),
                    TorchFormat::Legacy => write!(f, " in the legacy (pre-1.6) format"),
                }
            }
            FileKind::Refused { global, .. } => {
                write!(f, "a PyTorch pickle that would call {global}")
            }
            FileKind::TorchScript => write!(f, "a TorchScript module"),
            FileKind::Other(what) => write!(f, "{what}"),
        }
    }
}

/// Says what `path` holds from its bytes, reading at most its zip directory and `data.pkl`
/// (a legacy file, whose storages follow its pickles, is read whole).
pub fn inspect(path: &Path) -> Result<FileKind, WeightsError> {
    let io = |error| WeightsError::Io {
        path: path.to_path_buf(),
        error,
    };
    let (file, head) = read_head(path)?;
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return inspect_zip(path, file);
    }
    if is_legacy_magic(&mut Reader::new(&head)) {
        let bytes = std::fs::read(path).map_err(io)?;
        return Ok(match parse_legacy(&bytes) {
            Ok(legacy) => FileKind::Torch {
                format: TorchFormat::Legacy,
                holds: legacy.holds,
            },
            Err(LegacyError::Pickle(UnpickleError::Call { global, how })) => {
                FileKind::Refused { global, how }
            }
            Err(LegacyError::Pickle(UnpickleError::Malformed(why)) | LegacyError::Layout(why)) => {
                FileKind::Other(format!("a PyTorch legacy file that is unreadable: {why}"))
            }
        });
    }
    Ok(kind_of_bytes(&head))
}

/// The file opened, and its first 512 bytes (the file positioned after them).
fn read_head(path: &Path) -> Result<(File, Vec<u8>), WeightsError> {
    let io = |error| WeightsError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut head = Vec::with_capacity(512);
    (&mut file).take(512).read_to_end(&mut head).map_err(io)?;
    Ok((file, head))
}

/// Whether `path` starts with the legacy format's magic number (its first 512 bytes read).
pub(super) fn is_legacy(path: &Path) -> Result<bool, WeightsError> {
    let (_, head) = read_head(path)?;
    Ok(is_legacy_magic(&mut Reader::new(&head)))
}

fn kind_of_bytes(head: &[u8]) -> FileKind {
    if head.len() >= 10 && head[8] == b'{' {
        return FileKind::Safetensors;
    }
    let what = if head.is_empty() {
        "the file is empty".to_string()
    } else if head.starts_with(b"\x93NUMPY") {
        "a NumPy .npy array".into()
    } else if head.first() == Some(&0x80) {
        "a bare Python pickle".into()
    } else if head.get(257..262) == Some(b"ustar".as_slice()) {
        "a tar archive (PyTorch's format before 0.1.10 is not read)".into()
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
    Ok(match unpickler::run(&zip.pickle) {
        Err(UnpickleError::Call { global, how }) => FileKind::Refused { global, how },
        Err(UnpickleError::Malformed(why)) => {
            FileKind::Other(format!("a zip archive with an unreadable data.pkl: {why}"))
        }
        Ok(value) => match state_dict_entries(value) {
            Ok((_, holds)) => FileKind::Torch {
                format: TorchFormat::Zip,
                holds,
            },
            Err(why) => FileKind::Other(format!("a PyTorch file that {why}")),
        },
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
