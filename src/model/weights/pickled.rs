//! What a PyTorch pickle may build when kneecam reads it as data: plain values, storages,
//! tensor views and objects recorded by class name; and the globals it may call to get there.
use tch::Kind;

/// What calling an allowed global does to its arguments. Every other global a pickle would
/// call refuses the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Call {
    /// `collections.OrderedDict()`: an empty dict (its items follow as SETITEMS).
    OrderedDict,
    /// `builtins.set(items)`, `builtins.frozenset(items)`: a list of the items.
    Set,
    /// `torch.Size(dims)`: a tuple of the dims.
    Size,
    /// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, …)` and PyTorch 0.3's
    /// `_rebuild_tensor(storage, offset, size, stride)`: a view of a storage.
    RebuildTensor,
    /// `torch._utils._rebuild_parameter(tensor, requires_grad, hooks)` (`…_with_state` too):
    /// the tensor.
    RebuildParameter,
    /// `copyreg._reconstructor(cls, object, None)`: protocol 0/1's object creation, recorded
    /// as an object of `cls` exactly as NEWOBJ is.
    Reconstructor,
}

/// The globals a pickle may call, and what kneecam makes of each call.
pub(super) fn allowed_call(global: &str) -> Option<Call> {
    Some(match global {
        "collections.OrderedDict" => Call::OrderedDict,
        "builtins.set" | "builtins.frozenset" | "__builtin__.set" | "__builtin__.frozenset" => {
            Call::Set
        }
        "torch.Size" => Call::Size,
        "torch._utils._rebuild_tensor_v2" | "torch._utils._rebuild_tensor" => Call::RebuildTensor,
        "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state" => {
            Call::RebuildParameter
        }
        "copyreg._reconstructor" | "copy_reg._reconstructor" => Call::Reconstructor,
        _ => return None,
    })
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
    /// Values the view holds; None when a size is negative or the product overflows.
    pub fn numel(&self) -> Option<i64> {
        self.size.iter().try_fold(
            1i64,
            |acc, &n| {
                if n < 0 {
                    None
                } else {
                    acc.checked_mul(n)
                }
            },
        )
    }

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
    /// An integer wider than 64 bits, as its little-endian two's-complement bytes.
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes,
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// A reference to a class or function by name (pushed, never imported or called).
    Global(String),
    Storage(StorageRef),
    Tensor(TensorRef),
    /// An object made from a class reference (NEWOBJ, `copyreg._reconstructor`), recorded by
    /// the class's name; `state` is what BUILD attached (None until then).
    Object {
        class: String,
        state: Box<Value>,
    },
}

impl Value {
    pub(super) fn describe(&self) -> String {
        match self {
            Value::Mark => "a mark",
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) | Value::BigInt(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Bytes => "bytes",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Global(_) => "a global",
            Value::Storage(_) => "a storage",
            Value::Tensor(_) => "a tensor",
            Value::Object { class, .. } => return format!("an object of {class}"),
        }
        .to_string()
    }

    /// The value under string key `key` of a dict.
    pub(super) fn get(&self, key: &str) -> Option<&Value> {
        let Value::Dict(items) = self else {
            return None;
        };
        items.iter().rev().find_map(|(k, v)| match k {
            Value::Str(k) if k == key => Some(v),
            _ => None,
        })
    }

    /// Bytes this value holds (its nodes, strings and vectors), counted only up to `limit`.
    pub(super) fn cost(&self, limit: usize) -> usize {
        let node = std::mem::size_of::<Value>();
        let mut n = node
            + match self {
                Value::Str(s) | Value::Global(s) => s.len(),
                Value::BigInt(b) => b.len(),
                Value::Storage(s) => s.key.len(),
                Value::Tensor(t) => t.storage.key.len() + 8 * (t.size.len() + t.stride.len()),
                Value::Object { class, .. } => class.len(),
                _ => 0,
            };
        let add = |child: &Value, n: &mut usize| {
            if *n < limit {
                *n += child.cost(limit - *n);
            }
        };
        match self {
            Value::Tuple(items) | Value::List(items) => {
                for child in items {
                    add(child, &mut n);
                }
            }
            Value::Dict(pairs) => {
                for (k, v) in pairs {
                    add(k, &mut n);
                    add(v, &mut n);
                }
            }
            Value::Object { state, .. } => add(state, &mut n),
            _ => {}
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pytorchs_rebuild_functions_and_containers_may_be_called() {
        assert_eq!(
            allowed_call("collections.OrderedDict"),
            Some(Call::OrderedDict)
        );
        assert_eq!(
            allowed_call("torch._utils._rebuild_tensor_v2"),
            Some(Call::RebuildTensor)
        );
        for refused in [
            "os.system",
            "builtins.eval",
            "builtins.exec",
            "subprocess.Popen",
            "torch.nn.modules.conv.Conv2d",
            "model.MRNet",
            "torch.load",
            "numpy.core.multiarray.scalar",
        ] {
            assert_eq!(allowed_call(refused), None, "{refused}");
        }
        assert_eq!(storage_kind("torch.BFloat16Storage"), Some(Kind::BFloat16));
        assert_eq!(storage_kind("torch.Storage.x"), None);
    }
}
