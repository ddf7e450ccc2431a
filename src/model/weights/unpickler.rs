//! kneecam's pickle machine: it decodes every opcode of protocols 0–5 and reads the object
//! graph as data. Nothing is imported, called or executed:
//! - a global is pushed as its name;
//! - an object made from a class (NEWOBJ without arguments, `copyreg._reconstructor`) is
//!   recorded with the class's name; BUILD attaches its state as a plain dict, and only to an
//!   object whose state is an `nn.Module`'s;
//! - a call (REDUCE, NEWOBJ or NEWOBJ_EX with arguments, INST, OBJ, BUILD of any other
//!   object) is carried out only for the few PyTorch rebuild functions and containers of
//!   [`allowed_call`]; any other refuses the whole file, naming the global.
//!
//! Memo copies are bounded, and so is nesting, so a small pickle can neither expand into a huge
//! value nor nest deep enough to exhaust the stack.
use std::collections::BTreeMap;

use super::module_tree::is_module_state;
use super::opcodes::{Op, Reader};
use super::pickled::{allowed_call, storage_kind, Call, StorageRef, TensorRef, Value};

/// The bytes that memo copies may add up to: this much, plus [`COPY_BYTES_PER_BYTE`] times
/// the pickle's length, so a small pickle cannot expand into a huge value (a real one copies a
/// storage class's name or a `'cpu'` per tensor).
const COPY_BUDGET_FIXED: usize = 16 << 20;
const COPY_BYTES_PER_BYTE: usize = 32;
/// Values nested deeper than this are refused (a state dict nests 3 levels, a module ~20).
pub const MAX_DEPTH: u32 = 200;

/// Why a pickle was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnpickleError {
    /// Loading the file with PyTorch would call `global`, which kneecam does not allow.
    #[error("loading it would call {global} ({how})")]
    Call { global: String, how: &'static str },
    #[error("{0}")]
    Malformed(String),
}

impl From<String> for UnpickleError {
    fn from(message: String) -> Self {
        UnpickleError::Malformed(message)
    }
}

impl From<&str> for UnpickleError {
    fn from(message: &str) -> Self {
        UnpickleError::Malformed(message.to_string())
    }
}

type Result<T> = std::result::Result<T, UnpickleError>;

fn refuse<T>(global: &str, how: &'static str) -> Result<T> {
    Err(UnpickleError::Call {
        global: global.to_string(),
        how,
    })
}

/// A value on the stack or in the memo, with how deeply it nests.
#[derive(Debug, Clone)]
struct Slot {
    value: Value,
    depth: u32,
}

impl Slot {
    fn leaf(value: Value) -> Self {
        Slot { value, depth: 1 }
    }

    /// A copy, its bytes taken from `budget` first; refused when they are over it.
    fn clone_charged_by(&self, budget: &mut usize) -> Result<Slot> {
        let cost = self.value.cost(budget.saturating_add(1));
        if cost > *budget {
            return Err("too many copied values".into());
        }
        *budget -= cost;
        Ok(self.clone())
    }
}

struct Machine {
    stack: Vec<Slot>,
    memo: BTreeMap<u64, Slot>,
    budget: usize,
}

/// Runs the pickle at the start of `bytes`, returning the value it leaves.
pub fn run(bytes: &[u8]) -> Result<Value> {
    run_from(&mut Reader::new(bytes))
}

/// Runs the pickle starting at `reader`'s position, leaving the reader after its STOP (a
/// legacy file holds several pickles in a row).
pub fn run_from(reader: &mut Reader<'_>) -> Result<Value> {
    let mut machine = Machine {
        stack: Vec::new(),
        memo: BTreeMap::new(),
        budget: COPY_BUDGET_FIXED
            .saturating_add(COPY_BYTES_PER_BYTE.saturating_mul(reader.remaining())),
    };
    loop {
        if let Some(value) = machine.step(reader.op()?)? {
            return Ok(value);
        }
    }
}

impl Machine {
    fn pop(&mut self) -> Result<Slot> {
        match self.stack.pop() {
            Some(Slot {
                value: Value::Mark, ..
            })
            | None => Err("stack underflow".into()),
            Some(slot) => Ok(slot),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Slot>> {
        let at = self
            .stack
            .iter()
            .rposition(|s| matches!(s.value, Value::Mark))
            .ok_or("no mark on the stack")?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }

    fn top(&mut self) -> Result<&mut Slot> {
        match self.stack.last_mut() {
            Some(Slot {
                value: Value::Mark, ..
            })
            | None => Err("stack underflow".into()),
            Some(slot) => Ok(slot),
        }
    }

    fn push(&mut self, value: Value) {
        self.stack.push(Slot::leaf(value));
    }

    /// Pushes a container of `items`, one level deeper than the deepest of them.
    fn push_nested(&mut self, items: Vec<Slot>, make: fn(Vec<Value>) -> Value) -> Result<()> {
        let depth = nest(&items)?;
        self.stack.push(Slot {
            value: make(values(items)),
            depth,
        });
        Ok(())
    }

    /// Carries out one opcode; STOP gives the value left on the stack.
    fn step(&mut self, op: Op) -> Result<Option<Value>> {
        match op {
            Op::Stop => return self.pop().map(|s| Some(s.value)),
            Op::Proto | Op::Frame => {}
            Op::Mark => self.push(Value::Mark),
            Op::Pop => {
                self.stack.pop().ok_or("stack underflow")?;
            }
            Op::PopMark => {
                self.pop_mark()?;
            }
            Op::Dup => {
                let mut budget = self.budget;
                let copy = self.top()?.clone_charged_by(&mut budget)?;
                self.budget = budget;
                self.stack.push(copy);
            }
            Op::None => self.push(Value::None),
            Op::Bool(b) => self.push(Value::Bool(b)),
            Op::Int(i) => self.push(Value::Int(i)),
            Op::BigInt(bytes) => self.push(Value::BigInt(bytes)),
            Op::Float(x) => self.push(Value::Float(x)),
            Op::Str(s) => self.push(Value::Str(s)),
            Op::Bytes => self.push(Value::Bytes),
            Op::EmptyTuple => self.push(Value::Tuple(Vec::new())),
            Op::Tuple(n) => self.tuple(n)?,
            Op::TupleMark => {
                let items = self.pop_mark()?;
                self.push_nested(items, Value::Tuple)?;
            }
            Op::EmptyList | Op::EmptySet => self.push(Value::List(Vec::new())),
            Op::ListMark | Op::FrozenSet => {
                let items = self.pop_mark()?;
                self.push_nested(items, Value::List)?;
            }
            Op::Append => {
                let item = self.pop()?;
                self.extend(vec![item], "APPEND")?;
            }
            Op::Appends | Op::AddItems => {
                let items = self.pop_mark()?;
                self.extend(items, "APPENDS")?;
            }
            Op::EmptyDict => self.push(Value::Dict(Vec::new())),
            Op::DictMark => {
                let items = self.pop_mark()?;
                let depth = nest(&items)?;
                let pairs = pairs(values(items))?;
                self.stack.push(Slot {
                    value: Value::Dict(pairs),
                    depth,
                });
            }
            Op::SetItem => {
                let value = self.pop()?;
                let key = self.pop()?;
                self.set_items(vec![key, value])?;
            }
            Op::SetItems => {
                let items = self.pop_mark()?;
                self.set_items(items)?;
            }
            Op::Put(index) => self.memo_put(index)?,
            Op::Memoize => self.memo_put(self.memo.len() as u64)?,
            Op::Get(index) => self.memo_get(index)?,
            Op::Global(module, name) => self.push(Value::Global(format!("{module}.{name}"))),
            Op::StackGlobal => self.stack_global()?,
            Op::Reduce => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let depth = args.depth;
                let value = reduce(callable.value, args.value)?;
                self.stack.push(Slot { value, depth });
            }
            Op::NewObj => {
                let args = self.pop()?;
                let class = self.pop()?;
                self.push(new_object(class.value, args.value, None)?);
            }
            Op::NewObjEx => {
                let kwargs = self.pop()?;
                let args = self.pop()?;
                let class = self.pop()?;
                self.push(new_object(class.value, args.value, Some(kwargs.value))?);
            }
            Op::Build => self.build()?,
            Op::BinPersId => {
                let pid = self.pop()?;
                self.push(persistent_load(pid.value)?);
            }
            Op::Inst(module, name) => return refuse(&format!("{module}.{name}"), "INST"),
            Op::Obj => {
                let items = self.pop_mark()?;
                let class = match items.first().map(|s| &s.value) {
                    Some(Value::Global(name)) => name.clone(),
                    _ => "an object that is not a global".into(),
                };
                return refuse(&class, "OBJ");
            }
            Op::Ext(code) => return Err(format!("refusing extension code {code}").into()),
            Op::PersId => return Err("text persistent ids are not used by torch.save".into()),
            Op::NextBuffer | Op::ReadOnlyBuffer => {
                return Err("out-of-band buffers are not used by torch.save".into())
            }
        }
        Ok(None)
    }

    fn tuple(&mut self, n: usize) -> Result<()> {
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.pop()?);
        }
        items.reverse();
        self.push_nested(items, Value::Tuple)
    }

    fn extend(&mut self, items: Vec<Slot>, what: &str) -> Result<()> {
        let depth = nest(&items)?;
        let top = self.top()?;
        top.depth = top.depth.max(depth);
        match &mut top.value {
            Value::List(list) => list.extend(values(items)),
            other => return Err(format!("{what} to {}", other.describe()).into()),
        }
        Ok(())
    }

    fn set_items(&mut self, items: Vec<Slot>) -> Result<()> {
        let depth = nest(&items)?;
        let new = pairs(values(items))?;
        let top = self.top()?;
        top.depth = top.depth.max(depth);
        match &mut top.value {
            Value::Dict(items) => items.extend(new),
            other => return Err(format!("SETITEMS on {}", other.describe()).into()),
        }
        Ok(())
    }

    /// BUILD: a module's state attached to its object; a dict's or tensor's extra attributes
    /// (an `OrderedDict`'s `_metadata`) dropped; anything else would call `__setstate__`.
    fn build(&mut self) -> Result<()> {
        let state = self.pop()?;
        let top = self.top()?;
        match &mut top.value {
            Value::Object { class, state: slot } => {
                if !matches!(**slot, Value::None) {
                    return Err(format!("BUILD twice on {class}").into());
                }
                if !is_module_state(&state.value) {
                    return refuse(
                        class,
                        "BUILD: its __setstate__, on a state that is not a module's",
                    );
                }
                top.depth = top.depth.max(state.depth + 1);
                if top.depth > MAX_DEPTH {
                    return Err(too_deep());
                }
                **slot = state.value;
            }
            Value::Dict(_) | Value::Tensor(_) => {}
            other => return Err(format!("BUILD on {}", other.describe()).into()),
        }
        Ok(())
    }

    fn memo_put(&mut self, index: u64) -> Result<()> {
        let mut budget = self.budget;
        let top = self.top()?.clone_charged_by(&mut budget)?;
        self.budget = budget;
        self.memo.insert(index, top);
        Ok(())
    }

    fn memo_get(&mut self, index: u64) -> Result<()> {
        let slot = self
            .memo
            .get(&index)
            .ok_or_else(|| format!("memo {index} is empty"))?
            .clone_charged_by(&mut self.budget)?;
        self.stack.push(slot);
        Ok(())
    }

    fn stack_global(&mut self) -> Result<()> {
        let name = self.pop()?;
        let module = self.pop()?;
        match (module.value, name.value) {
            (Value::Str(module), Value::Str(name)) => {
                self.push(Value::Global(format!("{module}.{name}")));
                Ok(())
            }
            _ => Err("STACK_GLOBAL without two strings".into()),
        }
    }
}

fn too_deep() -> UnpickleError {
    UnpickleError::Malformed(format!("values nested more than {MAX_DEPTH} deep"))
}

/// The depth of a container of `items`.
fn nest(items: &[Slot]) -> Result<u32> {
    let depth = items.iter().map(|s| s.depth).max().unwrap_or(0) + 1;
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    Ok(depth)
}

fn values(items: Vec<Slot>) -> Vec<Value> {
    items.into_iter().map(|s| s.value).collect()
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>> {
    if !items.len().is_multiple_of(2) {
        return Err("odd number of dict items".into());
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

fn ints(value: &Value, what: &str) -> Result<Vec<i64>> {
    match value {
        Value::Tuple(items) | Value::List(items) => items
            .iter()
            .map(|v| match v {
                Value::Int(i) => Ok(*i),
                other => Err(format!("{what} holds {}", other.describe()).into()),
            })
            .collect(),
        other => Err(format!("{what} is {}", other.describe()).into()),
    }
}

/// NEWOBJ / NEWOBJ_EX: `cls.__new__(cls, *args, **kwargs)`. Without arguments that only
/// makes an empty object, recorded by name; with arguments it would run the class's code.
fn new_object(class: Value, args: Value, kwargs: Option<Value>) -> Result<Value> {
    let Value::Global(class) = class else {
        return Err(format!("NEWOBJ on {}", class.describe()).into());
    };
    let no_args = matches!(&args, Value::Tuple(a) if a.is_empty());
    let no_kwargs = kwargs.is_none_or(|k| matches!(&k, Value::Dict(d) if d.is_empty()));
    if !no_args || !no_kwargs {
        return refuse(&class, "NEWOBJ with arguments: its __new__");
    }
    Ok(Value::Object {
        class,
        state: Box::new(Value::None),
    })
}

fn reduce(callable: Value, args: Value) -> Result<Value> {
    let Value::Global(name) = callable else {
        return Err(format!("REDUCE on {}", callable.describe()).into());
    };
    let Some(call) = allowed_call(&name) else {
        return refuse(&name, "REDUCE");
    };
    let Value::Tuple(args) = args else {
        return Err(format!("{name} called with {}", args.describe()).into());
    };
    match call {
        Call::OrderedDict if args.is_empty() => Ok(Value::Dict(Vec::new())),
        Call::OrderedDict => Err(format!("{name} called with arguments").into()),
        Call::Set | Call::Size => match args.into_iter().next() {
            None if call == Call::Set => Ok(Value::List(Vec::new())),
            Some(Value::List(items) | Value::Tuple(items)) if call == Call::Set => {
                Ok(Value::List(items))
            }
            Some(Value::Tuple(items)) => Ok(Value::Tuple(items)),
            _ => Err(format!("{name} called without a sequence").into()),
        },
        Call::RebuildTensor => rebuild_tensor(&name, &args),
        Call::RebuildParameter => match args.into_iter().next() {
            Some(tensor @ Value::Tensor(_)) => Ok(tensor),
            _ => Err(format!("{name} without a tensor").into()),
        },
        Call::Reconstructor => match args.as_slice() {
            [Value::Global(class), Value::Global(base), Value::None]
                if base == "builtins.object" || base == "__builtin__.object" =>
            {
                Ok(Value::Object {
                    class: class.clone(),
                    state: Box::new(Value::None),
                })
            }
            [Value::Global(class), ..] => refuse(class, "copyreg._reconstructor with a base"),
            _ => Err(format!("{name} called with {} arguments", args.len()).into()),
        },
    }
}

fn rebuild_tensor(name: &str, args: &[Value]) -> Result<Value> {
    let [storage, offset, size, stride, ..] = args else {
        return Err(format!("{name} called with {} arguments", args.len()).into());
    };
    let Value::Storage(storage) = storage else {
        return Err(format!("{name}: storage is {}", storage.describe()).into());
    };
    let Value::Int(offset) = offset else {
        return Err(format!("{name}: offset is {}", offset.describe()).into());
    };
    let tensor = TensorRef {
        storage: storage.clone(),
        offset: *offset,
        size: ints(size, "size")?,
        stride: ints(stride, "stride")?,
    };
    if !tensor.fits() {
        return Err(format!(
            "{name}: shape {:?}, stride {:?} and offset {} reach past a storage of {} values",
            tensor.size, tensor.stride, tensor.offset, tensor.storage.numel
        )
        .into());
    }
    Ok(Value::Tensor(tensor))
}

/// `torch.save`'s persistent ids: `('storage', type, key, location, numel)` in a zip archive,
/// with a sixth item (`view_metadata`, None) in the legacy format, and the legacy format's
/// `('module', cls, source_file, source)` for a module's class.
fn persistent_load(pid: Value) -> Result<Value> {
    let Value::Tuple(items) = pid else {
        return Err(format!("persistent id is {}", pid.describe()).into());
    };
    match items.as_slice() {
        [Value::Str(tag), Value::Global(class), Value::Str(key), _location, Value::Int(numel), view @ ..]
            if tag == "storage" && view.len() <= 1 =>
        {
            if !matches!(view, [] | [Value::None]) {
                return Err("storage views (PyTorch before 0.4) are not read".into());
            }
            let kind = storage_kind(class).ok_or_else(|| format!("unsupported storage {class}"))?;
            if key.is_empty() || key.contains(['/', '\\']) || key.contains("..") || *numel < 0 {
                return Err(format!("bad storage key '{key}' or size {numel}").into());
            }
            Ok(Value::Storage(StorageRef {
                kind,
                key: key.clone(),
                numel: *numel,
            }))
        }
        [Value::Str(tag), class @ Value::Global(_), _, _] if tag == "module" => Ok(class.clone()),
        _ => Err("persistent id is not a ('storage', type, key, location, numel) tuple".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(global: &str, how: &'static str) -> Result<Value> {
        refuse(global, how)
    }

    #[test]
    fn calls_outside_the_allowed_few_refuse_the_file_naming_the_global() {
        let system = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.";
        assert_eq!(run(system), refused("os.system", "REDUCE"));
        let eval = b"\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R.";
        assert_eq!(run(eval), refused("builtins.eval", "REDUCE"));
        let inst = b"(S'ls'\nios\nsystem\n.";
        assert_eq!(run(inst), refused("os.system", "INST"));
        let newobj_args = b"\x80\x02csubprocess\nPopen\nX\x02\x00\x00\x00ls\x85\x81.";
        assert_eq!(
            run(newobj_args),
            refused("subprocess.Popen", "NEWOBJ with arguments: its __new__")
        );
        // NEWOBJ without arguments, then BUILD with a state that is no module's.
        let build = b"\x80\x02cargparse\nNamespace\n)\x81}X\x01\x00\x00\x00aK\x01sb.";
        assert_eq!(
            run(build),
            refused(
                "argparse.Namespace",
                "BUILD: its __setstate__, on a state that is not a module's"
            )
        );
    }

    #[test]
    fn an_object_is_recorded_by_class_and_gets_its_modules_state() {
        let mut p = b"\x80\x02cmodel\nMRNet\n)\x81}(".to_vec();
        for key in ["_parameters", "_buffers", "_modules"] {
            p.push(b'X');
            p.extend_from_slice(&(key.len() as u32).to_le_bytes());
            p.extend_from_slice(key.as_bytes());
            p.push(b'}');
        }
        p.extend_from_slice(b"ub.");
        let Ok(Value::Object { class, state }) = run(&p) else {
            panic!("{:?}", run(&p));
        };
        assert_eq!(class, "model.MRNet");
        assert!(is_module_state(&state));
    }

    #[test]
    fn copies_and_nesting_are_bounded() {
        // Each step makes a list of two copies of the previous one: 2^40 nodes if unbounded.
        let mut laughs = b"\x80\x02]q\x00".to_vec();
        for _ in 0..40 {
            laughs.extend_from_slice(b"(h\x00h\x00lq\x00");
        }
        laughs.push(b'.');
        assert_eq!(run(&laughs), Err("too many copied values".into()));
        let mut deep = b"\x80\x02".to_vec();
        deep.extend(std::iter::repeat_n(b']', 100_000));
        deep.extend(std::iter::repeat_n(b'a', 99_999));
        deep.push(b'.');
        assert_eq!(run(&deep), Err(too_deep()));
        let plain = b"\x80\x02}q\x00(X\x01\x00\x00\x00aK\x01X\x01\x00\x00\x00bG?\xf0\x00\x00\x00\x00\x00\x00u.";
        assert_eq!(
            run(plain),
            Ok(Value::Dict(vec![
                (Value::Str("a".into()), Value::Int(1)),
                (Value::Str("b".into()), Value::Float(1.0)),
            ]))
        );
    }
}
