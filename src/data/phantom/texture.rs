//! Band-limited value noise for tissue texture (trabecular marrow, fat septa, muscle fibres,
//! fascial planes). One fixed lattice of random values, periodic with period 32, interpolated
//! with smoothstep weights: no libm call per sample (speed) and the same bytes everywhere
//! (determinism); each exam shifts and scales its own view of it.
use super::geometry::{floor, V3};
use crate::rng::Rng;

const PERIOD: usize = 32;
const MASK: i64 = PERIOD as i64 - 1;

fn lattice() -> &'static [f32] {
    static TABLE: std::sync::OnceLock<Vec<f32>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut rng = Rng::new(0x6b6e_6565_6361_6d33);
        (0..PERIOD * PERIOD * PERIOD)
            .map(|_| rng.range(-1.0, 1.0) as f32)
            .collect()
    })
}

fn fade(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

/// Value noise in about [-1, 1] at `p` (lattice units: features about one unit across).
pub fn noise(p: V3) -> f32 {
    let table = lattice();
    let (fx, fy, fz) = (floor(p.x), floor(p.y), floor(p.z));
    let (u, v, w) = (
        fade((p.x - fx) as f32),
        fade((p.y - fy) as f32),
        fade((p.z - fz) as f32),
    );
    let (ix, iy, iz) = (fx as i64, fy as i64, fz as i64);
    // Lattice indices computed once (not per corner): this is the phantom's hottest call.
    let x = [(ix & MASK) as usize, ((ix + 1) & MASK) as usize];
    let y = [
        PERIOD * (iy & MASK) as usize,
        PERIOD * ((iy + 1) & MASK) as usize,
    ];
    let z = [
        PERIOD * PERIOD * (iz & MASK) as usize,
        PERIOD * PERIOD * ((iz + 1) & MASK) as usize,
    ];
    let plane = |zi: usize| {
        let (r0, r1) = (y[0] + zi, y[1] + zi);
        let low = lerp(table[x[0] + r0], table[x[1] + r0], u);
        let high = lerp(table[x[0] + r1], table[x[1] + r1], u);
        lerp(low, high, v)
    };
    lerp(plane(z[0]), plane(z[1]), w)
}

#[inline]
fn lerp(a: f32, b: f32, t: f32) -> f32 {
    a + (b - a) * t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::phantom::geometry::v3;

    #[test]
    fn noise_is_bounded_periodic_and_varies() {
        let a = noise(v3(1.3, 2.7, 5.1));
        let b = noise(v3(1.3 + PERIOD as f64, 2.7, 5.1 - PERIOD as f64));
        assert!((a - b).abs() < 1e-6);
        let samples: Vec<f32> = (0..200)
            .map(|i| noise(v3(i as f64 * 0.37, i as f64 * 0.11, 0.5)))
            .collect();
        assert!(samples.iter().all(|v| v.abs() <= 1.0));
        let spread = samples.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(spread > 0.3, "{spread}");
    }
}
