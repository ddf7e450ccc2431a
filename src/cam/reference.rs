//! The reference code's CAM images, bit for bit: each slice's map at feature resolution is
//! shifted to 0, divided by its maximum, cast to 8 bits as NumPy's `np.uint8(255 * x)` does
//! (truncating), and enlarged with OpenCV's `cv2.resize` (bilinear, fixed point). kneecam's own
//! maps enlarge the floating-point map first and normalise after, which differs by up to a
//! third of the range at the edges of a 7×7 map; `export --layout reference` uses these.
use ndarray::{s, Array2, Array3, ArrayView2, Axis};

use super::Placement;

/// OpenCV's bilinear weights are fixed point with 11 fractional bits.
const COEF_BITS: u32 = 11;
const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;

/// The reference maps of raw per-slice maps `raw` (S, h, w), placed in the slice as `placement`
/// says (outside the model's window: 0).
pub fn slice_maps(raw: &Array3<f32>, placement: Placement) -> Array3<u8> {
    let (top, left, height, width) = placement.window;
    let (slice_h, slice_w) = placement.slice;
    let mut out = Array3::<u8>::zeros((raw.dim().0, slice_h, slice_w));
    for (map, mut slice) in raw.axis_iter(Axis(0)).zip(out.axis_iter_mut(Axis(0))) {
        let small = to_u8_like_numpy(map);
        let big = resize_linear(small.view(), height, width);
        slice
            .slice_mut(s![top..top + height, left..left + width])
            .assign(&big);
    }
    out
}

/// `cam -= cam.min(); np.uint8(255 * (cam / cam.max()))` in float32. A flat map divides 0 by
/// 0; NumPy's NaN then casts to 0 on x86-64, as here.
fn to_u8_like_numpy(map: ArrayView2<f32>) -> Array2<u8> {
    let lo = map.iter().copied().fold(f32::INFINITY, f32::min);
    let shifted = map.mapv(|v| v - lo);
    let hi = shifted.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    shifted.mapv(|v| {
        let unit = v / hi;
        if unit.is_nan() {
            0
        } else {
            (255.0 * unit) as u8
        }
    })
}

/// Source index and fraction of each destination pixel along one axis, as OpenCV's
/// `resize` computes them (`(d + ½)·scale − ½` in double, then float).
fn sample_points(source: usize, destination: usize) -> Vec<(isize, f32)> {
    let scale = 1.0 / (destination as f64 / source as f64);
    (0..destination)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let index = f.floor();
            (index as isize, f - index)
        })
        .collect()
}

/// `saturate_cast<short>(w · 2048)`: round half to even, as `cvRound`.
fn fixed(weight: f32) -> i32 {
    (weight * COEF_SCALE).round_ties_even() as i32
}

/// `cv2.resize(src, (cols, rows))` with its default INTER_LINEAR, for 8-bit images: a
/// horizontal pass into 32-bit integers, then a vertical pass whose arithmetic is that of
/// OpenCV's SIMD kernel (`VResizeLinearVec_32s8u`), which x86-64 builds always take.
pub fn resize_linear(src: ArrayView2<u8>, rows: usize, cols: usize) -> Array2<u8> {
    let (src_rows, src_cols) = src.dim();
    let mut out = Array2::<u8>::zeros((rows, cols));
    if src_rows == 0 || src_cols == 0 {
        return out;
    }
    let columns: Vec<(usize, i32, i32)> = sample_points(src_cols, cols)
        .into_iter()
        .map(|(index, fraction)| {
            // At the borders OpenCV repeats the edge pixel: weight 1 on it.
            if index < 0 {
                (0, fixed(1.0), 0)
            } else if index as usize >= src_cols - 1 {
                (src_cols - 1, fixed(1.0), 0)
            } else {
                (index as usize, fixed(1.0 - fraction), fixed(fraction))
            }
        })
        .collect();
    let horizontal: Vec<Vec<i32>> = src
        .rows()
        .into_iter()
        .map(|row| {
            columns
                .iter()
                .map(|&(x, a0, a1)| {
                    let next = row[(x + 1).min(src_cols - 1)];
                    i32::from(row[x]) * a0 + i32::from(next) * a1
                })
                .collect()
        })
        .collect();
    let clamp = |y: isize| y.clamp(0, src_rows as isize - 1) as usize;
    for (d, (index, fraction)) in sample_points(src_rows, rows).into_iter().enumerate() {
        let (b0, b1) = (fixed(1.0 - fraction), fixed(fraction));
        let (upper, lower) = (&horizontal[clamp(index)], &horizontal[clamp(index + 1)]);
        let mul_hi = |value: i32, weight: i32| ((value >> 4) * weight) >> 16;
        for (c, pixel) in out.row_mut(d).iter_mut().enumerate() {
            let value = (mul_hi(upper[c], b0) + mul_hi(lower[c], b1) + 2) >> 2;
            *pixel = value.clamp(0, 255) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn matches_what_opencv_printed() {
        // cv2.resize(np.array([[0, 255, 10], [40, 90, 200]], np.uint8), (5, 4)) under
        // opencv-python-headless 5.1.0.
        let src = array![[0u8, 255, 10], [40, 90, 200]];
        let expected = array![
            [0u8, 102, 255, 108, 10],
            [10, 91, 214, 120, 58],
            [30, 70, 131, 144, 153],
            [40, 60, 90, 156, 200]
        ];
        assert_eq!(resize_linear(src.view(), 4, 5), expected);
    }

    #[test]
    fn a_flat_image_stays_flat_at_every_value() {
        for value in [0u8, 1, 127, 254, 255] {
            let src = Array2::from_elem((7, 7), value);
            let big = resize_linear(src.view(), 256, 256);
            assert!(big.iter().all(|&v| v == value), "{value}");
        }
    }

    #[test]
    fn maps_are_truncated_as_numpy_and_a_flat_map_is_zero() {
        let raw =
            Array3::from_shape_vec((2, 1, 3), vec![-1.0, 0.0, 2.0, 5.0, 5.0, 5.0]).expect("shape");
        let placement = Placement {
            window: (0, 0, 1, 3),
            slice: (1, 3),
        };
        let maps = slice_maps(&raw, placement);
        // (0 − (−1)) / 3 · 255 = 85.0, 255 · 1 = 255; the flat slice: NaN → 0.
        assert_eq!(maps.as_slice().expect("contiguous"), &[0, 85, 255, 0, 0, 0]);
    }
}
