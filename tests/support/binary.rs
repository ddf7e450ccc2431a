//! The kneecam binary for CLI tests (included with `#[path]`), its folders under `home`.
#![allow(dead_code)]
use std::path::Path;

use assert_cmd::Command;

/// `kneecam --device cpu` with its config, data and cache folders under `home`.
pub fn kneecam(home: &Path) -> Command {
    let mut cmd = Command::cargo_bin("kneecam").expect("binary");
    cmd.env("KNEECAM_CONFIG_DIR", home.join("config"))
        .env("KNEECAM_DATA_DIR", home.join("data"))
        .env("KNEECAM_CACHE_DIR", home.join("cache"))
        .args(["--device", "cpu"]);
    cmd
}
