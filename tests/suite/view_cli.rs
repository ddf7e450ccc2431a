//! `kneecam view` and its config files through the binary: valid and invalid fixtures in
//! tests/configs, each invalid one named by file and key in the error.
use std::path::Path;

use assert_cmd::Command;
use predicates::str::contains;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs")
        .join(name)
        .display()
        .to_string()
}

fn view(config: &str, home: &Path) -> Command {
    let mut cmd = Command::cargo_bin("kneecam").expect("the binary");
    cmd.env("KNEECAM_CONFIG_DIR", home.join("config"))
        .env("KNEECAM_DATA_DIR", home.join("data"))
        .env("KNEECAM_CACHE_DIR", home.join("cache"))
        .args(["view", "--data"])
        .arg(home.join("no-such-dataset"))
        .args(["--models", "models/demo", "--config", config]);
    cmd
}

#[test]
fn invalid_configs_name_the_file_and_the_key() {
    let home = tempfile::tempdir().expect("tempdir");
    for (file, key) in [
        ("unknown-key.toml", "opactiy"),
        ("bad-value.toml", "view.threshold"),
        ("bad-key-binding.toml", "keys.quit"),
        ("key-conflict.toml", "already bound"),
        (
            "bad-enum.toml",
            "view.method: \"lime\": expected one of cam, contrib, gradcam, gradcam++",
        ),
    ] {
        view(&fixture(file), home.path())
            .assert()
            .failure()
            .stderr(contains(file))
            .stderr(contains(key));
    }
}

#[test]
fn a_valid_config_gets_as_far_as_the_dataset() {
    let home = tempfile::tempdir().expect("tempdir");
    view(&fixture("valid.toml"), home.path())
        .assert()
        .failure()
        .stderr(contains("no-such-dataset"));
}

#[test]
fn the_users_config_folder_is_read_and_checked() {
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(home.path().join("config")).expect("mkdir");
    std::fs::write(
        home.path().join("config").join("config.toml"),
        "[graphics]\nprotocol = \"vt52\"\n",
    )
    .expect("write");
    view(&fixture("valid.toml"), home.path())
        .assert()
        .failure()
        .stderr(contains("config.toml"))
        .stderr(contains("graphics.protocol"));
}

#[test]
fn a_missing_config_file_is_named() {
    let home = tempfile::tempdir().expect("tempdir");
    view("/nonexistent/kneecam.toml", home.path())
        .assert()
        .failure()
        .stderr(contains("/nonexistent/kneecam.toml"));
}

#[test]
fn without_a_terminal_the_explorer_says_so() {
    let home = tempfile::tempdir().expect("tempdir");
    let data = home.path().join("cohort");
    Command::cargo_bin("kneecam")
        .expect("the binary")
        .args(["synth", "--cases", "2", "--valid", "2", "--out"])
        .arg(&data)
        .assert()
        .success();
    let view_on = |data: &Path| {
        let mut cmd = Command::cargo_bin("kneecam").expect("the binary");
        cmd.env("KNEECAM_CONFIG_DIR", home.path().join("config"))
            .env("KNEECAM_DATA_DIR", home.path().join("data"))
            .args(["view", "--models", "models/demo", "--data"])
            .arg(data);
        cmd
    };
    view_on(&data)
        .assert()
        .failure()
        .stderr(contains("needs a terminal"));
    // A report that is not eval-cam's is refused before the terminal is looked at, by name.
    let report = home.path().join("report.json");
    std::fs::write(&report, "{\"rows\": [{\"task\": \"knee\"}]}").expect("written");
    view_on(&data)
        .arg("--eval-report")
        .arg(&report)
        .assert()
        .code(2)
        .stderr(contains("report.json: not an eval-cam report"));
}
