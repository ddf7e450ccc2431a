//! The one model cache: models loaded once per (task, plane) on one device, kept until
//! dropped. The engine keeps one for its device and one for CPU copies; `precompute` and
//! `predict`, which run no engine, keep their own.
use std::collections::hash_map::{Entry, HashMap};

use crate::data::{Plane, Task};

use super::loaded::{LoadError, LoadedModel};

/// Which model: one per task and plane, as MRNet trains them.
pub type ModelKey = (Task, Plane);

#[derive(Debug, Default)]
pub struct ModelCache {
    loaded: HashMap<ModelKey, LoadedModel>,
}

impl ModelCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The model for `key`, loaded with `load` the first time.
    pub fn get_or_load(
        &mut self,
        key: ModelKey,
        load: impl FnOnce(ModelKey) -> Result<LoadedModel, LoadError>,
    ) -> Result<&LoadedModel, LoadError> {
        match self.loaded.entry(key) {
            Entry::Occupied(found) => Ok(found.into_mut()),
            Entry::Vacant(slot) => Ok(slot.insert(load(key)?)),
        }
    }

    /// Takes the model out (while it is in use elsewhere); [`ModelCache::put`] brings it back.
    pub fn take(&mut self, key: ModelKey) -> Option<LoadedModel> {
        self.loaded.remove(&key)
    }

    pub fn put(&mut self, key: ModelKey, model: LoadedModel) {
        self.loaded.insert(key, model);
    }

    /// Drops one model (Some) or all (None).
    pub fn forget(&mut self, key: Option<ModelKey>) {
        match key {
            Some(key) => {
                self.loaded.remove(&key);
            }
            None => self.loaded.clear(),
        }
    }

    /// The cached keys, sorted.
    pub fn keys(&self) -> Vec<ModelKey> {
        let mut keys: Vec<ModelKey> = self.loaded.keys().copied().collect();
        keys.sort();
        keys
    }

    pub fn is_empty(&self) -> bool {
        self.loaded.is_empty()
    }
}
