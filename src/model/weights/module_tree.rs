//! The (name, tensor) entries a pickle's value holds: a state dict, a checkpoint dict around
//! one, or a whole pickled `nn.Module` read as data (its `_parameters`, `_buffers` and
//! `_modules`, with dotted names, as `state_dict()` would give them).
use super::pickled::{TensorRef, Value};

/// Names under which training scripts commonly nest the state dict in a checkpoint.
const CHECKPOINT_KEYS: [&str; 4] = ["state_dict", "model_state_dict", "model", "net"];
/// The attributes every `nn.Module`'s `__dict__` has.
const MODULE_ATTRIBUTES: [&str; 3] = ["_parameters", "_buffers", "_modules"];
/// Submodules nested deeper than this are refused (real networks nest a few levels).
const MAX_MODULE_DEPTH: usize = 64;

/// What the pickle held around its tensors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holds {
    /// A dict of tensors (or a checkpoint dict holding one).
    StateDict,
    /// A whole pickled module (`torch.save(model)`), of this class, read as data.
    Module { class: String },
}

/// Whether `state` (what BUILD gives an object) is an `nn.Module`'s `__dict__`.
pub(super) fn is_module_state(state: &Value) -> bool {
    MODULE_ATTRIBUTES.iter().all(|key| state.get(key).is_some())
}

pub type Entries = Vec<(String, TensorRef)>;

/// The (name, tensor) pairs of `value`, and what held them.
pub fn state_dict_entries(value: Value) -> Result<(Entries, Holds), String> {
    match value {
        Value::Object { class, state } if is_module_state(&state) => {
            let mut entries = Vec::new();
            module_entries(&state, "", 0, &mut entries)?;
            Ok((entries, Holds::Module { class }))
        }
        Value::Dict(items) => dict_entries(items),
        other => Err(format!(
            "holds {}, expected a dict of tensors or a pickled nn.Module",
            other.describe()
        )),
    }
}

fn dict_entries(items: Vec<(Value, Value)>) -> Result<(Entries, Holds), String> {
    let all_tensors = items.iter().all(|(_, v)| matches!(v, Value::Tensor(_)));
    if all_tensors {
        let entries = items
            .into_iter()
            .map(|(k, v)| match (k, v) {
                (Value::Str(k), Value::Tensor(t)) => Ok((k, t)),
                (k, _) => Err(format!("a key is {}, expected a string", k.describe())),
            })
            .collect::<Result<_, _>>()?;
        return Ok((entries, Holds::StateDict));
    }
    let keys: Vec<String> = items
        .iter()
        .map(|(k, v)| match k {
            Value::Str(k) => format!("{k} ({})", v.describe()),
            other => other.describe(),
        })
        .collect();
    let nested = items.into_iter().find_map(|(k, v)| match (k, v) {
        (Value::Str(k), v @ (Value::Dict(_) | Value::Object { .. }))
            if CHECKPOINT_KEYS.contains(&k.as_str()) =>
        {
            Some(v)
        }
        _ => None,
    });
    match nested {
        Some(inner) => state_dict_entries(inner),
        None => Err(format!(
            "holds a dict of {}, expected only tensors (or a checkpoint with a state_dict)",
            shorten(&keys)
        )),
    }
}

fn shorten(keys: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut text = keys
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > SHOWN {
        text.push_str(&format!(" and {} more", keys.len() - SHOWN));
    }
    text
}

/// A module's parameters and persistent buffers under `prefix`, then its submodules'.
fn module_entries(
    state: &Value,
    prefix: &str,
    depth: usize,
    entries: &mut Entries,
) -> Result<(), String> {
    if depth > MAX_MODULE_DEPTH {
        return Err(format!(
            "modules nested more than {MAX_MODULE_DEPTH} deep at {prefix}"
        ));
    }
    let non_persistent = non_persistent_buffers(state);
    for attribute in ["_parameters", "_buffers"] {
        for (name, value) in named(state, attribute, prefix)? {
            if attribute == "_buffers" && non_persistent.contains(&name) {
                continue;
            }
            match value {
                Value::Tensor(t) => entries.push((format!("{prefix}{name}"), t.clone())),
                Value::None => {}
                other => {
                    return Err(format!(
                        "{prefix}{attribute}[{name}] is {}, expected a tensor",
                        other.describe()
                    ))
                }
            }
        }
    }
    for (name, value) in named(state, "_modules", prefix)? {
        match value {
            Value::Object { state, .. } if is_module_state(state) => {
                module_entries(state, &format!("{prefix}{name}."), depth + 1, entries)?
            }
            Value::None => {}
            other => {
                return Err(format!(
                    "submodule {prefix}{name} is {} without an nn.Module's state",
                    other.describe()
                ))
            }
        }
    }
    Ok(())
}

/// The (name, value) items of the dict attribute `attribute` of a module's state.
fn named<'a>(
    state: &'a Value,
    attribute: &str,
    prefix: &str,
) -> Result<Vec<(String, &'a Value)>, String> {
    match state.get(attribute) {
        Some(Value::Dict(items)) => items
            .iter()
            .map(|(k, v)| match k {
                Value::Str(k) => Ok((k.clone(), v)),
                other => Err(format!(
                    "{prefix}{attribute} has a key that is {}",
                    other.describe()
                )),
            })
            .collect(),
        Some(other) => Err(format!(
            "{prefix}{attribute} is {}, expected a dict",
            other.describe()
        )),
        None => Ok(Vec::new()),
    }
}

fn non_persistent_buffers(state: &Value) -> Vec<String> {
    match state.get("_non_persistent_buffers_set") {
        Some(Value::List(names)) => names
            .iter()
            .filter_map(|n| match n {
                Value::Str(n) => Some(n.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}
