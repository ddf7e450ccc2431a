//! `kneecam doctor`: what kneecam runs on, and what to do when something essential is missing.
use std::io::IsTerminal;
use std::process::ExitCode;

use crate::model::device::{self, DeviceChoice};
use crate::model::libtorch;
use crate::paths::Folders;

/// One line of the report, and whether kneecam can work without it.
struct Finding {
    key: &'static str,
    value: String,
    problem: Option<String>,
}

fn fact(key: &'static str, value: impl Into<String>) -> Finding {
    Finding {
        key,
        value: value.into(),
        problem: None,
    }
}

pub fn run(device: DeviceChoice) -> anyhow::Result<ExitCode> {
    let mut findings = vec![fact("kneecam", env!("CARGO_PKG_VERSION"))];
    findings.extend(libtorch_findings());
    findings.extend(cuda_findings());
    findings.push(fact("cpu threads", tch::get_num_threads().to_string()));
    findings.push(device_finding(device));
    findings.extend(folder_findings());
    findings.push(fact("graphics", graphics_protocol()));

    let width = findings.iter().map(|f| f.key.len()).max().unwrap_or(0);
    for f in &findings {
        println!("{:width$}  {}", f.key, f.value);
    }
    let problems: Vec<&String> = findings.iter().filter_map(|f| f.problem.as_ref()).collect();
    if problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for problem in problems {
        eprintln!("problem: {problem}");
    }
    Ok(ExitCode::FAILURE)
}

fn libtorch_findings() -> Vec<Finding> {
    let sanity = tch::Tensor::f_arange(5, (tch::Kind::Int64, tch::Device::Cpu))
        .and_then(|t| t.f_sum(tch::Kind::Int64))
        .and_then(i64::try_from);
    let (version, dir) = libtorch::loaded();
    let mut version_line = fact("libtorch", format!("{version} ({})", dir.display()));
    if version != libtorch::BUILT_VERSION {
        version_line.problem = Some(format!(
            "libtorch {version} is loaded but kneecam was built for {}: run scripts/setup-libtorch, then cargo build",
            libtorch::BUILT_VERSION
        ));
    }
    let mut op_line = fact("tensor op", "ok (sum 0..5 = 10)");
    match sanity {
        Ok(10) => {}
        other => {
            op_line.value = format!("FAILED: {other:?}");
            op_line.problem =
                Some("a libtorch tensor op failed: run scripts/setup-libtorch".into());
        }
    }
    vec![version_line, op_line]
}

fn cuda_findings() -> Vec<Finding> {
    let linked = if libtorch::linked_with_cuda() {
        format!(
            "yes (libtorch_cuda.so {})",
            if libtorch::cuda_library_loaded() {
                "loaded"
            } else {
                "NOT loaded"
            }
        )
    } else {
        "no (CPU-only libtorch)".into()
    };
    let count = tch::Cuda::device_count();
    let mut findings = vec![
        fact("cuda build", linked),
        fact(
            "cuda available",
            format!("{} ({count} device(s))", tch::Cuda::is_available()),
        ),
    ];
    if count > 0 {
        let names = libtorch::cuda_driver_names().unwrap_or_default();
        for (i, name) in names.iter().enumerate() {
            findings.push(fact("cuda device", format!("cuda:{i} {name}")));
        }
        let cudnn = if tch::Cuda::cudnn_is_available() {
            format!("yes (version {})", tch::utils::version_cudnn())
        } else {
            "no".into()
        };
        findings.push(fact("cudnn", cudnn));
    }
    findings
}

fn device_finding(choice: DeviceChoice) -> Finding {
    match choice.resolve() {
        Ok(dev) => fact(
            "device",
            format!("{} (--device {choice})", device::describe(dev)),
        ),
        Err(err) => Finding {
            key: "device",
            value: format!("unavailable (--device {choice})"),
            problem: Some(err.to_string()),
        },
    }
}

fn folder_findings() -> Vec<Finding> {
    match Folders::locate() {
        Ok(folders) => vec![
            fact("config folder", folders.config.display().to_string()),
            fact("cache folder", folders.cache.display().to_string()),
            fact("data folder", folders.data.display().to_string()),
            fact("log file", folders.log_file().display().to_string()),
        ],
        Err(err) => vec![fact("folders", format!("unavailable: {err}"))],
    }
}

fn graphics_protocol() -> String {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return "not queried (not a terminal)".into();
    }
    match ratatui_image::picker::Picker::from_query_stdio() {
        Ok(picker) => {
            let font = picker.font_size();
            let tmux = if picker.tmux_detected() {
                ", inside tmux"
            } else {
                ""
            };
            format!(
                "{:?} (cell {}x{} px{tmux})",
                picker.protocol_type(),
                font.width,
                font.height
            )
        }
        Err(err) => format!("query failed ({err}); halfblocks"),
    }
}
