//! PyTorch's zip archive: its `data.pkl`, its byte order and raw storage records.
use std::fs::File;
use std::io::{Read, Seek};
use std::path::Path;

use tch::Tensor;

use super::module_tree::{state_dict_entries, Holds};
use super::storages::build_tensors;
use super::unpickler::{self, UnpickleError};
use super::{FileKind, WeightsError};
use crate::fsutil;

/// A state dict's `data.pkl` is a few kilobytes; refuse to read absurd ones into memory.
const MAX_PICKLE_BYTES: u64 = 64 << 20;

/// A PyTorch zip archive opened far enough to judge it: the folder its records live in and
/// the bytes of its `data.pkl`, or why it is not a PyTorch state dict or module.
pub(super) struct TorchZip<R> {
    pub(super) archive: zip::ZipArchive<R>,
    pub(super) prefix: String,
    pub(super) pickle: Vec<u8>,
}

pub(super) enum ZipVerdict<R> {
    Torch(TorchZip<R>),
    Kind(FileKind),
}

pub(super) fn open_torch_zip<R: Read + Seek>(
    path: &Path,
    file: R,
) -> Result<ZipVerdict<R>, WeightsError> {
    let not_torch = |why: String| {
        Ok(ZipVerdict::Kind(FileKind::Other(format!(
            "a zip archive that is not a PyTorch file: {why}"
        ))))
    };
    let mut archive = match zip::ZipArchive::new(file) {
        Ok(archive) => archive,
        Err(e) => return not_torch(e.to_string()),
    };
    let names: Vec<String> = archive.file_names().map(str::to_string).collect();
    let is_record = |name: &str, record: &str| {
        name.split_once('/')
            .is_some_and(|(_, rest)| rest == record || rest.starts_with(&format!("{record}/")))
    };
    if names
        .iter()
        .any(|n| is_record(n, "code") || is_record(n, "constants.pkl"))
    {
        return Ok(ZipVerdict::Kind(FileKind::TorchScript));
    }
    // Exactly `{folder}/data.pkl`; the zip's names come in no fixed order, so two candidates
    // would make the answer depend on which is found first.
    let pickles: Vec<&String> = names
        .iter()
        .filter(|n| {
            n.split_once('/')
                .is_some_and(|(_, rest)| rest == "data.pkl")
        })
        .collect();
    let pkl = match pickles.as_slice() {
        [] => return not_torch("no */data.pkl inside".into()),
        [one] => (*one).clone(),
        [a, b, ..] => return not_torch(format!("two pickles inside, {a} and {b}")),
    };
    let pkl = &pkl;
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    let mut entry = match archive.by_name(pkl) {
        Ok(entry) => entry,
        Err(e) => return not_torch(format!("{pkl}: {e}")),
    };
    if entry.size() > MAX_PICKLE_BYTES {
        return not_torch(format!("{pkl} is {} bytes", entry.size()));
    }
    let pickle = match fsutil::read_bounded(&mut entry, MAX_PICKLE_BYTES, "a state dict's data.pkl")
    {
        Ok(pickle) => pickle,
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return not_torch(format!("{pkl}: {e}"))
        }
        Err(error) => {
            return Err(WeightsError::Io {
                path: path.to_path_buf(),
                error,
            })
        }
    };
    drop(entry);
    Ok(ZipVerdict::Torch(TorchZip {
        archive,
        prefix,
        pickle,
    }))
}

/// The tensors of a PyTorch zip archive (a state dict or a whole module), rebuilt on the CPU
/// from `data.pkl` read as data by kneecam's own unpickler, and what held them. (libtorch's
/// `_load_parameters`, behind tch's `Tensor::loadz_multi` and `VarStore::load`, fails on the
/// `OrderedDict` every `state_dict()` is.)
/// Only the tensors whose names `keep` keeps are read.
pub(super) fn read_torch_zip(
    path: &Path,
    keep: fn(&str) -> bool,
) -> Result<(Vec<(String, Tensor)>, Holds), WeightsError> {
    let file = File::open(path).map_err(|error| WeightsError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    read_archive(path, file, keep)
}

/// [`read_torch_zip`] on an archive already open (`path` names it in errors).
pub(super) fn read_archive<R: Read + Seek>(
    path: &Path,
    file: R,
    keep: fn(&str) -> bool,
) -> Result<(Vec<(String, Tensor)>, Holds), WeightsError> {
    let fail = |message: String| WeightsError::Unreadable {
        path: path.to_path_buf(),
        message,
    };
    let mut zip = match open_torch_zip(path, file)? {
        ZipVerdict::Torch(zip) => zip,
        ZipVerdict::Kind(kind) => return Err(fail(format!("it is {kind}"))),
    };
    let byteorder = read_record(&mut zip, "byteorder", 16).unwrap_or_else(|_| b"little".to_vec());
    if byteorder.trim_ascii() != b"little" {
        return Err(fail(format!(
            "tensors stored {} endian; only little-endian files are read",
            String::from_utf8_lossy(&byteorder).trim()
        )));
    }
    let value = unpickler::run(&zip.pickle).map_err(|e| refusal(path, e))?;
    let (mut entries, holds) = state_dict_entries(value).map_err(fail)?;
    entries.retain(|(name, _)| keep(name));
    let tensors = build_tensors(entries, |storage, want| {
        read_record(&mut zip, &format!("data/{}", storage.key), want)
    })
    .map_err(fail)?;
    Ok((tensors, holds))
}

/// The names of the tensors in a PyTorch zip archive, read from its `data.pkl` alone.
pub(super) fn archive_names(path: &Path) -> Result<Vec<String>, WeightsError> {
    let file = File::open(path).map_err(|error| WeightsError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let zip = match open_torch_zip(path, file)? {
        ZipVerdict::Torch(zip) => zip,
        ZipVerdict::Kind(kind) => {
            return Err(WeightsError::Unreadable {
                path: path.to_path_buf(),
                message: format!("it is {kind}"),
            })
        }
    };
    let value = unpickler::run(&zip.pickle).map_err(|e| refusal(path, e))?;
    let (entries, _) = state_dict_entries(value).map_err(|message| WeightsError::Unreadable {
        path: path.to_path_buf(),
        message,
    })?;
    Ok(entries.into_iter().map(|(name, _)| name).collect())
}

/// An unpickler's error as the file's.
pub(super) fn refusal(path: &Path, error: UnpickleError) -> WeightsError {
    match error {
        UnpickleError::Call { global, how } => WeightsError::Refused {
            path: path.to_path_buf(),
            global,
            how,
        },
        UnpickleError::Malformed(why) => WeightsError::Unreadable {
            path: path.to_path_buf(),
            message: format!("data.pkl: {why}"),
        },
    }
}

/// Reads `{prefix}{record}` whole, refusing one larger than `limit` bytes.
fn read_record<R: Read + Seek>(
    zip: &mut TorchZip<R>,
    record: &str,
    limit: u64,
) -> Result<Vec<u8>, String> {
    let name = format!("{}{record}", zip.prefix);
    let entry = zip
        .archive
        .by_name(&name)
        .map_err(|e| format!("{name}: {e}"))?;
    fsutil::read_bounded(entry, limit, "this record").map_err(|e| format!("{name}: {e}"))
}
