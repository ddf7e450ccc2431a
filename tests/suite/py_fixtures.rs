//! Files made by real PyTorch 2.13.0 (the virtualenv of scripts/setup-libtorch, run through
//! `.kneecam-python`) for the tests: a Python script writes them once per version of the script
//! into cargo's target tmp folder, where later runs find them.
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::Digest;
use tch::{Kind, Tensor};

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
    make_from(family, script, None)
}

/// As [`make`], the script also given `input` (`python -c script TMP_DIR FINAL_DIR INPUT`):
/// `input.1`, a digest of what the input holds, is part of the folder's hash (its path is not),
/// so the fixtures are remade when the input changes and reused while it does not.
pub fn make_from(family: &str, script: &str, input: Option<(&Path, &str)>) -> PathBuf {
    let mut hasher = sha2::Sha256::new();
    hasher.update(script.as_bytes());
    if let Some((_, key)) = input {
        hasher.update(b"\0input\0");
        hasher.update(key.as_bytes());
    }
    let digest = hasher.finalize();
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
        .args(input.map(|(path, _)| path))
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

/// The tensor `name` of `dir/expected.safetensors` (what PyTorch computed).
pub fn expected(dir: &Path, name: &str) -> Tensor {
    Tensor::read_safetensors(dir.join("expected.safetensors"))
        .expect("expected.safetensors")
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t)
        .unwrap_or_else(|| panic!("no {name} in expected.safetensors"))
}

/// `found` equals PyTorch's `want` to 1e-4, relative to `want`'s largest magnitude (at least 1).
pub fn assert_close(found: &Tensor, want: &Tensor, what: &str) {
    assert_eq!(found.size(), want.size(), "{what}: shapes");
    let scale = want.abs().max().double_value(&[]).max(1.0);
    let diff = (found.to_kind(Kind::Float) - want)
        .abs()
        .max()
        .double_value(&[]);
    assert!(
        diff <= 1e-4 * scale,
        "{what}: differs from PyTorch's by {diff} (scale {scale})"
    );
}
