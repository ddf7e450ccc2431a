//! PyTorch's legacy (pre-1.6) file format, `torch.save(…, _use_new_zipfile_serialization=False)`
//! and every file PyTorch 0.4–1.5 wrote: five pickles in a row (the magic number, the protocol
//! version 1001, a dict of system facts, the object, the sorted list of storage keys), then each
//! storage in that order as an 8-byte little-endian count of values and the raw bytes.
//! The object is read by the same restricted unpickler as a zip archive's `data.pkl`.
use std::collections::BTreeMap;

use tch::Tensor;

use super::module_tree::{state_dict_entries, Entries, Holds};
use super::opcodes::Reader;
use super::pickled::{StorageRef, Value};
use super::storages::{build_tensors, storage_bytes, storages_in};
use super::unpickler::{run_from, UnpickleError};

/// The first pickle of every legacy file holds this number, 0x1950a86a20f9469cfc6c, as
/// little-endian bytes.
const MAGIC: [u8; 10] = *b"\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";
const PROTOCOL_VERSION: i64 = 1001;

/// Why a legacy file was not read: a call it would make, or what is wrong with it.
#[derive(Debug)]
pub(super) enum LegacyError {
    Pickle(UnpickleError),
    Layout(String),
}

impl From<UnpickleError> for LegacyError {
    fn from(e: UnpickleError) -> Self {
        LegacyError::Pickle(e)
    }
}

impl From<String> for LegacyError {
    fn from(e: String) -> Self {
        LegacyError::Layout(e)
    }
}

/// Whether the pickle at `reader` is the legacy format's magic number (reading past it).
pub(super) fn is_legacy_magic(reader: &mut Reader<'_>) -> bool {
    matches!(run_from(reader), Ok(Value::BigInt(bytes)) if bytes == MAGIC)
}

/// A legacy file's object read as data: its tensors' views, what held them, and where each
/// storage's bytes start.
pub(super) struct Legacy {
    pub(super) entries: Entries,
    pub(super) holds: Holds,
    offsets: BTreeMap<String, usize>,
}

/// Reads the pickles of a legacy file held in `bytes` and finds its storages.
pub(super) fn parse_legacy(bytes: &[u8]) -> Result<Legacy, LegacyError> {
    let mut reader = Reader::new(bytes);
    if !is_legacy_magic(&mut reader) {
        return Err("no legacy magic number".to_string().into());
    }
    match run_from(&mut reader)? {
        Value::Int(PROTOCOL_VERSION) => {}
        other => {
            return Err(format!(
                "protocol version is {}, expected {PROTOCOL_VERSION}",
                other.describe()
            )
            .into())
        }
    }
    let facts = run_from(&mut reader)?;
    if matches!(facts.get("little_endian"), Some(Value::Bool(false))) {
        return Err("written big-endian; only little-endian files are read"
            .to_string()
            .into());
    }
    let object = run_from(&mut reader)?;
    let keys = match run_from(&mut reader)? {
        Value::List(keys) => keys,
        other => return Err(format!("storage keys are {}", other.describe()).into()),
    };
    let mut storages = BTreeMap::new();
    storages_in(&object, &mut storages);
    let at = reader.position();
    let offsets = storage_offsets(bytes, at, &keys, &storages)?;
    let (entries, holds) = state_dict_entries(object)?;
    Ok(Legacy {
        entries,
        holds,
        offsets,
    })
}

/// The tensors of a parsed legacy file held in `bytes`.
/// Only the tensors whose names `keep` keeps are read.
pub(super) fn legacy_tensors(
    legacy: Legacy,
    bytes: &[u8],
    keep: fn(&str) -> bool,
) -> Result<Vec<(String, Tensor)>, String> {
    let offsets = legacy.offsets;
    let mut entries = legacy.entries;
    entries.retain(|(name, _)| keep(name));
    build_tensors(entries, |storage, want| {
        let start = *offsets
            .get(&storage.key)
            .ok_or_else(|| format!("storage {} is not in the file", storage.key))?;
        let end = start.saturating_add(want as usize).min(bytes.len());
        Ok(bytes[start..end].to_vec())
    })
}

/// Where each storage's bytes start, walking the records after the pickles from `at`.
fn storage_offsets(
    bytes: &[u8],
    mut at: usize,
    keys: &[Value],
    storages: &BTreeMap<String, StorageRef>,
) -> Result<BTreeMap<String, usize>, String> {
    let mut offsets = BTreeMap::new();
    for key in keys {
        let Value::Str(key) = key else {
            return Err(format!("a storage key is {}", key.describe()));
        };
        let storage = storages
            .get(key)
            .ok_or_else(|| format!("storage {key} is listed but nothing refers to it"))?;
        let count = bytes
            .get(at..at + 8)
            .ok_or_else(|| format!("storage {key}: the file ends at byte {}", bytes.len()))?;
        let count = i64::from_le_bytes(count.try_into().unwrap_or_default());
        if count != storage.numel {
            return Err(format!(
                "storage {key} holds {count} values, its tensors say {}",
                storage.numel
            ));
        }
        let size = storage_bytes(storage)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| format!("storage {key}: absurd size"))?;
        let start = at + 8;
        at = start
            .checked_add(size)
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| {
                format!(
                    "storage {key}: {size} bytes needed, the file ends at byte {}",
                    bytes.len()
                )
            })?;
        offsets.insert(key.clone(), start);
    }
    Ok(offsets)
}
