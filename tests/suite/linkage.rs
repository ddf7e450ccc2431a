//! The CUDA half of libtorch must be a NEEDED library of the binary (the linker's --as-needed
//! would drop it and CUDA would silently be unavailable), and libtorch is found through RPATH.
use std::process::Command;

fn dynamic_section() -> String {
    let out = Command::new("readelf")
        .args(["-d", env!("CARGO_BIN_EXE_kneecam")])
        .output()
        .expect("readelf (binutils) runs");
    assert!(out.status.success(), "readelf failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn binary_needs_libtorch_cuda_when_libtorch_has_it() {
    let lib_dir = kneecam::model::libtorch::loaded().1;
    let section = dynamic_section();
    if lib_dir.join("libtorch_cuda.so").exists() {
        assert!(section.contains("[libtorch_cuda.so]"), "{section}");
    }
    assert!(section.contains("[libtorch_cpu.so]"), "{section}");
}

#[test]
fn binary_carries_an_rpath_to_the_libtorch_folder() {
    let lib_dir = kneecam::model::libtorch::loaded().1;
    let section = dynamic_section();
    let rpath_line = section
        .lines()
        .find(|l| l.contains("(RPATH)"))
        .expect("an RPATH entry");
    assert!(
        rpath_line.contains(&*lib_dir.to_string_lossy()),
        "{rpath_line} lacks {}",
        lib_dir.display()
    );
}
