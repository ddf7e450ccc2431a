//! The element types the reader accepts, as NumPy's `descr` names them.
use std::fmt;

/// Element types the reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scalar {
    U8,
    I16,
    U16,
    I32,
    U32,
    F32,
    F64,
}

impl Scalar {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Scalar::U8 => 1,
            Scalar::I16 | Scalar::U16 => 2,
            Scalar::I32 | Scalar::U32 | Scalar::F32 => 4,
            Scalar::F64 => 8,
        }
    }

    /// NumPy's name for it: `uint8`, `int16`, `float32`, ...
    pub fn name(self) -> &'static str {
        match self {
            Scalar::U8 => "uint8",
            Scalar::I16 => "int16",
            Scalar::U16 => "uint16",
            Scalar::I32 => "int32",
            Scalar::U32 => "uint32",
            Scalar::F32 => "float32",
            Scalar::F64 => "float64",
        }
    }

    pub(super) fn code(self) -> &'static str {
        match self {
            Scalar::U8 => "u1",
            Scalar::I16 => "i2",
            Scalar::U16 => "u2",
            Scalar::I32 => "i4",
            Scalar::U32 => "u4",
            Scalar::F32 => "f4",
            Scalar::F64 => "f8",
        }
    }

    pub(super) fn is_float(self) -> bool {
        matches!(self, Scalar::F32 | Scalar::F64)
    }
}

/// Byte order of a multi-byte element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ByteOrder {
    Little,
    Big,
}

/// An accepted `descr`: element type and byte order (little for `uint8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dtype {
    pub scalar: Scalar,
    pub order: ByteOrder,
}

impl Dtype {
    pub const U8: Dtype = Dtype {
        scalar: Scalar::U8,
        order: ByteOrder::Little,
    };

    /// Parses a NumPy `descr` string such as `'|u1'`, `'<i2'` or `'>f8'`; `None` for anything
    /// this reader does not accept.
    pub fn parse(descr: &str) -> Option<Dtype> {
        let mut chars = descr.chars();
        let first = chars.next()?;
        let (order_char, code) = match first {
            '<' | '>' | '|' | '=' => (Some(first), chars.as_str()),
            _ => (None, descr),
        };
        let scalar = match code {
            "u1" => Scalar::U8,
            "i2" => Scalar::I16,
            "u2" => Scalar::U16,
            "i4" => Scalar::I32,
            "u4" => Scalar::U32,
            "f4" => Scalar::F32,
            "f8" => Scalar::F64,
            _ => return None,
        };
        let native = if cfg!(target_endian = "big") {
            ByteOrder::Big
        } else {
            ByteOrder::Little
        };
        let order = match (order_char, scalar) {
            (_, Scalar::U8) => ByteOrder::Little,
            // '|' means "not applicable", which NumPy only writes for one-byte types.
            (Some('|'), _) => return None,
            (Some('>'), _) => ByteOrder::Big,
            (Some('<'), _) => ByteOrder::Little,
            _ => native,
        };
        Some(Dtype { scalar, order })
    }

    /// The `descr` NumPy would write for it.
    pub fn descr(self) -> String {
        let order = match (self.scalar, self.order) {
            (Scalar::U8, _) => '|',
            (_, ByteOrder::Little) => '<',
            (_, ByteOrder::Big) => '>',
        };
        format!("{order}{}", self.scalar.code())
    }

    /// Whether loading rescales the values to 0–255 (everything but `uint8`).
    pub fn needs_scaling(self) -> bool {
        self.scalar != Scalar::U8
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scalar.name())?;
        if self.scalar != Scalar::U8 && self.order == ByteOrder::Big {
            f.write_str(" (big-endian)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_names() {
        assert_eq!(Dtype::parse("<i2").map(|d| d.descr()), Some("<i2".into()));
        assert_eq!(
            Dtype::parse(">f8").map(|d| d.to_string()),
            Some("float64 (big-endian)".into())
        );
        assert_eq!(Dtype::parse("<u1"), Some(Dtype::U8));
        assert_eq!(Dtype::parse("|i2"), None);
        assert_eq!(Dtype::parse("<i1"), None);
        assert_eq!(Dtype::parse("<c8"), None);
        assert_eq!(Dtype::parse(""), None);
    }
}
