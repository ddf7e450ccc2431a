//! The CAM method's sum in NumPy's order ([`kneecam::cam::blas_order`]) against NumPy itself:
//! benches/reference/numpy_dot.py computes `w.dot(A)` under OpenBLAS's Haswell kernels (which
//! Zen 1–3 share) and, where this CPU has AVX-512, its SkylakeX kernels, and every value must
//! come out bit for bit. Without the CPU for a kernel set, that set is skipped (said on stderr).
use std::path::Path;
use std::process::Command;

use kneecam::cam::blas_order;
use ndarray::{Array1, Array2};

const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.kneecam-python");
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/benches/reference/numpy_dot.py"
);

/// The OpenBLAS kernel sets whose order `blas_order` was found on and is checked against here;
/// where NumPy runs one of them, the reference overlays must match pixel for pixel
/// (precompute/reference.rs).
pub const EXACT_CORES: [&str; 4] = ["Haswell", "Zen", "SkylakeX", "Cooperlake"];

/// Runs the script with OpenBLAS forced to `core` (None: its own choice); the core it used.
fn numpy_dots(out: &Path, core: Option<&str>) -> String {
    let mut command = Command::new(PYTHON);
    command.arg(SCRIPT).arg(out);
    if let Some(core) = core {
        command.env("OPENBLAS_CORETYPE", core);
    }
    let output = command.output().expect("the project's Python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn read<A: ndarray_npy::ReadableElement, D: ndarray::Dimension>(
    path: &Path,
) -> ndarray::Array<A, D> {
    ndarray_npy::read_npy(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every case in `dir` through `weighted_sum`; the number of cases.
fn compare_all(dir: &Path, fused: bool, core: &str) -> usize {
    let mut cases = 0;
    for entry in std::fs::read_dir(dir).expect("cases") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Some(case) = name.strip_suffix("-dot.npy") else {
            continue;
        };
        let w: Array1<f32> = read(&dir.join(format!("{case}-w.npy")));
        let a: Array2<f32> = read(&dir.join(format!("{case}-a.npy")));
        let want: Array1<f32> = read(&path);
        let (channels, cells) = a.dim();
        assert!(blas_order::supports(channels, cells), "{case}");
        let got = blas_order::weighted_sum(
            w.as_slice().expect("contiguous"),
            a.as_slice().expect("contiguous"),
            cells,
            fused,
        );
        let differing: Vec<usize> = (0..cells)
            .filter(|&i| got[i].to_bits() != want[i].to_bits())
            .collect();
        assert!(
            differing.is_empty(),
            "{core}, {case}: cells {differing:?} differ from NumPy's"
        );
        cases += 1;
    }
    cases
}

#[test]
fn the_cam_sum_is_numpys_bit_for_bit() {
    if !std::is_x86_feature_detected!("avx2") || !std::is_x86_feature_detected!("fma") {
        eprintln!("skipped: OpenBLAS's Haswell kernels need AVX2 and FMA");
        return;
    }
    let home = tempfile::tempdir().expect("tempdir");
    let own = numpy_dots(&home.path().join("own"), None);
    let expected_fused = matches!(own.as_str(), "SkylakeX" | "Cooperlake" | "SapphireRapids");
    assert_eq!(
        blas_order::fused_tail(),
        expected_fused,
        "OpenBLAS chose {own} here: the tail's rounding must follow it"
    );
    let mut kernels = vec![("Haswell", false)];
    if blas_order::fused_tail() {
        kernels.push(("SkylakeX", true));
    } else {
        eprintln!("SkylakeX kernels skipped: no AVX-512 here");
    }
    for (core, fused) in kernels {
        let dir = home.path().join(core);
        assert_eq!(numpy_dots(&dir, Some(core)), core);
        assert_eq!(compare_all(&dir, fused, core), 20, "{core}");
    }
}
