//! A small pickle machine for state dicts: it decodes every opcode of protocols 0–5, but builds
//! only plain data (dicts, lists, tuples, numbers, strings), storages named by persistent ids
//! and tensors from `torch._utils._rebuild_tensor_v2`. Any other global, object construction
//! or extension is an error; nothing is ever imported, called or executed.
use std::collections::BTreeMap;

use super::opcodes::{Op, Reader};
use super::pickled::{is_state_dict_global, storage_kind, StorageRef, TensorRef, Value};

/// Copies made by memo gets are bounded, so a small pickle cannot expand into a huge value.
const COPY_BUDGET: usize = 1 << 22;

struct Machine {
    stack: Vec<Value>,
    memo: BTreeMap<u64, Value>,
    budget: usize,
}

impl Machine {
    fn pop(&mut self) -> Result<Value, String> {
        match self.stack.pop() {
            Some(Value::Mark) | None => Err("stack underflow".into()),
            Some(v) => Ok(v),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let at = self
            .stack
            .iter()
            .rposition(|v| matches!(v, Value::Mark))
            .ok_or("no mark on the stack")?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }

    fn top(&mut self) -> Result<&mut Value, String> {
        match self.stack.last_mut() {
            Some(Value::Mark) | None => Err("stack underflow".into()),
            Some(v) => Ok(v),
        }
    }

    fn copy(&mut self, value: &Value) -> Result<Value, String> {
        let cost = value.nodes(self.budget.saturating_add(1));
        if cost > self.budget {
            return Err("too many copied values".into());
        }
        self.budget -= cost;
        Ok(value.clone())
    }
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, String> {
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

fn ints(value: &Value, what: &str) -> Result<Vec<i64>, String> {
    match value {
        Value::Tuple(items) | Value::List(items) => items
            .iter()
            .map(|v| match v {
                Value::Int(i) => Ok(*i),
                other => Err(format!("{what} holds {}", other.describe())),
            })
            .collect(),
        other => Err(format!("{what} is {}", other.describe())),
    }
}

fn reduce(callable: Value, args: Value) -> Result<Value, String> {
    let Value::Global(name) = callable else {
        return Err(format!("REDUCE on {}", callable.describe()));
    };
    let Value::Tuple(args) = args else {
        return Err(format!("{name} called with {}", args.describe()));
    };
    match name.as_str() {
        "collections.OrderedDict" if args.is_empty() => Ok(Value::Dict(Vec::new())),
        "torch._utils._rebuild_tensor_v2" => {
            let [storage, offset, size, stride, ..] = args.as_slice() else {
                return Err(format!("{name} called with {} arguments", args.len()));
            };
            let Value::Storage(storage) = storage else {
                return Err(format!("{name}: storage is {}", storage.describe()));
            };
            let Value::Int(offset) = offset else {
                return Err(format!("{name}: offset is {}", offset.describe()));
            };
            Ok(Value::Tensor(TensorRef {
                storage: storage.clone(),
                offset: *offset,
                size: ints(size, "size")?,
                stride: ints(stride, "stride")?,
            }))
        }
        "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state" => {
            match args.into_iter().next() {
                Some(tensor @ Value::Tensor(_)) => Ok(tensor),
                _ => Err(format!("{name} without a tensor")),
            }
        }
        _ => Err(format!("refusing to call {name}")),
    }
}

fn persistent_load(pid: Value) -> Result<Value, String> {
    let Value::Tuple(items) = pid else {
        return Err(format!("persistent id is {}", pid.describe()));
    };
    match items.as_slice() {
        [Value::Str(tag), Value::Global(class), Value::Str(key), _location, Value::Int(numel)]
            if tag == "storage" =>
        {
            let kind = storage_kind(class).ok_or_else(|| format!("unsupported storage {class}"))?;
            if key.is_empty() || key.contains(['/', '\\']) || key.contains("..") {
                return Err(format!("bad storage key '{key}'"));
            }
            Ok(Value::Storage(StorageRef {
                kind,
                key: key.clone(),
                numel: *numel,
            }))
        }
        _ => Err("persistent id is not a ('storage', type, key, location, numel) tuple".into()),
    }
}

/// Runs the pickle in `bytes`, returning the value it leaves.
pub fn run(bytes: &[u8]) -> Result<Value, String> {
    let mut reader = Reader::new(bytes);
    let mut machine = Machine {
        stack: Vec::new(),
        memo: BTreeMap::new(),
        budget: COPY_BUDGET,
    };
    loop {
        if let Some(value) = machine.step(reader.op()?)? {
            return Ok(value);
        }
    }
}

impl Machine {
    /// Carries out one opcode; STOP gives the value left on the stack.
    fn step(&mut self, op: Op) -> Result<Option<Value>, String> {
        match op {
            Op::Stop => return self.pop().map(Some),
            Op::Proto | Op::Frame => {}
            Op::Mark => self.stack.push(Value::Mark),
            Op::Pop => self.pop_any()?,
            Op::PopMark => {
                self.pop_mark()?;
            }
            Op::Dup => self.dup()?,
            Op::None => self.stack.push(Value::None),
            Op::Bool(b) => self.stack.push(Value::Bool(b)),
            Op::Int(i) => self.stack.push(Value::Int(i)),
            Op::Float(x) => self.stack.push(Value::Float(x)),
            Op::Str(s) => self.stack.push(Value::Str(s)),
            Op::Bytes => self.stack.push(Value::Bytes),
            Op::EmptyTuple => self.stack.push(Value::Tuple(Vec::new())),
            Op::Tuple(n) => self.tuple(n)?,
            Op::TupleMark => {
                let items = self.pop_mark()?;
                self.stack.push(Value::Tuple(items));
            }
            Op::EmptyList | Op::EmptySet => self.stack.push(Value::List(Vec::new())),
            Op::ListMark | Op::FrozenSet => {
                let items = self.pop_mark()?;
                self.stack.push(Value::List(items));
            }
            Op::Append => self.append()?,
            Op::Appends | Op::AddItems => self.appends()?,
            Op::EmptyDict => self.stack.push(Value::Dict(Vec::new())),
            Op::DictMark => {
                let items = pairs(self.pop_mark()?)?;
                self.stack.push(Value::Dict(items));
            }
            Op::SetItem => self.set_item()?,
            Op::SetItems => self.set_items()?,
            Op::Put(index) => self.memo_put(index)?,
            Op::Memoize => self.memo_put(self.memo.len() as u64)?,
            Op::Get(index) => self.memo_get(index)?,
            Op::Global(module, name) => self.stack.push(global(format!("{module}.{name}"))?),
            Op::StackGlobal => self.stack_global()?,
            Op::Reduce => {
                let args = self.pop()?;
                let callable = self.pop()?;
                self.stack.push(reduce(callable, args)?);
            }
            Op::Build => {
                // The state of an OrderedDict (its `_metadata`) or a parameter: not needed.
                self.pop()?;
                self.top()?;
            }
            Op::BinPersId => {
                let pid = self.pop()?;
                self.stack.push(persistent_load(pid)?);
            }
            refused => return Err(refusal(&refused)),
        }
        Ok(None)
    }

    fn pop_any(&mut self) -> Result<(), String> {
        self.stack
            .pop()
            .map(drop)
            .ok_or_else(|| "stack underflow".into())
    }

    fn dup(&mut self) -> Result<(), String> {
        let top = self.top()?.clone();
        let top = self.copy(&top)?;
        self.stack.push(top);
        Ok(())
    }

    fn tuple(&mut self, n: usize) -> Result<(), String> {
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.pop()?);
        }
        items.reverse();
        self.stack.push(Value::Tuple(items));
        Ok(())
    }

    fn append(&mut self) -> Result<(), String> {
        let item = self.pop()?;
        match self.top()? {
            Value::List(items) => items.push(item),
            other => return Err(format!("APPEND to {}", other.describe())),
        }
        Ok(())
    }

    fn appends(&mut self) -> Result<(), String> {
        let new = self.pop_mark()?;
        match self.top()? {
            Value::List(items) => items.extend(new),
            other => return Err(format!("APPENDS to {}", other.describe())),
        }
        Ok(())
    }

    fn set_item(&mut self) -> Result<(), String> {
        let value = self.pop()?;
        let key = self.pop()?;
        match self.top()? {
            Value::Dict(items) => items.push((key, value)),
            other => return Err(format!("SETITEM on {}", other.describe())),
        }
        Ok(())
    }

    fn set_items(&mut self) -> Result<(), String> {
        let new = pairs(self.pop_mark()?)?;
        match self.top()? {
            Value::Dict(items) => items.extend(new),
            other => return Err(format!("SETITEMS on {}", other.describe())),
        }
        Ok(())
    }

    fn memo_put(&mut self, index: u64) -> Result<(), String> {
        let top = self.top()?.clone();
        let top = self.copy(&top)?;
        self.memo.insert(index, top);
        Ok(())
    }

    fn memo_get(&mut self, index: u64) -> Result<(), String> {
        let value = self
            .memo
            .get(&index)
            .cloned()
            .ok_or_else(|| format!("memo {index} is empty"))?;
        let value = self.copy(&value)?;
        self.stack.push(value);
        Ok(())
    }

    fn stack_global(&mut self) -> Result<(), String> {
        let name = self.pop()?;
        let module = self.pop()?;
        match (module, name) {
            (Value::Str(module), Value::Str(name)) => {
                self.stack.push(global(format!("{module}.{name}"))?);
                Ok(())
            }
            _ => Err("STACK_GLOBAL without two strings".into()),
        }
    }
}

/// Why an opcode that builds objects, runs code or needs what torch.save never writes is refused.
fn refusal(op: &Op) -> String {
    match op {
        Op::PersId => "text persistent ids are not used by torch.save".into(),
        Op::Inst(module, name) => format!("refusing to build {module}.{name}"),
        Op::Ext(code) => format!("refusing extension code {code}"),
        Op::NextBuffer | Op::ReadOnlyBuffer => {
            "out-of-band buffers are not used by torch.save".into()
        }
        _ => "refusing to build an object".into(),
    }
}

fn global(name: String) -> Result<Value, String> {
    if is_state_dict_global(&name) {
        Ok(Value::Global(name))
    } else {
        Err(format!("refusing global {name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restricted_unpickler_refuses_code_and_bounds_copies() {
        let system = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.";
        assert_eq!(run(system), Err("refusing global os.system".to_string()));
        let newobj = b"\x80\x02ccollections\nOrderedDict\n)\x81.";
        assert_eq!(run(newobj), Err("refusing to build an object".to_string()));
        // Each step makes a list of two copies of the previous one: 2^40 nodes if unbounded.
        let mut laughs = b"\x80\x02]q\x00".to_vec();
        for _ in 0..40 {
            laughs.extend_from_slice(b"(h\x00h\x00lq\x00");
        }
        laughs.push(b'.');
        assert_eq!(run(&laughs), Err("too many copied values".to_string()));
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
