//! Tensors rebuilt from the raw bytes of the storages a pickle refers to.
use std::collections::BTreeMap;

use tch::Tensor;

use super::module_tree::Entries;
use super::pickled::{StorageRef, Value};

/// The views' values may add up to at most this many times the storages' (a tied weight is
/// two views of one storage).
const MAX_VIEW_FACTOR: i64 = 8;

/// Each (name, view) of `entries` as a contiguous tensor on the CPU. `fetch(storage, bytes)`
/// gives a storage's raw little-endian bytes, read no further than `bytes`; each storage is
/// fetched once however many views share it.
pub(super) fn build_tensors(
    entries: Entries,
    mut fetch: impl FnMut(&StorageRef, u64) -> Result<Vec<u8>, String>,
) -> Result<Vec<(String, Tensor)>, String> {
    let mut storages: BTreeMap<String, Tensor> = BTreeMap::new();
    let mut tensors = Vec::with_capacity(entries.len());
    let mut view_values: i64 = 0;
    let mut storage_values: i64 = 0;
    for (name, t) in entries {
        // Each view becomes a copy: bounded by what the file's storages hold, so that a small
        // file cannot ask for huge copies (a stride-0 view, one storage viewed many times).
        let values = t.numel().unwrap_or(i64::MAX);
        if values > t.storage.numel {
            return Err(format!(
                "{name}: a view of {values} values of a storage of {} (saved expanded?)",
                t.storage.numel
            ));
        }
        view_values = view_values.saturating_add(values);
        if !storages.contains_key(&t.storage.key) {
            storage_values = storage_values.saturating_add(t.storage.numel);
        }
        if view_values > MAX_VIEW_FACTOR.saturating_mul(storage_values) + (1 << 20) {
            return Err(format!(
                "{name}: its tensors copy {view_values} values out of storages of \
                 {storage_values}: too many views of the same values"
            ));
        }
        if !t.fits() {
            return Err(format!(
                "{name}: shape {:?}, stride {:?} and offset {} reach past its storage of {} values",
                t.size, t.stride, t.offset, t.storage.numel
            ));
        }
        let base = match storages.get(&t.storage.key) {
            Some(base) => base.shallow_clone(),
            None => {
                let want = storage_bytes(&t.storage)
                    .ok_or_else(|| format!("{name}: absurd storage size"))?;
                let bytes = fetch(&t.storage, want).map_err(|e| format!("{name}: {e}"))?;
                if bytes.len() as u64 != want {
                    return Err(format!(
                        "{name}: storage {} holds {} bytes, expected {want} ({} × {:?})",
                        t.storage.key,
                        bytes.len(),
                        t.storage.numel,
                        t.storage.kind
                    ));
                }
                let base = Tensor::f_from_data_size(&bytes, &[t.storage.numel], t.storage.kind)
                    .map_err(|e| format!("{name}: {e}"))?;
                storages.insert(t.storage.key.clone(), base.shallow_clone());
                base
            }
        };
        let tensor = base
            .f_as_strided(t.size.as_slice(), t.stride.as_slice(), t.offset)
            .and_then(|v| v.f_contiguous())
            .map_err(|e| format!("{name}: {e}"))?;
        tensors.push((name, tensor));
    }
    Ok(tensors)
}

/// Bytes of a storage: its values × their size; None when that overflows.
pub(super) fn storage_bytes(storage: &StorageRef) -> Option<u64> {
    let bytes_per = storage.kind.elt_size_in_bytes() as u64;
    u64::try_from(storage.numel).ok()?.checked_mul(bytes_per)
}

/// Every storage `value` refers to, by key (a legacy file lays out all of them, also those of
/// tensors outside the state dict, e.g. an optimizer's).
pub(super) fn storages_in(value: &Value, found: &mut BTreeMap<String, StorageRef>) {
    match value {
        Value::Storage(s) => {
            found.entry(s.key.clone()).or_insert_with(|| s.clone());
        }
        Value::Tensor(t) => {
            found
                .entry(t.storage.key.clone())
                .or_insert_with(|| t.storage.clone());
        }
        Value::Tuple(items) | Value::List(items) => {
            items.iter().for_each(|v| storages_in(v, found));
        }
        Value::Dict(pairs) => pairs.iter().for_each(|(k, v)| {
            storages_in(k, found);
            storages_in(v, found);
        }),
        Value::Object { state, .. } => storages_in(state, found),
        _ => {}
    }
}
