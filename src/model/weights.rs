//! Reading MRNet-style weights into a [`VarStore`]: `.safetensors` files and PyTorch state dicts
//! saved with `torch.save(model.state_dict(), path)` (a zip archive holding `*/data.pkl` and the
//! raw tensor data).
//!
//! Nothing pickled is ever executed. A zip archive's `data.pkl` is first walked opcode by opcode
//! (without building any object) and must refer only to the few globals a plain state dict uses
//! (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`, `torch.*Storage`); anything
//! else (a whole pickled module such as `__main__.MRNet`, `torch.nn.modules.conv.Conv2d`, a
//! checkpoint with NumPy scalars) is refused with the command that converts it once, by the
//! user's choice, with PyTorch itself (`examples/export_state_dict.py`). Only then is the file
//! handed to libtorch's C++ reader, which rebuilds tensors and runs no Python.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use tch::{nn, Kind, TchError, Tensor};

use super::mrnet::CLASSIFIER;

/// The conventional spelling of the final layer, accepted for the reference code's `classifer`.
const CLASSIFIER_ALIAS: &str = "classifier";
/// torchvision AlexNet's own head, kept in MRNet state dicts but never used by MRNet.
const UNUSED_ALEXNET_HEAD: &str = "pretrained_model.classifier.";
/// `nn.DataParallel` prefixes every key with this.
const DATA_PARALLEL_PREFIX: &str = "module.";
/// A state dict's `data.pkl` is a few kilobytes; refuse to read absurd ones into memory.
const MAX_PICKLE_BYTES: u64 = 64 << 20;

/// What a file holds, judged from its bytes (never from its name) without running anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    /// A `.safetensors` file (8-byte header length, then a JSON header).
    Safetensors,
    /// A PyTorch zip archive whose `data.pkl` refers only to state-dict globals.
    StateDict,
    /// A PyTorch zip archive pickling Python objects: these globals besides tensors.
    PickledObject { globals: Vec<String> },
    /// A TorchScript archive (`torch.jit.save`): has `code/` or `constants.pkl`.
    TorchScript,
    /// PyTorch's pre-1.6 serialization (a bare pickle stream with torch's magic number).
    LegacyTorch,
    /// Anything else, described for people: "a NumPy .npy array", "a text file", …
    Other(String),
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileKind::Safetensors => write!(f, "a safetensors file"),
            FileKind::StateDict => write!(f, "a PyTorch state dict"),
            FileKind::PickledObject { .. } => write!(f, "a pickled PyTorch object"),
            FileKind::TorchScript => write!(f, "a TorchScript module"),
            FileKind::LegacyTorch => write!(f, "a PyTorch file in the legacy (pre-1.6) format"),
            FileKind::Other(what) => write!(f, "{what}"),
        }
    }
}

/// One way a file's tensors differ from the model's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    Missing {
        name: String,
        expected: Vec<i64>,
    },
    Unexpected {
        name: String,
        found: Vec<i64>,
    },
    Shape {
        name: String,
        expected: Vec<i64>,
        found: Vec<i64>,
    },
    NotFloat {
        name: String,
        kind: String,
    },
    /// Two keys of the file map to the same parameter (e.g. `classifer.*` and `classifier.*`).
    Duplicate {
        name: String,
        keys: Vec<String>,
    },
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::Missing { name, expected } => {
                write!(f, "missing {name} (expected shape {expected:?})")
            }
            KeyProblem::Unexpected { name, found } => {
                write!(f, "unexpected {name} (shape {found:?})")
            }
            KeyProblem::Shape {
                name,
                expected,
                found,
            } => write!(
                f,
                "wrong shape for {name}: expected {expected:?}, found {found:?}"
            ),
            KeyProblem::NotFloat { name, kind } => {
                write!(f, "{name} holds {kind}, expected floating-point values")
            }
            KeyProblem::Duplicate { name, keys } => {
                write!(f, "{name} is given twice, as {}", keys.join(" and "))
            }
        }
    }
}

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

/// A file's tensors, with MRNet's key spellings normalised: a `module.` prefix dropped,
/// `classifier.*` read as `classifer.*`, AlexNet's unused `pretrained_model.classifier.*` left out.
/// Values are checked finite; dtypes are as stored.
#[derive(Debug)]
pub struct StateDict {
    path: PathBuf,
    tensors: BTreeMap<String, Tensor>,
    problems: Vec<KeyProblem>,
}

impl StateDict {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// Outputs of the final linear layer (rows of `classifer.weight`), when it is there.
    pub fn classes(&self) -> Option<i64> {
        let weight = self.tensors.get(&format!("{CLASSIFIER}.weight"))?;
        (weight.dim() == 2).then(|| weight.size()[0])
    }

    /// Copies every tensor into the variable of the same name, as float32 on the variable's
    /// device. The names and shapes must match exactly; all differences are reported at once.
    pub fn copy_into(&self, vs: &mut nn::VarStore) -> Result<(), WeightsError> {
        let variables = vs.variables();
        let mut problems = self.problems.clone();
        for (name, var) in &variables {
            match self.tensors.get(name) {
                None => problems.push(KeyProblem::Missing {
                    name: name.clone(),
                    expected: var.size(),
                }),
                Some(t) if t.size() != var.size() => problems.push(KeyProblem::Shape {
                    name: name.clone(),
                    expected: var.size(),
                    found: t.size(),
                }),
                Some(_) => {}
            }
        }
        for (name, t) in &self.tensors {
            if !variables.contains_key(name) {
                problems.push(KeyProblem::Unexpected {
                    name: name.clone(),
                    found: t.size(),
                });
            }
        }
        if !problems.is_empty() {
            problems.sort_by_key(problem_order);
            return Err(WeightsError::Mismatch {
                path: self.path.clone(),
                problems,
            });
        }
        tch::no_grad(|| {
            for (name, var) in &variables {
                let Some(src) = self.tensors.get(name) else {
                    continue;
                };
                let mut var = var.shallow_clone();
                src.f_to_kind(Kind::Float)
                    .and_then(|src| var.f_copy_(&src))
                    .map_err(|error| WeightsError::Copy {
                        path: self.path.clone(),
                        name: name.clone(),
                        error,
                    })?;
            }
            Ok(())
        })
    }
}

fn problem_order(problem: &KeyProblem) -> (u8, String) {
    match problem {
        KeyProblem::Missing { name, .. } => (0, name.clone()),
        KeyProblem::Shape { name, .. } => (1, name.clone()),
        KeyProblem::NotFloat { name, .. } => (2, name.clone()),
        KeyProblem::Duplicate { name, .. } => (3, name.clone()),
        KeyProblem::Unexpected { name, .. } => (4, name.clone()),
    }
}

/// Reads `path` (safetensors or a PyTorch state dict) into the variables of `vs`, an MRNet's
/// var store (`pretrained_model.features.{0,3,6,8,10}.*`, `classifer.*`).
pub fn load_state_dict(vs: &mut nn::VarStore, path: &Path) -> Result<(), WeightsError> {
    read_state_dict(path)?.copy_into(vs)
}

/// Reads the tensors of a safetensors file or PyTorch state dict, on the CPU.
pub fn read_state_dict(path: &Path) -> Result<StateDict, WeightsError> {
    let raw = match inspect(path)? {
        FileKind::Safetensors => Tensor::read_safetensors(path).map_err(|e| unreadable(path, e))?,
        FileKind::StateDict => read_torch_zip(path)?,
        FileKind::PickledObject { globals } => {
            return Err(WeightsError::PickledObject {
                path: path.to_path_buf(),
                globals,
                convert: convert_command(path),
            })
        }
        FileKind::LegacyTorch => {
            return Err(WeightsError::LegacyFormat {
                path: path.to_path_buf(),
                convert: convert_command(path),
            })
        }
        FileKind::TorchScript => {
            return Err(WeightsError::TorchScript {
                path: path.to_path_buf(),
            })
        }
        FileKind::Other(what) => {
            return Err(WeightsError::NotWeights {
                path: path.to_path_buf(),
                what,
            })
        }
    };
    if raw.is_empty() {
        return Err(WeightsError::NotWeights {
            path: path.to_path_buf(),
            what: "it holds no tensors".into(),
        });
    }
    let state = normalise(path, raw);
    for (name, t) in &state.tensors {
        if t.is_floating_point() {
            let bad = t
                .f_isfinite()
                .and_then(|finite| finite.logical_not().f_sum(Kind::Int64))
                .and_then(|n| i64::try_from(&n))
                .map_err(|e| unreadable(path, e))?;
            if bad > 0 {
                return Err(WeightsError::NonFinite {
                    path: path.to_path_buf(),
                    name: name.clone(),
                    count: bad,
                });
            }
        }
    }
    Ok(state)
}

fn unreadable(path: &Path, e: TchError) -> WeightsError {
    // libtorch appends a C++ backtrace to its messages; the first line says what went wrong.
    let message = e.to_string();
    let message = message.lines().next().unwrap_or_default().to_string();
    WeightsError::Unreadable {
        path: path.to_path_buf(),
        message,
    }
}

fn normalise(path: &Path, raw: Vec<(String, Tensor)>) -> StateDict {
    let data_parallel = raw
        .iter()
        .all(|(name, _)| name.starts_with(DATA_PARALLEL_PREFIX));
    let mut sources: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut tensors = BTreeMap::new();
    let mut problems = Vec::new();
    for (key, t) in raw {
        let name = if data_parallel {
            &key[DATA_PARALLEL_PREFIX.len()..]
        } else {
            key.as_str()
        };
        if name.starts_with(UNUSED_ALEXNET_HEAD) {
            continue;
        }
        let name = match name.strip_prefix(CLASSIFIER_ALIAS) {
            Some(rest) if rest.starts_with('.') => format!("{CLASSIFIER}{rest}"),
            _ => name.to_string(),
        };
        if !t.is_floating_point() {
            problems.push(KeyProblem::NotFloat {
                name: key.clone(),
                kind: format!("{:?}", t.kind()).to_lowercase(),
            });
        }
        sources.entry(name.clone()).or_default().push(key);
        tensors.insert(name, t);
    }
    for (name, keys) in sources {
        if keys.len() > 1 {
            problems.push(KeyProblem::Duplicate { name, keys });
        }
    }
    StateDict {
        path: path.to_path_buf(),
        tensors,
        problems,
    }
}

/// Says what `path` holds from its bytes, reading at most its zip directory and `data.pkl`.
pub fn inspect(path: &Path) -> Result<FileKind, WeightsError> {
    let io = |error| WeightsError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut head = Vec::with_capacity(512);
    (&mut file).take(512).read_to_end(&mut head).map_err(io)?;
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return inspect_zip(path, file);
    }
    Ok(kind_of_bytes(&head))
}

fn kind_of_bytes(head: &[u8]) -> FileKind {
    if head.len() >= 10 && head[8] == b'{' {
        return FileKind::Safetensors;
    }
    // torch.save's legacy format starts with the pickled magic number 0x1950a86a20f9469cfc6c.
    if head.starts_with(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19") {
        return FileKind::LegacyTorch;
    }
    let what = if head.is_empty() {
        "the file is empty".to_string()
    } else if head.starts_with(b"\x93NUMPY") {
        "a NumPy .npy array".into()
    } else if head.first() == Some(&0x80) {
        "a bare Python pickle".into()
    } else if head.starts_with(b"\x89HDF") {
        "an HDF5 file (Keras?)".into()
    } else if std::str::from_utf8(head).is_ok_and(|s| {
        s.chars()
            .all(|c| !c.is_control() || c.is_ascii_whitespace())
    }) {
        "a text file".into()
    } else {
        "unrecognised binary data".into()
    };
    FileKind::Other(what)
}

/// A PyTorch zip archive opened far enough to judge it: the folder its records live in and
/// the bytes of its `data.pkl`, or why it is not a PyTorch state dict or module.
struct TorchZip {
    archive: zip::ZipArchive<File>,
    prefix: String,
    pickle: Vec<u8>,
}

enum ZipVerdict {
    Torch(TorchZip),
    Kind(FileKind),
}

fn open_torch_zip(path: &Path, file: File) -> Result<ZipVerdict, WeightsError> {
    let not_torch = |why: String| {
        Ok(ZipVerdict::Kind(FileKind::Other(format!(
            "a zip archive that is not a PyTorch file: {why}"
        ))))
    };
    let mut archive = match zip::ZipArchive::new(file) {
        Ok(archive) => archive,
        Err(e) => return not_torch(e.to_string()),
    };
    let names: Vec<String> = archive.file_names().map(str::to_string).collect();
    let is_record = |name: &str, record: &str| {
        name.split_once('/')
            .is_some_and(|(_, rest)| rest == record || rest.starts_with(&format!("{record}/")))
    };
    if names
        .iter()
        .any(|n| is_record(n, "code") || is_record(n, "constants.pkl"))
    {
        return Ok(ZipVerdict::Kind(FileKind::TorchScript));
    }
    let Some(pkl) = names.iter().find(|n| is_record(n, "data.pkl")) else {
        return not_torch("no */data.pkl inside".into());
    };
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    let mut entry = match archive.by_name(pkl) {
        Ok(entry) => entry,
        Err(e) => return not_torch(format!("{pkl}: {e}")),
    };
    if entry.size() > MAX_PICKLE_BYTES {
        return not_torch(format!("{pkl} is {} bytes", entry.size()));
    }
    // Bounded by what is read too: a stored entry reads its compressed size, not its declared one.
    let mut pickle = Vec::new();
    (&mut entry)
        .take(MAX_PICKLE_BYTES + 1)
        .read_to_end(&mut pickle)
        .map_err(|error| WeightsError::Io {
            path: path.to_path_buf(),
            error,
        })?;
    if pickle.len() as u64 > MAX_PICKLE_BYTES {
        return not_torch(format!("{pkl} is larger than {MAX_PICKLE_BYTES} bytes"));
    }
    drop(entry);
    Ok(ZipVerdict::Torch(TorchZip {
        archive,
        prefix,
        pickle,
    }))
}

fn inspect_zip(path: &Path, file: File) -> Result<FileKind, WeightsError> {
    let zip = match open_torch_zip(path, file)? {
        ZipVerdict::Kind(kind) => return Ok(kind),
        ZipVerdict::Torch(zip) => zip,
    };
    Ok(match pickle_globals(&zip.pickle) {
        Err(why) => FileKind::Other(format!("a zip archive with an unreadable data.pkl: {why}")),
        Ok(globals) => {
            let foreign: Vec<String> = globals
                .into_iter()
                .filter(|g| !is_state_dict_global(g))
                .collect();
            if foreign.is_empty() {
                FileKind::StateDict
            } else {
                FileKind::PickledObject { globals: foreign }
            }
        }
    })
}

/// The tensors of a PyTorch zip state dict, rebuilt on the CPU by kneecam's own restricted
/// unpickler: it knows dicts, tuples, lists, scalars, strings and the three state-dict globals,
/// and builds nothing else. (libtorch's `_load_parameters`, behind tch's `Tensor::loadz_multi`
/// and `VarStore::load`, fails on the `OrderedDict` every `state_dict()` is.)
fn read_torch_zip(path: &Path) -> Result<Vec<(String, Tensor)>, WeightsError> {
    let fail = |message: String| WeightsError::Unreadable {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(|error| WeightsError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let mut zip = match open_torch_zip(path, file)? {
        ZipVerdict::Torch(zip) => zip,
        ZipVerdict::Kind(kind) => return Err(fail(format!("it is {kind}"))),
    };
    let byteorder = read_record(&mut zip, "byteorder", 16).unwrap_or_else(|_| b"little".to_vec());
    if byteorder.trim_ascii() != b"little" {
        return Err(fail(format!(
            "tensors stored {} endian; only little-endian files are read",
            String::from_utf8_lossy(&byteorder).trim()
        )));
    }
    let value = unpickle::run(&zip.pickle).map_err(|e| fail(format!("data.pkl: {e}")))?;
    let entries = unpickle::state_dict_entries(value).map_err(fail)?;
    let mut storages: BTreeMap<String, Tensor> = BTreeMap::new();
    let mut tensors = Vec::with_capacity(entries.len());
    for (name, t) in entries {
        let base = match storages.get(&t.storage.key) {
            Some(base) => base.shallow_clone(),
            None => {
                let bytes_per = t.storage.kind.elt_size_in_bytes() as u64;
                let want = u64::try_from(t.storage.numel)
                    .ok()
                    .and_then(|n| n.checked_mul(bytes_per))
                    .ok_or_else(|| fail(format!("{name}: absurd storage size")))?;
                let record = format!("data/{}", t.storage.key);
                let bytes = read_record(&mut zip, &record, want)
                    .map_err(|e| fail(format!("{name}: {e}")))?;
                if bytes.len() as u64 != want {
                    return Err(fail(format!(
                        "{name}: {}{record} holds {} bytes, expected {want} ({} × {:?})",
                        zip.prefix,
                        bytes.len(),
                        t.storage.numel,
                        t.storage.kind
                    )));
                }
                let base = Tensor::f_from_data_size(&bytes, &[t.storage.numel], t.storage.kind)
                    .map_err(|e| fail(format!("{name}: {e}")))?;
                storages.insert(t.storage.key.clone(), base.shallow_clone());
                base
            }
        };
        if !t.fits() {
            return Err(fail(format!(
                "{name}: shape {:?}, stride {:?} and offset {} reach past its storage of {} values",
                t.size, t.stride, t.offset, t.storage.numel
            )));
        }
        let tensor = base
            .f_as_strided(t.size.as_slice(), t.stride.as_slice(), t.offset)
            .and_then(|v| v.f_contiguous())
            .map_err(|e| fail(format!("{name}: {e}")))?;
        tensors.push((name, tensor));
    }
    Ok(tensors)
}

/// Reads `{prefix}{record}` whole, refusing one larger than `limit` bytes.
fn read_record(zip: &mut TorchZip, record: &str, limit: u64) -> Result<Vec<u8>, String> {
    let name = format!("{}{record}", zip.prefix);
    let mut entry = zip
        .archive
        .by_name(&name)
        .map_err(|e| format!("{name}: {e}"))?;
    read_bounded(&mut entry, &name, limit)
}

/// Reads a zip entry of at most `limit` bytes. The bound is on what is read, not on the size
/// the entry declares: a stored entry reads its compressed size, which a crafted archive can
/// make larger than the declared one.
pub(crate) fn read_bounded(entry: impl Read, name: &str, limit: u64) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    entry
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{name}: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("{name} is larger than {limit} bytes"));
    }
    Ok(bytes)
}

/// The globals a plain state dict refers to; the restricted unpickler knows exactly these.
fn is_state_dict_global(global: &str) -> bool {
    matches!(
        global,
        "collections.OrderedDict"
            | "torch._utils._rebuild_tensor_v2"
            | "torch._utils._rebuild_parameter"
            | "torch._utils._rebuild_parameter_with_state"
    ) || unpickle::storage_kind(global).is_some()
}

/// Every global (`module.name`) a pickle refers to, in first-seen order, found by walking its
/// opcodes without building or calling anything.
fn pickle_globals(bytes: &[u8]) -> Result<Vec<String>, String> {
    let mut globals: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    // Just enough of the stack to resolve STACK_GLOBAL: the string (or not) each push left.
    let mut recent: Vec<Option<String>> = Vec::new();
    let mut memo: BTreeMap<u64, Option<String>> = BTreeMap::new();
    let mut reader = unpickle::Reader::new(bytes);
    let mut add = |global: String, globals: &mut Vec<String>| {
        if seen.insert(global.clone()) {
            globals.push(global);
        }
    };
    loop {
        let op = reader.op()?;
        let pushed: Option<Option<String>> = match op {
            unpickle::Op::Stop => break,
            unpickle::Op::Memoize => {
                let top = recent.last().cloned().flatten();
                memo.insert(memo.len() as u64, top);
                None
            }
            unpickle::Op::Put(index) => {
                memo.insert(index, recent.last().cloned().flatten());
                None
            }
            unpickle::Op::Get(index) => Some(memo.get(&index).cloned().flatten()),
            unpickle::Op::StackGlobal => {
                let name = recent.pop().flatten();
                let module = recent.pop().flatten();
                match (module, name) {
                    (Some(m), Some(n)) => add(format!("{m}.{n}"), &mut globals),
                    _ => add("<unresolved STACK_GLOBAL>".into(), &mut globals),
                }
                Some(None)
            }
            unpickle::Op::Global(module, name) | unpickle::Op::Inst(module, name) => {
                add(format!("{module}.{name}"), &mut globals);
                Some(None)
            }
            unpickle::Op::Ext(code) => {
                add(format!("<extension {code}>"), &mut globals);
                Some(None)
            }
            unpickle::Op::Str(s) => Some(Some(s)),
            unpickle::Op::Proto | unpickle::Op::Frame => None,
            _ => Some(None),
        };
        if let Some(value) = pushed {
            recent.push(value);
            if recent.len() > 64 {
                recent.remove(0);
            }
        }
    }
    Ok(globals)
}

/// A small pickle machine for state dicts: it decodes every opcode of protocols 0–5, but builds
/// only plain data (dicts, lists, tuples, numbers, strings), storages named by persistent ids
/// and tensors from `torch._utils._rebuild_tensor_v2`. Any other global, object construction
/// or extension is an error; nothing is ever imported, called or executed.
mod unpickle {
    use std::collections::BTreeMap;
    use tch::Kind;

    /// One decoded opcode with its argument.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Op {
        Proto,
        Frame,
        Stop,
        Mark,
        Pop,
        PopMark,
        Dup,
        None,
        Bool(bool),
        Int(i64),
        Float(f64),
        Str(String),
        Bytes,
        EmptyTuple,
        Tuple(usize),
        TupleMark,
        EmptyList,
        Append,
        Appends,
        ListMark,
        EmptyDict,
        SetItem,
        SetItems,
        DictMark,
        EmptySet,
        AddItems,
        FrozenSet,
        Put(u64),
        Memoize,
        Get(u64),
        Global(String, String),
        StackGlobal,
        Reduce,
        Build,
        BinPersId,
        PersId,
        Inst(String, String),
        Obj,
        NewObj,
        NewObjEx,
        Ext(u64),
        NextBuffer,
        ReadOnlyBuffer,
    }

    pub struct Reader<'a> {
        bytes: &'a [u8],
        pos: usize,
    }

    impl<'a> Reader<'a> {
        pub fn new(bytes: &'a [u8]) -> Self {
            Reader { bytes, pos: 0 }
        }

        fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
            let end = self
                .pos
                .checked_add(n)
                .filter(|&end| end <= self.bytes.len())
                .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
            let slice = &self.bytes[self.pos..end];
            self.pos = end;
            Ok(slice)
        }

        fn uint(&mut self, n: usize) -> Result<u64, String> {
            Ok(self
                .take(n)?
                .iter()
                .rev()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
        }

        fn len(&mut self, n: usize) -> Result<usize, String> {
            let len = self.uint(n)?;
            usize::try_from(len).map_err(|_| format!("absurd length {len}"))
        }

        fn line(&mut self) -> Result<String, String> {
            let rest = &self.bytes[self.pos..];
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .ok_or_else(|| format!("unterminated line at byte {}", self.pos))?;
            self.pos += end + 1;
            Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
        }

        fn text(&mut self, width: usize) -> Result<String, String> {
            let len = self.len(width)?;
            Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
        }

        fn skip(&mut self, width: usize) -> Result<Op, String> {
            let len = self.len(width)?;
            self.take(len)?;
            Ok(Op::Bytes)
        }

        pub fn op(&mut self) -> Result<Op, String> {
            let at = self.pos;
            let code = self.take(1)?.first().copied().unwrap_or_default();
            Ok(match code {
                0x80 => {
                    self.take(1)?;
                    Op::Proto
                }
                0x95 => {
                    self.take(8)?;
                    Op::Frame
                }
                b'.' => Op::Stop,
                b'(' => Op::Mark,
                b'0' => Op::Pop,
                b'1' => Op::PopMark,
                b'2' => Op::Dup,
                b'N' => Op::None,
                0x88 => Op::Bool(true),
                0x89 => Op::Bool(false),
                b'K' => Op::Int(self.uint(1)? as i64),
                b'M' => Op::Int(self.uint(2)? as i64),
                b'J' => Op::Int(i64::from(self.uint(4)? as u32 as i32)),
                0x8a | 0x8b => {
                    let len = self.len(if code == 0x8a { 1 } else { 4 })?;
                    let data = self.take(len)?;
                    if len > 8 {
                        return Err(format!("integer of {len} bytes at byte {at}"));
                    }
                    let mut value = data
                        .iter()
                        .rev()
                        .fold(0i128, |acc, &b| (acc << 8) | i128::from(b));
                    if len > 0 && data[len - 1] & 0x80 != 0 {
                        value -= 1i128 << (8 * len);
                    }
                    Op::Int(
                        i64::try_from(value)
                            .map_err(|_| format!("integer overflow at byte {at}"))?,
                    )
                }
                b'I' | b'L' => {
                    let line = self.line()?;
                    let digits = line.trim().trim_end_matches('L');
                    match digits {
                        "01" if code == b'I' => Op::Bool(true),
                        "00" if code == b'I' => Op::Bool(false),
                        _ => Op::Int(
                            digits
                                .parse()
                                .map_err(|_| format!("bad integer '{line}' at byte {at}"))?,
                        ),
                    }
                }
                b'G' => {
                    let raw = self.take(8)?;
                    let mut be = [0u8; 8];
                    be.copy_from_slice(raw);
                    Op::Float(f64::from_be_bytes(be))
                }
                b'F' => {
                    let line = self.line()?;
                    Op::Float(
                        line.trim()
                            .parse()
                            .map_err(|_| format!("bad float '{line}' at byte {at}"))?,
                    )
                }
                b'X' | b'T' => Op::Str(self.text(4)?),
                0x8c | b'U' => Op::Str(self.text(1)?),
                0x8d => Op::Str(self.text(8)?),
                b'V' => Op::Str(self.line()?),
                b'S' => Op::Str(self.line()?.trim().trim_matches(['\'', '"']).to_string()),
                b'C' => self.skip(1)?,
                b'B' => self.skip(4)?,
                0x8e | 0x96 => self.skip(8)?,
                b')' => Op::EmptyTuple,
                0x85 => Op::Tuple(1),
                0x86 => Op::Tuple(2),
                0x87 => Op::Tuple(3),
                b't' => Op::TupleMark,
                b']' => Op::EmptyList,
                b'a' => Op::Append,
                b'e' => Op::Appends,
                b'l' => Op::ListMark,
                b'}' => Op::EmptyDict,
                b's' => Op::SetItem,
                b'u' => Op::SetItems,
                b'd' => Op::DictMark,
                0x8f => Op::EmptySet,
                0x90 => Op::AddItems,
                0x91 => Op::FrozenSet,
                b'q' => Op::Put(self.uint(1)?),
                b'r' => Op::Put(self.uint(4)?),
                b'p' => Op::Put(
                    self.line()?
                        .trim()
                        .parse()
                        .map_err(|_| format!("bad PUT at byte {at}"))?,
                ),
                0x94 => Op::Memoize,
                b'h' => Op::Get(self.uint(1)?),
                b'j' => Op::Get(self.uint(4)?),
                b'g' => Op::Get(
                    self.line()?
                        .trim()
                        .parse()
                        .map_err(|_| format!("bad GET at byte {at}"))?,
                ),
                b'c' => {
                    let module = self.line()?;
                    Op::Global(module, self.line()?)
                }
                b'i' => {
                    let module = self.line()?;
                    Op::Inst(module, self.line()?)
                }
                0x93 => Op::StackGlobal,
                b'R' => Op::Reduce,
                b'b' => Op::Build,
                b'Q' => Op::BinPersId,
                b'P' => {
                    self.line()?;
                    Op::PersId
                }
                b'o' => Op::Obj,
                0x81 => Op::NewObj,
                0x92 => Op::NewObjEx,
                0x82 => Op::Ext(self.uint(1)?),
                0x83 => Op::Ext(self.uint(2)?),
                0x84 => Op::Ext(self.uint(4)?),
                0x97 => Op::NextBuffer,
                0x98 => Op::ReadOnlyBuffer,
                other => return Err(format!("unknown opcode 0x{other:02x} at byte {at}")),
            })
        }
    }

    /// The dtype of a `torch.*Storage` class name.
    pub fn storage_kind(global: &str) -> Option<Kind> {
        Some(match global.strip_prefix("torch.")? {
            "FloatStorage" => Kind::Float,
            "DoubleStorage" => Kind::Double,
            "HalfStorage" => Kind::Half,
            "BFloat16Storage" => Kind::BFloat16,
            "LongStorage" => Kind::Int64,
            "IntStorage" => Kind::Int,
            "ShortStorage" => Kind::Int16,
            "CharStorage" => Kind::Int8,
            "ByteStorage" => Kind::Uint8,
            "BoolStorage" => Kind::Bool,
            _ => return None,
        })
    }

    #[derive(Debug, Clone, PartialEq)]
    pub struct StorageRef {
        pub kind: Kind,
        pub key: String,
        pub numel: i64,
    }

    #[derive(Debug, Clone, PartialEq)]
    pub struct TensorRef {
        pub storage: StorageRef,
        pub offset: i64,
        pub size: Vec<i64>,
        pub stride: Vec<i64>,
    }

    impl TensorRef {
        /// Whether every element the view addresses lies inside its storage.
        pub fn fits(&self) -> bool {
            if self.size.len() != self.stride.len()
                || self.offset < 0
                || self.size.iter().chain(&self.stride).any(|&v| v < 0)
            {
                return false;
            }
            if self.size.contains(&0) {
                return self.offset <= self.storage.numel;
            }
            let last = self
                .size
                .iter()
                .zip(&self.stride)
                .try_fold(self.offset, |acc, (&n, &s)| {
                    (n - 1).checked_mul(s).and_then(|d| acc.checked_add(d))
                });
            last.is_some_and(|last| last < self.storage.numel)
        }
    }

    #[derive(Debug, Clone, PartialEq)]
    pub enum Value {
        Mark,
        None,
        Bool(bool),
        Int(i64),
        Float(f64),
        Str(String),
        Bytes,
        Tuple(Vec<Value>),
        List(Vec<Value>),
        Dict(Vec<(Value, Value)>),
        Global(String),
        Storage(StorageRef),
        Tensor(TensorRef),
    }

    impl Value {
        fn describe(&self) -> &'static str {
            match self {
                Value::Mark => "a mark",
                Value::None => "None",
                Value::Bool(_) => "a bool",
                Value::Int(_) => "an int",
                Value::Float(_) => "a float",
                Value::Str(_) => "a string",
                Value::Bytes => "bytes",
                Value::Tuple(_) => "a tuple",
                Value::List(_) => "a list",
                Value::Dict(_) => "a dict",
                Value::Global(_) => "a global",
                Value::Storage(_) => "a storage",
                Value::Tensor(_) => "a tensor",
            }
        }

        /// Nodes in this value, counted only up to `limit`.
        fn nodes(&self, limit: usize) -> usize {
            let children: &[Value] = match self {
                Value::Tuple(v) | Value::List(v) => v,
                Value::Dict(pairs) => {
                    let mut n = 1;
                    for (k, v) in pairs {
                        if n >= limit {
                            break;
                        }
                        n += k.nodes(limit - n);
                        n += v.nodes(limit.saturating_sub(n));
                    }
                    return n;
                }
                _ => return 1,
            };
            let mut n = 1;
            for child in children {
                if n >= limit {
                    break;
                }
                n += child.nodes(limit - n);
            }
            n
        }
    }

    /// Copies made by memo gets are bounded, so a small pickle cannot expand into a huge value.
    const COPY_BUDGET: usize = 1 << 22;

    struct Machine {
        stack: Vec<Value>,
        memo: BTreeMap<u64, Value>,
        budget: usize,
    }

    impl Machine {
        fn pop(&mut self) -> Result<Value, String> {
            match self.stack.pop() {
                Some(Value::Mark) | None => Err("stack underflow".into()),
                Some(v) => Ok(v),
            }
        }

        fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
            let at = self
                .stack
                .iter()
                .rposition(|v| matches!(v, Value::Mark))
                .ok_or("no mark on the stack")?;
            let items = self.stack.split_off(at + 1);
            self.stack.pop();
            Ok(items)
        }

        fn top(&mut self) -> Result<&mut Value, String> {
            match self.stack.last_mut() {
                Some(Value::Mark) | None => Err("stack underflow".into()),
                Some(v) => Ok(v),
            }
        }

        fn copy(&mut self, value: &Value) -> Result<Value, String> {
            let cost = value.nodes(self.budget.saturating_add(1));
            if cost > self.budget {
                return Err("too many copied values".into());
            }
            self.budget -= cost;
            Ok(value.clone())
        }
    }

    fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, String> {
        if !items.len().is_multiple_of(2) {
            return Err("odd number of dict items".into());
        }
        let mut out = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            out.push((k, v));
        }
        Ok(out)
    }

    fn ints(value: &Value, what: &str) -> Result<Vec<i64>, String> {
        match value {
            Value::Tuple(items) | Value::List(items) => items
                .iter()
                .map(|v| match v {
                    Value::Int(i) => Ok(*i),
                    other => Err(format!("{what} holds {}", other.describe())),
                })
                .collect(),
            other => Err(format!("{what} is {}", other.describe())),
        }
    }

    fn reduce(callable: Value, args: Value) -> Result<Value, String> {
        let Value::Global(name) = callable else {
            return Err(format!("REDUCE on {}", callable.describe()));
        };
        let Value::Tuple(args) = args else {
            return Err(format!("{name} called with {}", args.describe()));
        };
        match name.as_str() {
            "collections.OrderedDict" if args.is_empty() => Ok(Value::Dict(Vec::new())),
            "torch._utils._rebuild_tensor_v2" => {
                let [storage, offset, size, stride, ..] = args.as_slice() else {
                    return Err(format!("{name} called with {} arguments", args.len()));
                };
                let Value::Storage(storage) = storage else {
                    return Err(format!("{name}: storage is {}", storage.describe()));
                };
                let Value::Int(offset) = offset else {
                    return Err(format!("{name}: offset is {}", offset.describe()));
                };
                Ok(Value::Tensor(TensorRef {
                    storage: storage.clone(),
                    offset: *offset,
                    size: ints(size, "size")?,
                    stride: ints(stride, "stride")?,
                }))
            }
            "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state" => {
                match args.into_iter().next() {
                    Some(tensor @ Value::Tensor(_)) => Ok(tensor),
                    _ => Err(format!("{name} without a tensor")),
                }
            }
            _ => Err(format!("refusing to call {name}")),
        }
    }

    fn persistent_load(pid: Value) -> Result<Value, String> {
        let Value::Tuple(items) = pid else {
            return Err(format!("persistent id is {}", pid.describe()));
        };
        match items.as_slice() {
            [Value::Str(tag), Value::Global(class), Value::Str(key), _location, Value::Int(numel)]
                if tag == "storage" =>
            {
                let kind =
                    storage_kind(class).ok_or_else(|| format!("unsupported storage {class}"))?;
                if key.is_empty() || key.contains(['/', '\\']) || key.contains("..") {
                    return Err(format!("bad storage key '{key}'"));
                }
                Ok(Value::Storage(StorageRef {
                    kind,
                    key: key.clone(),
                    numel: *numel,
                }))
            }
            _ => Err("persistent id is not a ('storage', type, key, location, numel) tuple".into()),
        }
    }

    /// Runs the pickle in `bytes`, returning the value it leaves.
    pub fn run(bytes: &[u8]) -> Result<Value, String> {
        let mut reader = Reader::new(bytes);
        let mut m = Machine {
            stack: Vec::new(),
            memo: BTreeMap::new(),
            budget: COPY_BUDGET,
        };
        loop {
            let op = reader.op()?;
            match op {
                Op::Proto | Op::Frame => {}
                Op::Stop => return m.pop(),
                Op::Mark => m.stack.push(Value::Mark),
                Op::Pop => {
                    if m.stack.pop().is_none() {
                        return Err("stack underflow".into());
                    }
                }
                Op::PopMark => {
                    m.pop_mark()?;
                }
                Op::Dup => {
                    let top = m.top()?.clone();
                    let top = m.copy(&top)?;
                    m.stack.push(top);
                }
                Op::None => m.stack.push(Value::None),
                Op::Bool(b) => m.stack.push(Value::Bool(b)),
                Op::Int(i) => m.stack.push(Value::Int(i)),
                Op::Float(x) => m.stack.push(Value::Float(x)),
                Op::Str(s) => m.stack.push(Value::Str(s)),
                Op::Bytes => m.stack.push(Value::Bytes),
                Op::EmptyTuple => m.stack.push(Value::Tuple(Vec::new())),
                Op::Tuple(n) => {
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(m.pop()?);
                    }
                    items.reverse();
                    m.stack.push(Value::Tuple(items));
                }
                Op::TupleMark => {
                    let items = m.pop_mark()?;
                    m.stack.push(Value::Tuple(items));
                }
                Op::EmptyList | Op::EmptySet => m.stack.push(Value::List(Vec::new())),
                Op::ListMark | Op::FrozenSet => {
                    let items = m.pop_mark()?;
                    m.stack.push(Value::List(items));
                }
                Op::Append => {
                    let item = m.pop()?;
                    match m.top()? {
                        Value::List(items) => items.push(item),
                        other => return Err(format!("APPEND to {}", other.describe())),
                    }
                }
                Op::Appends | Op::AddItems => {
                    let new = m.pop_mark()?;
                    match m.top()? {
                        Value::List(items) => items.extend(new),
                        other => return Err(format!("APPENDS to {}", other.describe())),
                    }
                }
                Op::EmptyDict => m.stack.push(Value::Dict(Vec::new())),
                Op::DictMark => {
                    let items = pairs(m.pop_mark()?)?;
                    m.stack.push(Value::Dict(items));
                }
                Op::SetItem => {
                    let value = m.pop()?;
                    let key = m.pop()?;
                    match m.top()? {
                        Value::Dict(items) => items.push((key, value)),
                        other => return Err(format!("SETITEM on {}", other.describe())),
                    }
                }
                Op::SetItems => {
                    let new = pairs(m.pop_mark()?)?;
                    match m.top()? {
                        Value::Dict(items) => items.extend(new),
                        other => return Err(format!("SETITEMS on {}", other.describe())),
                    }
                }
                Op::Put(index) => {
                    let top = m.top()?.clone();
                    let top = m.copy(&top)?;
                    m.memo.insert(index, top);
                }
                Op::Memoize => {
                    let top = m.top()?.clone();
                    let top = m.copy(&top)?;
                    let index = m.memo.len() as u64;
                    m.memo.insert(index, top);
                }
                Op::Get(index) => {
                    let value = m
                        .memo
                        .get(&index)
                        .cloned()
                        .ok_or_else(|| format!("memo {index} is empty"))?;
                    let value = m.copy(&value)?;
                    m.stack.push(value);
                }
                Op::Global(module, name) => m.stack.push(global(format!("{module}.{name}"))?),
                Op::StackGlobal => {
                    let name = m.pop()?;
                    let module = m.pop()?;
                    match (module, name) {
                        (Value::Str(module), Value::Str(name)) => {
                            m.stack.push(global(format!("{module}.{name}"))?)
                        }
                        _ => return Err("STACK_GLOBAL without two strings".into()),
                    }
                }
                Op::Reduce => {
                    let args = m.pop()?;
                    let callable = m.pop()?;
                    m.stack.push(reduce(callable, args)?);
                }
                Op::Build => {
                    // The state of an OrderedDict (its `_metadata`) or a parameter: not needed.
                    m.pop()?;
                    m.top()?;
                }
                Op::BinPersId => {
                    let pid = m.pop()?;
                    m.stack.push(persistent_load(pid)?);
                }
                Op::PersId => return Err("text persistent ids are not used by torch.save".into()),
                Op::Inst(module, name) => return Err(format!("refusing to build {module}.{name}")),
                Op::Obj | Op::NewObj | Op::NewObjEx => {
                    return Err("refusing to build an object".into())
                }
                Op::Ext(code) => return Err(format!("refusing extension code {code}")),
                Op::NextBuffer | Op::ReadOnlyBuffer => {
                    return Err("out-of-band buffers are not used by torch.save".into())
                }
            }
        }
    }

    fn global(name: String) -> Result<Value, String> {
        if super::is_state_dict_global(&name) {
            Ok(Value::Global(name))
        } else {
            Err(format!("refusing global {name}"))
        }
    }

    /// Names under which training scripts commonly nest the state dict in a checkpoint.
    const CHECKPOINT_KEYS: [&str; 4] = ["state_dict", "model_state_dict", "model", "net"];

    /// The (name, tensor) pairs of a state dict: a dict of string → tensor, or a checkpoint dict
    /// holding one under `state_dict`, `model_state_dict`, `model` or `net`.
    pub fn state_dict_entries(value: Value) -> Result<Vec<(String, TensorRef)>, String> {
        let Value::Dict(items) = value else {
            return Err(format!(
                "holds {}, expected a dict of tensors",
                value.describe()
            ));
        };
        let all_tensors = items.iter().all(|(_, v)| matches!(v, Value::Tensor(_)));
        if !all_tensors {
            let keys: Vec<String> = items
                .iter()
                .map(|(k, v)| match k {
                    Value::Str(k) => format!("{k} ({})", v.describe()),
                    other => other.describe().to_string(),
                })
                .collect();
            let nested = items.into_iter().find_map(|(k, v)| match (k, v) {
                (Value::Str(k), v @ Value::Dict(_)) if CHECKPOINT_KEYS.contains(&k.as_str()) => {
                    Some(v)
                }
                _ => None,
            });
            return match nested {
                Some(inner) => state_dict_entries(inner),
                None => Err(format!(
                    "holds a dict of {}, expected only tensors (or a checkpoint with a \
                     state_dict)",
                    keys.join(", ")
                )),
            };
        }
        items
            .into_iter()
            .map(|(k, v)| match (k, v) {
                (Value::Str(k), Value::Tensor(t)) => Ok((k, t)),
                (k, _) => Err(format!("a key is {}, expected a string", k.describe())),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_2_globals_are_found() {
        let pickle = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01ctorch._utils\n_rebuild_tensor_v2\nq\x02.";
        assert_eq!(
            pickle_globals(pickle),
            Ok(vec![
                "collections.OrderedDict".to_string(),
                "torch._utils._rebuild_tensor_v2".to_string()
            ])
        );
    }

    #[test]
    fn stack_globals_resolve_through_the_memo() {
        // protocol 4: SHORT_BINUNICODE '__main__', MEMOIZE, SHORT_BINUNICODE 'MRNet', MEMOIZE,
        // STACK_GLOBAL, then the module string again from the memo with 'Alex'.
        let mut p = b"\x80\x04\x8c\x08__main__\x94\x8c\x05MRNet\x94\x93\x94".to_vec();
        p.extend_from_slice(b"h\x00\x8c\x04Alex\x94\x93.");
        assert_eq!(
            pickle_globals(&p),
            Ok(vec![
                "__main__.MRNet".to_string(),
                "__main__.Alex".to_string()
            ])
        );
    }

    #[test]
    fn truncated_or_garbage_pickles_are_errors_not_panics() {
        assert!(pickle_globals(b"\x80\x02X\xff\xff\xff\x7fab").is_err());
        assert!(pickle_globals(b"\x80\x02c__main__").is_err());
        assert!(pickle_globals(b"\xff").is_err());
        assert!(pickle_globals(b"").is_err());
    }

    #[test]
    fn the_restricted_unpickler_refuses_code_and_bounds_copies() {
        let system = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.";
        assert_eq!(
            unpickle::run(system),
            Err("refusing global os.system".to_string())
        );
        let newobj = b"\x80\x02ccollections\nOrderedDict\n)\x81.";
        assert_eq!(
            unpickle::run(newobj),
            Err("refusing to build an object".to_string())
        );
        // Each step makes a list of two copies of the previous one: 2^40 nodes if unbounded.
        let mut laughs = b"\x80\x02]q\x00".to_vec();
        for _ in 0..40 {
            laughs.extend_from_slice(b"(h\x00h\x00lq\x00");
        }
        laughs.push(b'.');
        assert_eq!(
            unpickle::run(&laughs),
            Err("too many copied values".to_string())
        );
        let plain = b"\x80\x02}q\x00(X\x01\x00\x00\x00aK\x01X\x01\x00\x00\x00bG?\xf0\x00\x00\x00\x00\x00\x00u.";
        assert_eq!(
            unpickle::run(plain),
            Ok(unpickle::Value::Dict(vec![
                (unpickle::Value::Str("a".into()), unpickle::Value::Int(1)),
                (
                    unpickle::Value::Str("b".into()),
                    unpickle::Value::Float(1.0)
                ),
            ]))
        );
    }

    #[test]
    fn state_dict_globals_are_told_from_others() {
        assert!(is_state_dict_global("torch.FloatStorage"));
        assert!(is_state_dict_global("torch.BFloat16Storage"));
        assert!(is_state_dict_global("collections.OrderedDict"));
        assert!(!is_state_dict_global("torch.nn.modules.conv.Conv2d"));
        assert!(!is_state_dict_global("__main__.MRNet"));
        assert!(!is_state_dict_global("builtins.eval"));
        assert!(!is_state_dict_global("torch.Storage.x"));
    }

    #[test]
    fn bytes_are_classified_without_trusting_the_name() {
        assert_eq!(
            kind_of_bytes(b"\x93NUMPY\x01\x00"),
            FileKind::Other("a NumPy .npy array".into())
        );
        assert_eq!(
            kind_of_bytes(b"hello\nworld\n"),
            FileKind::Other("a text file".into())
        );
        assert_eq!(
            kind_of_bytes(b""),
            FileKind::Other("the file is empty".into())
        );
        assert_eq!(
            kind_of_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":1}"),
            FileKind::Safetensors
        );
    }
}
