//! Links kneecam against the libtorch that torch-sys found, so that the binary runs from any
//! folder without LD_LIBRARY_PATH and really loads the CUDA half of libtorch when it exists.
use std::path::{Path, PathBuf};

const LIBTORCH_VERSION: &str = "2.13.0";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Some(lib_dir) = std::env::var_os("DEP_TCH_LIBTORCH_LIB").map(PathBuf::from) else {
        fail("torch-sys did not say where libtorch is (DEP_TCH_LIBTORCH_LIB); run scripts/setup-libtorch");
    };
    let lib_dir = lib_dir.canonicalize().unwrap_or_else(|_| {
        fail(&format!(
            "libtorch folder {} does not exist; run scripts/setup-libtorch",
            lib_dir.display()
        ))
    });
    let torch_dir = lib_dir.parent().map(Path::to_path_buf).unwrap_or_default();
    let version = libtorch_version(&torch_dir).unwrap_or_else(|| "unknown".into());
    if version != LIBTORCH_VERSION {
        fail(&format!(
            "{} holds libtorch {version}; kneecam (tch 0.26) needs {LIBTORCH_VERSION}: run scripts/setup-libtorch",
            torch_dir.display()
        ));
    }
    println!("cargo:rustc-env=KNEECAM_LIBTORCH_VERSION={version}");
    println!("cargo:rustc-env=KNEECAM_LIBTORCH_LIB={}", lib_dir.display());

    // DT_RPATH (not RUNPATH) so the folders also serve libraries that libtorch itself loads.
    println!("cargo:rustc-link-arg=-Wl,--disable-new-dtags");
    for dir in std::iter::once(lib_dir.clone()).chain(bundled_cuda_lib_dirs(&torch_dir)) {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
    // The linker's --as-needed drops libtorch_cuda (nothing references it by symbol), and then
    // tch::Cuda::is_available() answers false on a GPU machine. Keep it.
    if lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-search=native={}", lib_dir.display());
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        println!("cargo:rustc-env=KNEECAM_LIBTORCH_CUDA=1");
    } else {
        println!("cargo:rustc-env=KNEECAM_LIBTORCH_CUDA=0");
    }
}

/// The version of a libtorch folder: `build-version` (libtorch zip) or `version.py` (torch wheel).
fn libtorch_version(torch_dir: &Path) -> Option<String> {
    if let Ok(text) = std::fs::read_to_string(torch_dir.join("build-version")) {
        return Some(strip_local(text.trim()).to_string());
    }
    let text = std::fs::read_to_string(torch_dir.join("version.py")).ok()?;
    let line = text.lines().find(|l| l.starts_with("__version__"))?;
    let quoted = line.split(['\'', '"']).nth(1)?;
    Some(strip_local(quoted).to_string())
}

fn strip_local(version: &str) -> &str {
    version.split('+').next().unwrap_or(version)
}

/// The torch wheel ships the CUDA runtime as `site-packages/nvidia/*/lib` (cu13: `nvidia/cu13/lib`).
fn bundled_cuda_lib_dirs(torch_dir: &Path) -> Vec<PathBuf> {
    let Some(site_packages) = torch_dir.parent() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(site_packages.join("nvidia")) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("lib"))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn fail(message: &str) -> ! {
    eprintln!("kneecam build: {message}");
    println!("cargo:warning={message}");
    std::process::exit(1)
}
