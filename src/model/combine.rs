//! Fitting the per-task combination of the three plane probabilities: logistic regression,
//! as the Stanford MRNet paper does.

/// Coefficients [axial, coronal, sagittal, intercept] maximising the L2-regularised (λ = 1e-3)
/// log-likelihood, by Newton's method.
pub fn fit_logistic(rows: &[([f64; 3], bool)]) -> [f64; 4] {
    let mut beta = [0.0f64; 4];
    let lambda = 1e-3;
    for _ in 0..100 {
        let mut gradient = [0.0f64; 4];
        let mut hessian = [[0.0f64; 4]; 4];
        for (x, y) in rows {
            let features = [x[0], x[1], x[2], 1.0];
            let z: f64 = features.iter().zip(&beta).map(|(f, b)| f * b).sum();
            let p = 1.0 / (1.0 + (-z).exp());
            let residual = f64::from(u8::from(*y)) - p;
            for i in 0..4 {
                gradient[i] += residual * features[i];
                for j in 0..4 {
                    hessian[i][j] += p * (1.0 - p) * features[i] * features[j];
                }
            }
        }
        for i in 0..3 {
            gradient[i] -= lambda * beta[i];
            hessian[i][i] += lambda;
        }
        hessian[3][3] += 1e-9;
        let Some(step) = solve4(hessian, gradient) else {
            break;
        };
        for i in 0..4 {
            beta[i] += step[i];
        }
        if step.iter().all(|s| s.abs() < 1e-10) {
            break;
        }
    }
    beta
}

/// Solves A·x = b for a 4×4 system by Gaussian elimination with partial pivoting.
fn solve4(mut a: [[f64; 4]; 4], mut b: [f64; 4]) -> Option<[f64; 4]> {
    for col in 0..4 {
        let pivot = (col..4).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-15 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let pivot_row = a[col];
        for row in col + 1..4 {
            let factor = a[row][col] / pivot_row[col];
            for (cell, above) in a[row].iter_mut().zip(pivot_row.iter()).skip(col) {
                *cell -= factor * above;
            }
            b[row] -= factor * b[col];
        }
    }
    let mut x = [0.0; 4];
    for row in (0..4).rev() {
        let tail: f64 = (row + 1..4).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - tail) / a[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn recovers_known_coefficients_from_synthetic_probabilities() {
        let truth = [3.454, 4.486, 2.900, -3.624];
        let mut rng = Rng::new(17);
        let rows: Vec<([f64; 3], bool)> = (0..20_000)
            .map(|_| {
                let x = [rng.unit(), rng.unit(), rng.unit()];
                let z = truth[0] * x[0] + truth[1] * x[1] + truth[2] * x[2] + truth[3];
                (x, rng.unit() < 1.0 / (1.0 + (-z).exp()))
            })
            .collect();
        let fit = fit_logistic(&rows);
        for (got, want) in fit.iter().zip(truth) {
            assert!((got - want).abs() < 0.25, "{fit:?} vs {truth:?}");
        }
    }

    #[test]
    fn solves_a_linear_system() {
        let a = [
            [2.0, 1.0, 0.0, 0.0],
            [1.0, 3.0, 1.0, 0.0],
            [0.0, 1.0, 4.0, 1.0],
            [0.0, 0.0, 1.0, 5.0],
        ];
        let x = [1.0, -2.0, 3.0, 0.5];
        let b: [f64; 4] = std::array::from_fn(|i| (0..4).map(|j| a[i][j] * x[j]).sum());
        let solved = solve4(a, b).expect("regular");
        for (s, t) in solved.iter().zip(x) {
            assert!((s - t).abs() < 1e-12);
        }
    }
}
