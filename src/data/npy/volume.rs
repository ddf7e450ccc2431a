//! The body: voxels read once the header is checked, other dtypes scaled to `uint8`.
use std::io::{self, Read};
use std::path::Path;

use ndarray::{Array3, ArrayView2, Axis};

use super::header::read_up_to;
use super::{ByteOrder, Dtype, NpyError, NpyHeader, Scalar};

/// A series as kneecam uses it: `uint8` voxels (slices, height, width), and a note when they
/// are not the file's values as stored (scaled from another dtype).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub data: Array3<u8>,
    pub note: Option<String>,
}

impl Volume {
    pub fn slices(&self) -> usize {
        self.data.len_of(Axis(0))
    }

    pub fn height(&self) -> usize {
        self.data.len_of(Axis(1))
    }

    pub fn width(&self) -> usize {
        self.data.len_of(Axis(2))
    }

    /// Slice `index` (0-based), or `None` past the end.
    pub fn slice(&self, index: usize) -> Option<ArrayView2<'_, u8>> {
        (index < self.slices()).then(|| self.data.index_axis(Axis(0), index))
    }
}

pub(super) fn read_body(
    path: &Path,
    header: &NpyHeader,
    reader: &mut impl Read,
) -> Result<Volume, NpyError> {
    let p = || path.to_path_buf();
    let io_err = |error| NpyError::Io { path: p(), error };
    let body_len = header.body_len();
    let mut body = Vec::new();
    usize::try_from(body_len)
        .ok()
        .and_then(|n| body.try_reserve_exact(n).ok())
        .ok_or(NpyError::OutOfMemory {
            path: p(),
            bytes: body_len,
        })?;
    reader
        .take(body_len)
        .read_to_end(&mut body)
        .map_err(io_err)?;
    if (body.len() as u64) < body_len {
        return Err(NpyError::Truncated {
            path: p(),
            found: body.len() as u64,
            header: Box::new(header.clone()),
        });
    }
    // The length was checked with the header; this catches a file that grew since.
    let mut probe = [0u8; 1];
    if read_up_to(reader, &mut probe).map_err(io_err)? > 0 {
        let extra = 1 + io::copy(reader, &mut io::sink()).map_err(io_err)?;
        return Err(NpyError::TrailingBytes {
            path: p(),
            extra,
            header: Box::new(header.clone()),
        });
    }
    let (data, note) = if header.dtype.scalar == Scalar::U8 {
        (body, None)
    } else {
        let (data, note) = scale_to_u8(path, header, &body)?;
        (data, Some(note))
    };
    let data = Array3::from_shape_vec(header.shape, data).map_err(|e| NpyError::BadHeader {
        path: p(),
        reason: format!("shape does not match the data: {e}"),
    })?;
    Ok(Volume { data, note })
}

fn decode(dtype: Dtype, b: &[u8]) -> f64 {
    macro_rules! num {
        ($t:ty, $n:literal) => {{
            let mut a = [0u8; $n];
            a.copy_from_slice(&b[..$n]);
            match dtype.order {
                ByteOrder::Little => <$t>::from_le_bytes(a) as f64,
                ByteOrder::Big => <$t>::from_be_bytes(a) as f64,
            }
        }};
    }
    match dtype.scalar {
        Scalar::U8 => f64::from(b[0]),
        Scalar::I16 => num!(i16, 2),
        Scalar::U16 => num!(u16, 2),
        Scalar::I32 => num!(i32, 4),
        Scalar::U32 => num!(u32, 4),
        Scalar::F32 => num!(f32, 4),
        Scalar::F64 => num!(f64, 8),
    }
}

/// Min-max scales a whole series to 0–255; NaN or infinity is an error.
fn scale_to_u8(
    path: &Path,
    header: &NpyHeader,
    body: &[u8],
) -> Result<(Vec<u8>, String), NpyError> {
    let dtype = header.dtype;
    let size = dtype.scalar.size();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (i, chunk) in body.chunks_exact(size).enumerate() {
        let v = decode(dtype, chunk);
        if dtype.scalar.is_float() && !v.is_finite() {
            let plane = header.height() * header.width();
            return Err(NpyError::NotFinite {
                path: path.to_path_buf(),
                dtype,
                index: [i / plane, (i % plane) / header.width(), i % header.width()],
            });
        }
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let n = body.len() / size;
    if lo >= hi {
        return Ok((
            vec![0; n],
            format!(
                "constant {dtype} series (every value {}): shown as all zeros",
                number(lo)
            ),
        ));
    }
    // Halved, so that a range as wide as float64's (-max to max) does not overflow.
    let (lo_half, range_half) = (lo * 0.5, hi * 0.5 - lo * 0.5);
    let data = body
        .chunks_exact(size)
        .map(|chunk| {
            let t = (decode(dtype, chunk) * 0.5 - lo_half) / range_half;
            (t * 255.0).round().clamp(0.0, 255.0) as u8
        })
        .collect();
    Ok((
        data,
        format!(
            "scaled from {dtype} range [{}, {}] to 0–255",
            number(lo),
            number(hi)
        ),
    ))
}

/// A value for a note: plain where short, in scientific notation where huge or tiny.
fn number(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e9).contains(&a) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}
