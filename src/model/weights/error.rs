//! What can go wrong reading weights.
use std::path::PathBuf;

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
        "{}: not model weights ({what}); expected a .safetensors file, or a PyTorch file \
         saved with torch.save(model.state_dict(), path) or torch.save(model, path)",
        path.display()
    )]
    NotWeights { path: PathBuf, what: String },
    #[error(
        "{}: refused: loading this file with PyTorch would call {global} ({how}). kneecam \
         reads a pickle as data and calls nothing but PyTorch's own tensor-rebuilding functions \
         and containers; nothing in this file was run",
        path.display()
    )]
    Refused {
        path: PathBuf,
        global: String,
        how: &'static str,
    },
    #[error(
        "{}: PyTorch's legacy (pre-1.6) format, not readable: {why}",
        path.display()
    )]
    LegacyFormat { path: PathBuf, why: String },
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
