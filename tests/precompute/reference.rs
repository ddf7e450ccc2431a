//! The done-when of the cohort export: `kneecam export --layout reference` against the reference
//! pipeline itself (benches/reference/cohort.py: PyTorch with a forward hook, NumPy CAMs,
//! OpenCV's resize and JET, PIL's PNGs) on a small cohort of three exams × three planes with
//! random-weight AlexNet MRNets. Every file is compared: the same tree, the same image sizes and
//! modes, and every pixel of the slices and overlays the same. kneecam sums the CAM in NumPy's
//! order for the OpenBLAS kernels of x86-64 CPUs since Haswell (`cam::blas_order`); where NumPy
//! runs other kernels, a cell may land on the other side of an 8-bit step of `np.uint8(255 *
//! cam)`, so there the overlays may differ by up to 3 (one heat step moves the blend by up to
//! 2), in at most 1 overlay in 50.
use std::path::Path;

const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.kneecam-python");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/reference/cohort.py");

#[test]
fn the_reference_layout_reproduces_the_reference_pipeline() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = home.path().join("fidelity");
    let output = std::process::Command::new(PYTHON)
        .arg(SCRIPT)
        .arg("--kneecam")
        .arg(env!("CARGO_BIN_EXE_kneecam"))
        .arg("--out")
        .arg(&out)
        .args(["--exams", "3", "--threads", "1"])
        .env("KNEECAM_CONFIG_DIR", home.path().join("config"))
        .env("KNEECAM_DATA_DIR", home.path().join("data"))
        .env("KNEECAM_CACHE_DIR", home.path().join("cache"))
        .output()
        .expect("the project's Python (scripts/setup-libtorch makes it, with OpenCV)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the script's JSON summary");
    let files = summary["files"].as_u64().expect("files");
    // 3 exams × 3 planes × (20 to 40 slices) × a slice and an overlay each.
    assert!(files >= 3 * 3 * 20 * 2, "{summary}");
    assert_eq!(summary["same_file_tree"], true, "{summary}");
    assert_eq!(summary["same_sizes"], true, "{summary}");
    assert_eq!(summary["slice_pngs_identical"], true, "{summary}");
    let worst = summary["overlay_max_difference"]
        .as_u64()
        .expect("difference");
    let core = summary["openblas_core"].as_str().unwrap_or("unknown");
    if crate::blas_order::EXACT_CORES.contains(&core) {
        assert_eq!(worst, 0, "NumPy on {core}: every pixel the same: {summary}");
    }
    assert!(worst <= 3, "overlays differ by up to {worst}: {summary}");
    let overlays = summary["overlays"].as_u64().expect("overlays");
    let beyond = summary["overlays_beyond_1"].as_u64().expect("beyond 1");
    assert!(
        beyond * 50 <= overlays,
        "{beyond} of {overlays} overlays differ by more than 1: {summary}"
    );
    assert!(Path::new(&out).join("CAMS-kneecam").is_dir());
}
