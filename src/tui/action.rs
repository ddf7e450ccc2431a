//! What the user can ask for: defined in [`crate::config::action`], whose `[keys]` table binds
//! actions by name.
pub use crate::config::action::Action;
