//! Facts about the libtorch this process runs on: its version, where it was loaded from, and the
//! CUDA devices the NVIDIA driver reports.
use std::ffi::{c_char, c_int, CStr};
use std::path::{Path, PathBuf};

/// The libtorch version kneecam was built against (checked by build.rs).
pub const BUILT_VERSION: &str = env!("KNEECAM_LIBTORCH_VERSION");
const BUILT_LIB_DIR: &str = env!("KNEECAM_LIBTORCH_LIB");

/// Whether the build linked `libtorch_cuda.so` (a CUDA-enabled libtorch).
pub fn linked_with_cuda() -> bool {
    env!("KNEECAM_LIBTORCH_CUDA") == "1"
}

/// The folder of the `libtorch_cpu.so` that is mapped into this process.
pub fn loaded_lib_dir() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.ends_with("/libtorch_cpu.so"))
        .and_then(|path| Path::new(path).parent().map(Path::to_path_buf))
}

/// Whether `libtorch_cuda.so` is mapped into this process.
pub fn cuda_library_loaded() -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .map(|maps| maps.contains("/libtorch_cuda.so"))
        .unwrap_or(false)
}

/// The libtorch actually loaded: its version (read beside the library) and folder.
pub fn loaded() -> (String, PathBuf) {
    let dir = loaded_lib_dir().unwrap_or_else(|| PathBuf::from(BUILT_LIB_DIR));
    let version = dir
        .parent()
        .and_then(version_of_torch_dir)
        .unwrap_or_else(|| BUILT_VERSION.to_string());
    (version, dir)
}

fn version_of_torch_dir(torch_dir: &Path) -> Option<String> {
    if let Ok(text) = std::fs::read_to_string(torch_dir.join("build-version")) {
        return Some(without_local(text.trim()));
    }
    let text = std::fs::read_to_string(torch_dir.join("version.py")).ok()?;
    let line = text.lines().find(|l| l.starts_with("__version__"))?;
    line.split(['\'', '"']).nth(1).map(without_local)
}

fn without_local(version: &str) -> String {
    version.split('+').next().unwrap_or(version).to_string()
}

/// Names of the CUDA devices in CUDA's own order (the order `cuda:N` uses), from the driver API.
pub fn cuda_driver_names() -> Result<Vec<String>, String> {
    type CuInit = unsafe extern "C" fn(u32) -> c_int;
    type CuDeviceGetCount = unsafe extern "C" fn(*mut c_int) -> c_int;
    type CuDeviceGet = unsafe extern "C" fn(*mut c_int, c_int) -> c_int;
    type CuDeviceGetName = unsafe extern "C" fn(*mut c_char, c_int, c_int) -> c_int;
    // SAFETY: libcuda.so.1 is the NVIDIA driver library; the four functions have had these C
    // signatures since CUDA 2, and every buffer passed is owned here and sized as declared.
    unsafe {
        let lib = libloading::Library::new("libcuda.so.1").map_err(|e| e.to_string())?;
        let init: libloading::Symbol<CuInit> = lib.get(b"cuInit").map_err(|e| e.to_string())?;
        let count_fn: libloading::Symbol<CuDeviceGetCount> =
            lib.get(b"cuDeviceGetCount").map_err(|e| e.to_string())?;
        let get: libloading::Symbol<CuDeviceGet> =
            lib.get(b"cuDeviceGet").map_err(|e| e.to_string())?;
        let name_fn: libloading::Symbol<CuDeviceGetName> =
            lib.get(b"cuDeviceGetName").map_err(|e| e.to_string())?;
        let status = init(0);
        if status != 0 {
            return Err(format!("cuInit failed with CUDA error {status}"));
        }
        let mut count: c_int = 0;
        if count_fn(&mut count) != 0 {
            return Err("cuDeviceGetCount failed".into());
        }
        let mut names = Vec::new();
        for ordinal in 0..count {
            let mut device: c_int = 0;
            let mut buf = [0 as c_char; 256];
            if get(&mut device, ordinal) != 0 || name_fn(buf.as_mut_ptr(), 255, device) != 0 {
                names.push("unknown GPU".into());
                continue;
            }
            names.push(CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned());
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loaded_libtorch_is_the_one_built_against() {
        let _ = tch::Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu));
        let (version, dir) = loaded();
        assert_eq!(version, BUILT_VERSION);
        assert!(dir.join("libtorch_cpu.so").exists(), "{}", dir.display());
    }
}
