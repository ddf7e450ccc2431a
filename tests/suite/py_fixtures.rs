//! Files made by real PyTorch 2.13.0 (the virtualenv of scripts/setup-libtorch, run through
//! `.kneecam-python`) for the tests: a Python script writes them once per version of the script
//! into cargo's target tmp folder, where later runs find them.
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::Digest;

pub const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.kneecam-python");

pub fn python() -> &'static str {
    assert!(
        Path::new(PYTHON).exists(),
        "{PYTHON} is missing: run scripts/setup-libtorch (it installs torch 2.13.0 and makes it)"
    );
    PYTHON
}

/// The folder `script` (run as `python -c script TMP_DIR FINAL_DIR`) filled, named
/// `{family}-{hash of script}`; folders of the family's older scripts are removed. Call it once
/// per process (from a `OnceLock`).
pub fn make(family: &str, script: &str) -> PathBuf {
    let digest = sha2::Sha256::digest(script.as_bytes());
    let tag: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = root.join(format!("{family}-{tag}"));
    let ours = dir.file_name().map(|n| n.to_os_string());
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let text = name.to_string_lossy();
        if text.starts_with(&format!("{family}-"))
            && !text.contains(".tmp")
            && Some(&name) != ours.as_ref()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let done = dir.join(".complete");
    if done.exists() {
        return dir;
    }
    let tmp = dir.with_extension(format!("tmp{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("fixture folder");
    let output = Command::new(python())
        .args(["-c", script])
        .arg(&tmp)
        .arg(&dir)
        .output()
        .expect("running the venv's python");
    assert!(
        output.status.success(),
        "{family} fixture script failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(tmp.join(".complete"), b"").expect("marker");
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another test process made it first.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    dir
}
