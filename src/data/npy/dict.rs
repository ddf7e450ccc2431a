//! The header's dict, a Python literal: as much of Python's syntax as `.npy` headers use.
use std::fmt;

/// A Python literal, as far as `.npy` headers use them.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Str(String),
    Bool(bool),
    Int(u64),
    None,
    Tuple(Vec<Value>),
    List(Vec<Value>),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn items(f: &mut fmt::Formatter<'_>, items: &[Value]) -> fmt::Result {
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{v}")?;
            }
            Ok(())
        }
        match self {
            Value::Str(s) => write!(f, "'{s}'"),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Int(i) => write!(f, "{i}"),
            Value::None => f.write_str("None"),
            Value::Tuple(v) => {
                f.write_str("(")?;
                items(f, v)?;
                f.write_str(if v.len() == 1 { ",)" } else { ")" })
            }
            Value::List(v) => {
                f.write_str("[")?;
                items(f, v)?;
                f.write_str("]")
            }
        }
    }
}

pub(super) struct Dict {
    pub(super) descr: Value,
    pub(super) fortran_order: Value,
    pub(super) shape: Value,
}

const MAX_DEPTH: usize = 16;

struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.text.len() && self.text[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the header".to_string(),
            Some(b) => format!("'{}'", std::ascii::escape_default(b)),
        }
    }

    fn fail<T>(&self, expected: &str) -> Result<T, String> {
        Err(format!(
            "at byte {} of the dict: expected {expected}, found {}",
            self.pos,
            self.found()
        ))
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return self.fail("a quoted string"),
        };
        self.pos += 1;
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == quote {
                let s = String::from_utf8_lossy(&self.text[start..self.pos]).into_owned();
                self.pos += 1;
                return Ok(s);
            }
            if b == b'\\' || b == b'\n' {
                return self.fail("a simple string (no escapes or line breaks)");
            }
            self.pos += 1;
        }
        self.fail("a closing quote")
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return self.fail("a value nested less deeply");
        }
        self.skip_ws();
        match self.peek() {
            Some(b'\'' | b'"') => self.string().map(Value::Str),
            Some(b'(') => self.sequence(b')', depth).map(Value::Tuple),
            Some(b'[') => self.sequence(b']', depth).map(Value::List),
            Some(b'0'..=b'9') => {
                let start = self.pos;
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.pos += 1;
                }
                let digits = String::from_utf8_lossy(&self.text[start..self.pos]).into_owned();
                // Python 2 wrote long integers as `10L`.
                self.eat(b'L');
                digits
                    .parse::<u64>()
                    .map(Value::Int)
                    .map_err(|_| format!("integer {digits} is too large"))
            }
            Some(b'A'..=b'Z' | b'a'..=b'z') => {
                let start = self.pos;
                while matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric() || b == b'_') {
                    self.pos += 1;
                }
                match &self.text[start..self.pos] {
                    b"True" => Ok(Value::Bool(true)),
                    b"False" => Ok(Value::Bool(false)),
                    b"None" => Ok(Value::None),
                    word => Err(format!(
                        "at byte {start} of the dict: expected a value, found '{}'",
                        String::from_utf8_lossy(word)
                    )),
                }
            }
            _ => self.fail("a value (string, True, False, integer or tuple)"),
        }
    }

    fn sequence(&mut self, close: u8, depth: usize) -> Result<Vec<Value>, String> {
        self.pos += 1; // the opening bracket
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.eat(close) {
                return Ok(items);
            }
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            if self.eat(close) {
                return Ok(items);
            }
            if !self.eat(b',') {
                return self.fail(&format!("',' or '{}'", char::from(close)));
            }
        }
    }

    fn dict(&mut self) -> Result<Dict, String> {
        self.skip_ws();
        if !self.eat(b'{') {
            return self.fail("'{' at the start");
        }
        let mut descr = None;
        let mut fortran_order = None;
        let mut shape = None;
        loop {
            self.skip_ws();
            if self.eat(b'}') {
                break;
            }
            let key_at = self.pos;
            let key = self.string()?;
            self.skip_ws();
            if !self.eat(b':') {
                return self.fail("':' after a key");
            }
            let value = self.value(0)?;
            let slot = match key.as_str() {
                "descr" => &mut descr,
                "fortran_order" => &mut fortran_order,
                "shape" => &mut shape,
                _ => {
                    return Err(format!(
                        "unexpected key '{key}': expected exactly 'descr', 'fortran_order' \
                         and 'shape'"
                    ))
                }
            };
            if slot.is_some() {
                return Err(format!(
                    "at byte {key_at} of the dict: key '{key}' appears twice"
                ));
            }
            *slot = Some(value);
            self.skip_ws();
            if self.eat(b'}') {
                break;
            }
            if !self.eat(b',') {
                return self.fail("',' or '}'");
            }
        }
        self.skip_ws();
        if self.pos < self.text.len() {
            return self.fail("only spaces and a newline after the dict");
        }
        let missing = |name| format!("missing key '{name}'");
        Ok(Dict {
            descr: descr.ok_or_else(|| missing("descr"))?,
            fortran_order: fortran_order.ok_or_else(|| missing("fortran_order"))?,
            shape: shape.ok_or_else(|| missing("shape"))?,
        })
    }
}

pub(super) fn parse_dict(text: &[u8]) -> Result<Dict, String> {
    Parser { text, pos: 0 }.dict()
}
