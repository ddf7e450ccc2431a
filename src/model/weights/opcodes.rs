//! Pickle opcodes (protocols 0–5), decoded one at a time.

/// One decoded opcode with its argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Proto,
    Frame,
    Stop,
    Mark,
    Pop,
    PopMark,
    Dup,
    None,
    Bool(bool),
    Int(i64),
    /// LONG1 / LONG4 wider than 8 bytes: the little-endian two's-complement bytes.
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes,
    EmptyTuple,
    Tuple(usize),
    TupleMark,
    EmptyList,
    Append,
    Appends,
    ListMark,
    EmptyDict,
    SetItem,
    SetItems,
    DictMark,
    EmptySet,
    AddItems,
    FrozenSet,
    Put(u64),
    Memoize,
    Get(u64),
    Global(String, String),
    StackGlobal,
    Reduce,
    Build,
    BinPersId,
    PersId,
    Inst(String, String),
    Obj,
    NewObj,
    NewObjEx,
    Ext(u64),
    NextBuffer,
    ReadOnlyBuffer,
}

pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    /// Bytes from the reader's position to the end.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The byte offset of the next opcode.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn uint(&mut self, n: usize) -> Result<u64, String> {
        Ok(self
            .take(n)?
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn len(&mut self, n: usize) -> Result<usize, String> {
        let len = self.uint(n)?;
        usize::try_from(len).map_err(|_| format!("absurd length {len}"))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.bytes[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| format!("unterminated line at byte {}", self.pos))?;
        self.pos += end + 1;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }

    fn text(&mut self, width: usize) -> Result<String, String> {
        let len = self.len(width)?;
        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
    }

    fn skip(&mut self, width: usize) -> Result<Op, String> {
        let len = self.len(width)?;
        self.take(len)?;
        Ok(Op::Bytes)
    }

    /// LONG1 / LONG4: a little-endian two's-complement integer of `width`-byte length.
    fn long_int(&mut self, width: usize, at: usize) -> Result<Op, String> {
        let len = self.len(width)?;
        let data = self.take(len)?;
        if len > 8 {
            return Ok(Op::BigInt(data.to_vec()));
        }
        let mut value = data
            .iter()
            .rev()
            .fold(0i128, |acc, &b| (acc << 8) | i128::from(b));
        if len > 0 && data[len - 1] & 0x80 != 0 {
            value -= 1i128 << (8 * len);
        }
        let value = i64::try_from(value).map_err(|_| format!("integer overflow at byte {at}"))?;
        Ok(Op::Int(value))
    }

    /// INT / LONG of protocol 0: decimal digits on a line (LONG's ending in `L`), with the
    /// digits as written.
    fn text_int(&mut self, at: usize) -> Result<(i64, String), String> {
        let line = self.line()?;
        let digits = line.trim().trim_end_matches('L').to_string();
        let value = digits
            .parse()
            .map_err(|_| format!("bad integer '{line}' at byte {at}"))?;
        Ok((value, digits))
    }

    /// The memo index of a protocol-0 PUT or GET, on a line.
    fn text_index(&mut self, what: &str, at: usize) -> Result<u64, String> {
        self.line()?
            .trim()
            .parse()
            .map_err(|_| format!("bad {what} at byte {at}"))
    }

    pub fn op(&mut self) -> Result<Op, String> {
        let at = self.pos;
        let code = self.take(1)?.first().copied().unwrap_or_default();
        Ok(match code {
            0x80 => {
                self.take(1)?;
                Op::Proto
            }
            0x95 => {
                self.take(8)?;
                Op::Frame
            }
            b'.' => Op::Stop,
            b'(' => Op::Mark,
            b'0' => Op::Pop,
            b'1' => Op::PopMark,
            b'2' => Op::Dup,
            b'N' => Op::None,
            0x88 => Op::Bool(true),
            0x89 => Op::Bool(false),
            b'K' => Op::Int(self.uint(1)? as i64),
            b'M' => Op::Int(self.uint(2)? as i64),
            b'J' => Op::Int(i64::from(self.uint(4)? as u32 as i32)),
            0x8a => self.long_int(1, at)?,
            0x8b => self.long_int(4, at)?,
            b'I' => {
                let (value, digits) = self.text_int(at)?;
                // Protocol 0 writes booleans as INT 01 and 00.
                match digits.as_str() {
                    "01" => Op::Bool(true),
                    "00" => Op::Bool(false),
                    _ => Op::Int(value),
                }
            }
            b'L' => Op::Int(self.text_int(at)?.0),
            b'G' => {
                let mut be = [0u8; 8];
                be.copy_from_slice(self.take(8)?);
                Op::Float(f64::from_be_bytes(be))
            }
            b'F' => {
                let line = self.line()?;
                let value = line.trim().parse();
                Op::Float(value.map_err(|_| format!("bad float '{line}' at byte {at}"))?)
            }
            b'X' | b'T' => Op::Str(self.text(4)?),
            0x8c | b'U' => Op::Str(self.text(1)?),
            0x8d => Op::Str(self.text(8)?),
            b'V' => Op::Str(self.line()?),
            b'S' => Op::Str(self.line()?.trim().trim_matches(['\'', '"']).to_string()),
            b'C' => self.skip(1)?,
            b'B' => self.skip(4)?,
            0x8e | 0x96 => self.skip(8)?,
            b')' => Op::EmptyTuple,
            0x85 => Op::Tuple(1),
            0x86 => Op::Tuple(2),
            0x87 => Op::Tuple(3),
            b't' => Op::TupleMark,
            b']' => Op::EmptyList,
            b'a' => Op::Append,
            b'e' => Op::Appends,
            b'l' => Op::ListMark,
            b'}' => Op::EmptyDict,
            b's' => Op::SetItem,
            b'u' => Op::SetItems,
            b'd' => Op::DictMark,
            0x8f => Op::EmptySet,
            0x90 => Op::AddItems,
            0x91 => Op::FrozenSet,
            b'q' => Op::Put(self.uint(1)?),
            b'r' => Op::Put(self.uint(4)?),
            b'p' => Op::Put(self.text_index("PUT", at)?),
            0x94 => Op::Memoize,
            b'h' => Op::Get(self.uint(1)?),
            b'j' => Op::Get(self.uint(4)?),
            b'g' => Op::Get(self.text_index("GET", at)?),
            b'c' => {
                let module = self.line()?;
                Op::Global(module, self.line()?)
            }
            b'i' => {
                let module = self.line()?;
                Op::Inst(module, self.line()?)
            }
            0x93 => Op::StackGlobal,
            b'R' => Op::Reduce,
            b'b' => Op::Build,
            b'Q' => Op::BinPersId,
            b'P' => {
                self.line()?;
                Op::PersId
            }
            b'o' => Op::Obj,
            0x81 => Op::NewObj,
            0x92 => Op::NewObjEx,
            0x82 => Op::Ext(self.uint(1)?),
            0x83 => Op::Ext(self.uint(2)?),
            0x84 => Op::Ext(self.uint(4)?),
            0x97 => Op::NextBuffer,
            0x98 => Op::ReadOnlyBuffer,
            other => return Err(format!("unknown opcode 0x{other:02x} at byte {at}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_decode_in_every_spelling() {
        let ops = |bytes: &[u8]| {
            let mut reader = Reader::new(bytes);
            std::iter::from_fn(|| reader.op().ok()).collect::<Vec<_>>()
        };
        assert_eq!(
            ops(b"I01\nI00\nI42\nL-5L\n"),
            [Op::Bool(true), Op::Bool(false), Op::Int(42), Op::Int(-5)]
        );
        assert_eq!(
            ops(b"\x8a\x02\xff\x7f\x8a\x01\xff\x8a\x00"),
            [Op::Int(32767), Op::Int(-1), Op::Int(0)]
        );
        assert_eq!(
            Reader::new(b"\x8a\x09\x01\x00\x00\x00\x00\x00\x00\x00\x02").op(),
            Ok(Op::BigInt(vec![1, 0, 0, 0, 0, 0, 0, 0, 2]))
        );
        assert!(Reader::new(b"Ixyz\n").op().is_err());
    }
}
