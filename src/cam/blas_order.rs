//! Σ_c w[c]·A[c, i] in float32 in the order NumPy's OpenBLAS sums `w.dot(A)` (its `sgemv`
//! kernels for Haswell and later x86-64 CPUs), so that the CAM method's maps are the reference
//! code's bit for bit. In any other order a cell now and then lands on the other side of an
//! 8-bit step of `np.uint8(255 * cam)` and its overlay pixels move by 2.
//!
//! The order, found by comparing every candidate against NumPy's results (OpenBLAS 0.3.31,
//! `OPENBLAS_CORETYPE` Haswell, Zen, SkylakeX, Cooperlake):
//! - The cells in whole groups of 16 (after setting aside `cells % 4`): per block of 8 channels,
//!   a fused multiply-add chain starting from the block's first product; the blocks' sums
//!   added one after another.
//! - The last `cells % 4` cells: one running sum over all channels, fused (FMA) where OpenBLAS
//!   takes its AVX-512 kernels (SkylakeX and later, AMD Zen 4 and later), else a separate
//!   multiply and add (Haswell, Zen 1–3).
//!
//! Other shapes (cells % 16 ≥ 4, channels not a multiple of 8) and other CPUs sum in other
//! orders; [`supports`] says which shapes this reproduces, and the caller uses libtorch's
//! einsum for the rest.

/// Whether the shape is one whose order this reproduces: channels a multiple of 8, at least
/// 16 cells and `cells − cells % 4` a multiple of 16 (7×7 maps: 48 + 1; 16×16: 256).
pub fn supports(channels: usize, cells: usize) -> bool {
    let body = cells - cells % 4;
    channels > 0 && channels.is_multiple_of(8) && cells >= 16 && body.is_multiple_of(16)
}

/// Whether OpenBLAS on this CPU would fuse the tail's multiply-adds (its AVX-512 kernels).
pub fn fused_tail() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512cd")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `weight · features` for features laid out [channels, cells] (row-major), as NumPy sums it;
/// the shape must be one that [`supports`] accepts.
pub fn weighted_sum(weight: &[f32], features: &[f32], cells: usize, fused_tail: bool) -> Vec<f32> {
    let channels = weight.len();
    debug_assert!(supports(channels, cells));
    debug_assert_eq!(features.len(), channels * cells);
    let body = cells - cells % 4;
    let mut out = vec![0f32; cells];
    let mut block = vec![0f32; body];
    for first in (0..channels).step_by(8) {
        let row = |c: usize| &features[c * cells..c * cells + body];
        for (sum, &a) in block.iter_mut().zip(row(first)) {
            *sum = weight[first] * a;
        }
        for (c, &w) in weight.iter().enumerate().skip(first + 1).take(7) {
            for (sum, &a) in block.iter_mut().zip(row(c)) {
                *sum = w.mul_add(a, *sum);
            }
        }
        for (total, &sum) in out.iter_mut().zip(&block) {
            *total += sum;
        }
    }
    for (cell, total) in out.iter_mut().enumerate().skip(body) {
        let column = (0..channels).map(|c| (weight[c], features[c * cells + cell]));
        *total = column.fold(0f32, |sum, (w, a)| {
            if fused_tail {
                w.mul_add(a, sum)
            } else {
                sum + w * a
            }
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shapes_it_reproduces() {
        assert!(supports(256, 49));
        assert!(supports(512, 256));
        assert!(supports(256, 225));
        assert!(
            !supports(256, 196),
            "192 + 4: a 4-cell group NumPy sums otherwise"
        );
        assert!(!supports(250, 49));
        assert!(!supports(256, 9));
        assert!(!supports(0, 49));
    }

    #[test]
    fn the_order_is_blocks_of_eight_fused_then_added() {
        // Products that cancel in one order and not in another: 1e8 + 1 − 1e8 keeps the 1 only
        // where the 1 is added after the cancellation.
        let mut weight = vec![0f32; 16];
        let cells = 17;
        let mut features = vec![0f32; 16 * cells];
        weight[0] = 1.0;
        weight[1] = 1.0;
        weight[8] = 1.0;
        features[0] = 1e8; // channel 0, cell 0
        features[cells] = -1e8; // channel 1, cell 0
        features[8 * cells] = 1.0; // channel 8, cell 0 (the second block)
        let out = weighted_sum(&weight, &features, cells, false);
        assert_eq!(out[0], 1.0, "(1e8 − 1e8) in the first block, then + 1");
        // The tail cell sums channel by channel: 1e8 + 1 rounds to 1e8 before the − 1e8.
        features[16] = 1e8;
        features[cells + 16] = 1.0;
        features[8 * cells + 16] = -1e8;
        let out = weighted_sum(&weight, &features, cells, false);
        assert_eq!(out[16], 0.0);
    }

    #[test]
    fn the_fused_tail_rounds_once() {
        // 3 · (1 + 2⁻²³)² rounds differently with and without a fused multiply-add.
        let x = 1.0 + f32::EPSILON;
        let mut weight = vec![0f32; 8];
        let cells = 17;
        let mut features = vec![0f32; 8 * cells];
        weight[0] = 1.0;
        features[16] = -1.0 - 2.0 * f32::EPSILON;
        weight[1] = x;
        features[cells + 16] = x;
        let fused = weighted_sum(&weight, &features, cells, true)[16];
        let plain = weighted_sum(&weight, &features, cells, false)[16];
        assert_eq!(fused, f32::EPSILON * f32::EPSILON);
        assert_eq!(plain, 0.0);
    }
}
