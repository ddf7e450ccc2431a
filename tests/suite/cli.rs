//! The binary as users run it.
use assert_cmd::Command;
use predicates::prelude::*;

fn kneecam() -> Command {
    let mut cmd = Command::cargo_bin("kneecam").expect("kneecam binary");
    let home = tempfile::tempdir().expect("temp home").keep();
    cmd.env("KNEECAM_DATA_DIR", home.join("data"))
        .env("KNEECAM_CACHE_DIR", home.join("cache"))
        .env("KNEECAM_CONFIG_DIR", home.join("config"));
    cmd
}

#[test]
fn help_lists_the_commands() {
    kneecam()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("doctor"))
        .stdout(predicate::str::contains("--device"));
}

#[test]
fn doctor_reports_libtorch_2_13_0_and_the_folders() {
    kneecam()
        .args(["doctor", "--device", "cpu"])
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"(?m)^libtorch\s+2\.13\.0 \(").expect("regex"))
        .stdout(predicate::str::contains("tensor op       ok"))
        .stdout(predicate::str::contains(
            "device          CPU (--device cpu)",
        ))
        .stdout(predicate::str::contains(
            "graphics        not queried (not a terminal)",
        ));
}

#[test]
fn doctor_runs_from_another_folder_with_an_empty_environment() {
    // No LD_LIBRARY_PATH, no LIBTORCH: the rpath alone must find libtorch.
    let mut cmd = Command::cargo_bin("kneecam").expect("kneecam binary");
    cmd.env_clear()
        .env(
            "KNEECAM_DATA_DIR",
            std::env::temp_dir().join("kneecam-doctor-clean-env"),
        )
        .current_dir(std::env::temp_dir())
        .arg("doctor")
        .assert()
        .success()
        .stdout(predicate::str::contains("2.13.0"));
}

#[test]
fn asking_for_cuda_without_cuda_fails_with_a_clear_message() {
    if tch::Cuda::is_available() {
        kneecam()
            .args(["doctor", "--device", "cuda"])
            .assert()
            .success();
        return;
    }
    kneecam()
        .args(["doctor", "--device", "cuda"])
        .assert()
        .failure()
        .code(1)
        .stderr(predicate::str::contains(
            "--device cuda:0: no CUDA device is available",
        ))
        .stderr(
            predicate::str::contains("use --device cpu")
                .and(predicate::str::contains("panicked").not()),
        );
}

#[test]
fn a_malformed_device_is_refused_by_the_parser() {
    kneecam()
        .args(["doctor", "--device", "cuda:x"])
        .assert()
        .failure()
        .code(2)
        .stderr(predicate::str::contains(
            "expected auto, cpu, cuda or cuda:N",
        ));
}
