//! Keys to actions: defined in [`crate::config::keys`], built from the config's `[keys]` table.
pub use crate::config::keys::{KeyCombo, KeyMap, KeyMapError};
