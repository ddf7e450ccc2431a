//! What a state dict's pickle may build: plain values, storages and tensor views, from the
//! few globals a state dict uses; and the (name, tensor) entries of the dict it leaves.
use tch::Kind;

/// The globals a plain state dict refers to; the restricted unpickler knows exactly these.
pub(super) fn is_state_dict_global(global: &str) -> bool {
    matches!(
        global,
        "collections.OrderedDict"
            | "torch._utils._rebuild_tensor_v2"
            | "torch._utils._rebuild_parameter"
            | "torch._utils._rebuild_parameter_with_state"
    ) || storage_kind(global).is_some()
}

/// The dtype of a `torch.*Storage` class name.
pub fn storage_kind(global: &str) -> Option<Kind> {
    Some(match global.strip_prefix("torch.")? {
        "FloatStorage" => Kind::Float,
        "DoubleStorage" => Kind::Double,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        _ => return None,
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    pub kind: Kind,
    pub key: String,
    pub numel: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

impl TensorRef {
    /// Whether every element the view addresses lies inside its storage.
    pub fn fits(&self) -> bool {
        if self.size.len() != self.stride.len()
            || self.offset < 0
            || self.size.iter().chain(&self.stride).any(|&v| v < 0)
        {
            return false;
        }
        if self.size.contains(&0) {
            return self.offset <= self.storage.numel;
        }
        let last = self
            .size
            .iter()
            .zip(&self.stride)
            .try_fold(self.offset, |acc, (&n, &s)| {
                (n - 1).checked_mul(s).and_then(|d| acc.checked_add(d))
            });
        last.is_some_and(|last| last < self.storage.numel)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Mark,
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes,
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String),
    Storage(StorageRef),
    Tensor(TensorRef),
}

impl Value {
    pub(super) fn describe(&self) -> &'static str {
        match self {
            Value::Mark => "a mark",
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Bytes => "bytes",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Global(_) => "a global",
            Value::Storage(_) => "a storage",
            Value::Tensor(_) => "a tensor",
        }
    }

    /// Nodes in this value, counted only up to `limit`.
    pub(super) fn nodes(&self, limit: usize) -> usize {
        let children: &[Value] = match self {
            Value::Tuple(v) | Value::List(v) => v,
            Value::Dict(pairs) => {
                let mut n = 1;
                for (k, v) in pairs {
                    if n >= limit {
                        break;
                    }
                    n += k.nodes(limit - n);
                    n += v.nodes(limit.saturating_sub(n));
                }
                return n;
            }
            _ => return 1,
        };
        let mut n = 1;
        for child in children {
            if n >= limit {
                break;
            }
            n += child.nodes(limit - n);
        }
        n
    }
}

/// Names under which training scripts commonly nest the state dict in a checkpoint.
const CHECKPOINT_KEYS: [&str; 4] = ["state_dict", "model_state_dict", "model", "net"];

/// The (name, tensor) pairs of a state dict: a dict of string → tensor, or a checkpoint dict
/// holding one under `state_dict`, `model_state_dict`, `model` or `net`.
pub fn state_dict_entries(value: Value) -> Result<Vec<(String, TensorRef)>, String> {
    let Value::Dict(items) = value else {
        return Err(format!(
            "holds {}, expected a dict of tensors",
            value.describe()
        ));
    };
    let all_tensors = items.iter().all(|(_, v)| matches!(v, Value::Tensor(_)));
    if !all_tensors {
        let keys: Vec<String> = items
            .iter()
            .map(|(k, v)| match k {
                Value::Str(k) => format!("{k} ({})", v.describe()),
                other => other.describe().to_string(),
            })
            .collect();
        let nested = items.into_iter().find_map(|(k, v)| match (k, v) {
            (Value::Str(k), v @ Value::Dict(_)) if CHECKPOINT_KEYS.contains(&k.as_str()) => Some(v),
            _ => None,
        });
        return match nested {
            Some(inner) => state_dict_entries(inner),
            None => Err(format!(
                "holds a dict of {}, expected only tensors (or a checkpoint with a \
                 state_dict)",
                keys.join(", ")
            )),
        };
    }
    items
        .into_iter()
        .map(|(k, v)| match (k, v) {
            (Value::Str(k), Value::Tensor(t)) => Ok((k, t)),
            (k, _) => Err(format!("a key is {}, expected a string", k.describe())),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_dict_globals_are_told_from_others() {
        assert!(is_state_dict_global("torch.FloatStorage"));
        assert!(is_state_dict_global("torch.BFloat16Storage"));
        assert!(is_state_dict_global("collections.OrderedDict"));
        assert!(!is_state_dict_global("torch.nn.modules.conv.Conv2d"));
        assert!(!is_state_dict_global("__main__.MRNet"));
        assert!(!is_state_dict_global("builtins.eval"));
        assert!(!is_state_dict_global("torch.Storage.x"));
    }
}
