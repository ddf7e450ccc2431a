//! What can go wrong reading weights, and the command that converts a file kneecam refuses.
use std::path::{Path, PathBuf};

use tch::TchError;

use super::KeyProblem;

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// Causes are part of the messages, not `source`s, so an error chain says them once.
    #[error("{}: cannot read: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "{}: not model weights ({what}); expected a .safetensors file or a PyTorch state dict \
         saved with torch.save(model.state_dict(), path)",
        path.display()
    )]
    NotWeights { path: PathBuf, what: String },
    #[error(
        "{}: a pickled Python object (it refers to {}), not a plain state dict; kneecam never \
         runs pickled code. If you trust where the file came from, convert it once with:\n  {convert}",
        path.display(),
        list_globals(globals)
    )]
    PickledObject {
        path: PathBuf,
        globals: Vec<String>,
        convert: String,
    },
    #[error(
        "{}: PyTorch's legacy (pre-1.6) file format, which libtorch cannot read. If you trust \
         where the file came from, convert it once with:\n  {convert}",
        path.display()
    )]
    LegacyFormat { path: PathBuf, convert: String },
    #[error(
        "{}: a TorchScript module, not a state dict; load it through a manifest entry with \
         arch = \"torchscript\"",
        path.display()
    )]
    TorchScript { path: PathBuf },
    #[error("{}: cannot read its tensors: {message}", path.display())]
    Unreadable { path: PathBuf, message: String },
    #[error(
        "{}: does not match the model's parameters:\n  {}",
        path.display(),
        problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  ")
    )]
    Mismatch {
        path: PathBuf,
        problems: Vec<KeyProblem>,
    },
    #[error("{}: tensor {name} holds {count} NaN or infinite value(s)", path.display())]
    NonFinite {
        path: PathBuf,
        name: String,
        count: i64,
    },
    #[error("{}: copying {name} into the model failed: {error}", path.display())]
    Copy {
        path: PathBuf,
        name: String,
        error: TchError,
    },
}

fn list_globals(globals: &[String]) -> String {
    const SHOWN: usize = 4;
    let mut text = globals
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if globals.len() > SHOWN {
        text.push_str(&format!(" and {} more", globals.len() - SHOWN));
    }
    text
}

/// The command that converts a pickled model or legacy file at `path` to safetensors.
pub fn convert_command(path: &Path) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/export_state_dict.py");
    let script = if script.exists() {
        script.display().to_string()
    } else {
        "examples/export_state_dict.py".into()
    };
    format!(
        "{} {script} {} {}",
        venv_python().display(),
        path.display(),
        path.with_extension("safetensors").display()
    )
}

/// The Python of the virtualenv `scripts/setup-libtorch` makes (it has torch 2.13.0).
pub fn venv_python() -> PathBuf {
    let venv = match std::env::var_os("KNEECAM_TORCH_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(|| PathBuf::from("~/.cache"))
            .join("kneecam/torch-2.13.0"),
    };
    venv.join("bin/python")
}
