//! What one fuzz input does, for each target: shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/*.rs`, nightly) and by `tests/suite/fuzz_corpus.rs` (stable `cargo test`,
//! which includes this file with `#[path]`), so the corpus replays exactly what was fuzzed.
//!
//! Each `run_*` feeds the bytes to the parser's real entry point, renders every error (which
//! must name the file), checks what an `Ok` promises, and checks memory: with
//! [`TrackingAlloc`] as the global allocator, the largest single allocation *asked for* (even
//! one that fails, as `try_reserve` may) and the peak of live bytes must stay within the
//! target's budget ([`Budget`]). Any violation panics, which libFuzzer reports as a crash.
//! Hangs are libFuzzer's `-timeout` (and the test's per-input clock).
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use kneecam::config::Config;
use kneecam::data::labels::{parse_labels, LabelError};
use kneecam::data::npy::{self, NpyError, Scalar, MAX_HEADER_LEN, MAX_SIDE, MAX_SLICES};
use kneecam::model::manifest::Manifest;
use kneecam::model::weights::{pickle_tensor_shapes, read_torch_archive, WeightsError};

/// The targets, as named under `fuzz/corpus/` and `fuzz/fuzz_targets/`.
pub const TARGETS: [&str; 7] = [
    "npy",
    "labels",
    "manifest",
    "config",
    "pickle",
    "torch_zip",
    "study_header",
];

/// Runs `target`'s check on one input.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "npy" => run_npy(data),
        "labels" => run_labels(data),
        "manifest" => run_manifest(data),
        "config" => run_config(data),
        "pickle" => run_pickle(data),
        "torch_zip" => run_torch_zip(data),
        "study_header" => run_study_header(data),
        other => panic!("no fuzz target {other}"),
    }
}

// ---- memory accounting ----------------------------------------------------------------------

/// The system allocator, counting per thread what [`measure`] reports.
pub struct TrackingAlloc;

thread_local! {
    /// Bytes allocated minus bytes freed by this thread since `measure` began.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

fn note_live(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().saturating_add(delta);
        live.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

fn signed(size: usize) -> isize {
    isize::try_from(size).unwrap_or(isize::MAX)
}

// SAFETY: every call is forwarded unchanged to `System`; the bookkeeping only touches
// const-initialised thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for TrackingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: the caller's contract is `System`'s.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            note_live(signed(layout.size()));
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            note_live(signed(layout.size()));
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_live(-signed(layout.size()));
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc(new_size);
        // SAFETY: as for `alloc`.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            note_live(signed(new_size) - signed(layout.size()));
        }
        new
    }
}

/// What one call cost, in bytes: the largest single allocation asked for, and the peak of
/// bytes allocated and not yet freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub largest: usize,
    pub peak: usize,
}

/// Runs `f` and reports the memory it used on this thread (zeros unless [`TrackingAlloc`]
/// is the global allocator; see [`tracking`]).
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, Usage) {
    LIVE.with(|c| c.set(0));
    PEAK.with(|c| c.set(0));
    LARGEST.with(|c| c.set(0));
    let out = f();
    let usage = Usage {
        largest: LARGEST.with(Cell::get),
        peak: usize::try_from(PEAK.with(Cell::get)).unwrap_or(0),
    };
    (out, usage)
}

/// Whether [`TrackingAlloc`] is the global allocator (so that budgets are really checked).
pub fn tracking() -> bool {
    let (_, usage) = measure(|| std::hint::black_box(vec![0u8; 1000]));
    usage.largest >= 1000
}

/// A memory budget linear in the input: `per_byte × input length + fixed`, for the largest
/// single allocation and for the peak of live bytes.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub largest_per_byte: usize,
    pub largest_fixed: usize,
    pub peak_per_byte: usize,
    pub peak_fixed: usize,
}

impl Budget {
    pub fn check(&self, target: &str, input_len: usize, usage: Usage) {
        let largest = self.largest_per_byte * input_len + self.largest_fixed;
        let peak = self.peak_per_byte * input_len + self.peak_fixed;
        assert!(
            usage.largest <= largest,
            "{target}: a {input_len}-byte input asked for a single allocation of {} bytes, \
             over the budget of {largest}",
            usage.largest
        );
        assert!(
            usage.peak <= peak,
            "{target}: a {input_len}-byte input held {} bytes at once, over the budget of {peak}",
            usage.peak
        );
    }
}

/// `.npy`: the header is at most [`MAX_HEADER_LEN`] and checked against the file's length
/// before the body is allocated, so nothing may be larger than the input itself (the body, then
/// the scaled copy beside it), give or take a few small strings for messages.
pub const NPY_BUDGET: Budget = Budget {
    largest_per_byte: 1,
    largest_fixed: 4096,
    peak_per_byte: 3,
    peak_fixed: 64 * 1024,
};

/// Labels: no stated limit on a CSV's size, but memory must stay linear in it; a row or an
/// error per line (an error holds the file's name and a message of a few dozen bytes, so a
/// file of one-byte lines is the worst case).
pub const LABELS_BUDGET: Budget = Budget {
    largest_per_byte: 256,
    largest_fixed: 64 * 1024,
    peak_per_byte: 512,
    peak_fixed: 64 * 1024,
};

/// TOML documents (manifest, config): linear in the input; the fixed part covers the built-in
/// default config that every config layer is laid over.
pub const TOML_BUDGET: Budget = Budget {
    largest_per_byte: 256,
    largest_fixed: 256 * 1024,
    peak_per_byte: 1024,
    peak_fixed: 1024 * 1024,
};

/// Pickles (`data.pkl`): every opcode builds at most a few values, each a `Value` of about a
/// hundred bytes plus the bytes it quotes from the input, so memory is linear in the input; memo
/// copies (`GET`, `PUT`, `DUP` clone a whole value) are charged by their bytes against the
/// unpickler's copy budget of 16 MiB plus 32 bytes per byte of the pickle: twice that is the
/// fixed part here. (Doubling lists until the budget refuses peaks at 12.6 MB; 3000 copies of a
/// list of 1000 copies of a 1000-byte string, 9 KB, at 16.6 MB.)
pub const PICKLE_BUDGET: Budget = Budget {
    largest_per_byte: 256,
    largest_fixed: 64 * 1024,
    peak_per_byte: 1024,
    peak_fixed: 32 << 20,
};

/// PyTorch zip archives: the zip reader supports only stored (uncompressed) entries, so a
/// record read is at most the archive's own bytes, and `data.pkl` is a pickle (above). The
/// tensors returned (libtorch's memory, which [`TrackingAlloc`] does not see) are checked
/// separately against [`TENSOR_BYTES_PER_BYTE`].
pub const TORCH_ZIP_BUDGET: Budget = PICKLE_BUDGET;

/// The tensors an archive yields hold at most this many bytes per byte of the archive, plus
/// [`TENSOR_BYTES_FIXED`]: every storage is a record inside the archive, read no further than
/// its declared size, and each tensor is a copy of a view of one, no larger than its storage,
/// all views together at most 8 times the storages' values plus 2^20 values (of up to 8 bytes).
pub const TENSOR_BYTES_PER_BYTE: usize = 8;
pub const TENSOR_BYTES_FIXED: usize = 8 << 20;

// ---- the targets ----------------------------------------------------------------------------

/// The name each target gives its input in errors.
pub const NPY_PATH: &str = "fuzz/input.npy";
pub const LABELS_PATH: &str = "fuzz/train-acl.csv";
pub const MANIFEST_PATH: &str = "fuzz/manifest.toml";
pub const CONFIG_PATH: &str = "fuzz/config.toml";
pub const PICKLE_PATH: &str = "fuzz/data.pkl";
pub const TORCH_ZIP_PATH: &str = "fuzz/model.pt";
pub const STUDY_PATH: &str = "fuzz/study/IM0001";

/// DICOM and NIfTI headers: dicom-rs reads elements of the lengths the file declares, so a
/// header may hold a few copies of its own bytes, and a series a few hundred bytes per slice.
pub const STUDY_BUDGET: Budget = Budget {
    largest_per_byte: 16,
    largest_fixed: 1 << 20,
    peak_per_byte: 64,
    peak_fixed: 4 << 20,
};

/// Study headers: `study::header_series` (the DICOM header reader on dicom-rs's parse, or the
/// NIfTI header checks on the nifti crate's) either refuses naming the file, or gives a series
/// whose geometry locates its own voxels.
pub fn run_study_header(data: &[u8]) {
    let path = Path::new(STUDY_PATH);
    let (result, usage) =
        measure(|| kneecam::data::study::header_series(path, data).map_err(|e| e.to_string()));
    STUDY_BUDGET.check("study_header", data.len(), usage);
    match result {
        Err(message) => assert!(
            message.starts_with(&format!("{STUDY_PATH}: ")),
            "an error does not name the file: {message}"
        ),
        Ok(series) => {
            let g = &series.geometry;
            assert!(
                g.check().is_ok(),
                "an unusable geometry was accepted: {g:?}"
            );
            assert_eq!(series.plane, g.plane());
            let middle = g.point(0, 128.0, 128.0).expect("a first slice");
            let found = g.locate(middle).expect("a slice's own point is on it");
            assert!((found.row - 128.0).abs() < 1e-3 && (found.column - 128.0).abs() < 1e-3);
        }
    }
}

/// `.npy`: `parse_header` and `parse_volume` (what `read_header` and `read_volume` do after
/// opening the file) agree, an accepted header is within the limits and matches the input's
/// length, and a volume has the header's shape.
pub fn run_npy(data: &[u8]) {
    let path = Path::new(NPY_PATH);
    let ((header, volume, messages), usage) = measure(|| {
        let header = npy::parse_header(path, data);
        let volume = npy::parse_volume(path, data);
        let messages: Vec<String> = [header.as_ref().err(), volume.as_ref().err()]
            .into_iter()
            .flatten()
            .map(NpyError::to_string)
            .collect();
        (header, volume, messages)
    });
    NPY_BUDGET.check("npy", data.len(), usage);
    for message in &messages {
        assert!(
            message.starts_with(&format!("{NPY_PATH}: ")),
            "an error does not name the file: {message}"
        );
    }
    match (&header, &volume) {
        (Ok(h), volume) => {
            assert!(matches!(h.version, (1..=3, 0)), "{h:?}");
            let [s, height, w] = h.shape;
            assert!((1..=MAX_SLICES).contains(&s), "{h:?}");
            assert!(
                (1..=MAX_SIDE).contains(&height) && (1..=MAX_SIDE).contains(&w),
                "{h:?}"
            );
            assert!(h.data_offset as usize <= 8 + 4 + MAX_HEADER_LEN, "{h:?}");
            assert_eq!(h.file_len(), data.len() as u64, "{h:?}");
            match volume {
                Ok(v) => {
                    assert_eq!(v.data.shape(), &h.shape[..]);
                    assert_eq!(v.note.is_some(), h.dtype.needs_scaling(), "{h:?}");
                    if h.dtype.scalar == Scalar::U8 {
                        let offset = h.data_offset as usize;
                        assert!(
                            v.data.iter().eq(data[offset..].iter()),
                            "uint8 data changed"
                        );
                    }
                }
                // The only error the body can add: a float that is NaN or infinite.
                Err(NpyError::NotFinite { dtype, .. }) => {
                    assert!(matches!(dtype.scalar, Scalar::F32 | Scalar::F64));
                    assert_eq!(*dtype, h.dtype);
                }
                Err(e) => panic!("header {h:?} was accepted but the volume failed: {e}"),
            }
        }
        (Err(e), Ok(_)) => panic!("the volume was read but the header was refused: {e}"),
        (Err(_), Err(_)) => assert_eq!(messages[0], messages[1], "two readings disagree"),
    }
}

/// Label CSVs: `parse_labels` (what `read_labels` does after reading the file) never fails
/// as a whole; every non-blank line is a row or one error, errors name the file and the line
/// and come in line order.
pub fn run_labels(data: &[u8]) {
    let path = Path::new(LABELS_PATH);
    let ((file, messages), usage) = measure(|| {
        let file = parse_labels(path, data);
        let messages: Vec<String> = file.errors.iter().map(LabelError::to_string).collect();
        (file, messages)
    });
    LABELS_BUDGET.check("labels", data.len(), usage);
    let lines = data.split(|&b| b == b'\n').count();
    assert!(file.rows.len() + file.errors.len() <= lines);
    for (id, row) in &file.rows {
        assert_eq!(*id, row.id);
        assert!((1..=lines).contains(&row.line), "{row:?}");
    }
    let error_lines: Vec<usize> = file.errors.iter().filter_map(LabelError::line).collect();
    assert_eq!(
        error_lines.len(),
        file.errors.len(),
        "a bad row without a line"
    );
    assert!(
        error_lines.is_sorted(),
        "errors out of line order: {error_lines:?}"
    );
    for (e, message) in file.errors.iter().zip(&messages) {
        let line = e.line().unwrap_or(0);
        assert!((1..=lines).contains(&line), "{message}");
        assert!(
            message.starts_with(&format!("{LABELS_PATH}:{line}: ")),
            "an error does not name the file and line: {message}"
        );
        // A row is quoted at most 60 characters long (escaped, up to 10 bytes each), and so is
        // the field a problem names: a message never grows with the line.
        assert!(
            message.chars().count() <= 1600,
            "an error quotes too much: {message}"
        );
    }
}

/// Manifests: `Manifest::parse` (what `Manifest::load` does after reading the file) either
/// refuses naming the file, or accepts a manifest that writes back (`to_toml`) to text that
/// parses to the same manifest. Bytes that are not UTF-8 go in lossily (`load` itself refuses
/// them when reading).
pub fn run_manifest(data: &[u8]) {
    let path = Path::new(MANIFEST_PATH);
    let text = String::from_utf8_lossy(data);
    let ((parsed, message), usage) = measure(|| {
        let parsed = Manifest::parse(&text, path);
        let message = parsed.as_ref().err().map(ToString::to_string);
        (parsed, message)
    });
    TOML_BUDGET.check("manifest", text.len(), usage);
    match parsed {
        Err(_) => {
            let message = message.unwrap_or_default();
            assert!(
                message.starts_with(&format!("{MANIFEST_PATH}: ")),
                "an error does not name the file: {message}"
            );
        }
        Ok(manifest) => {
            let written = manifest.to_toml();
            let again = Manifest::parse(&written, path)
                .unwrap_or_else(|e| panic!("a manifest's own text is refused: {e}\n{written}"));
            assert_eq!(
                again, manifest,
                "the manifest changed on the way back:\n{written}"
            );
        }
    }
}

/// Config layers: `Config::parse_layer` (the defaults overlaid by one file, as `Config::load`
/// does for each file) either refuses naming the file, or gives values within their ranges.
pub fn run_config(data: &[u8]) {
    let path = Path::new(CONFIG_PATH);
    let text = String::from_utf8_lossy(data);
    let ((parsed, message), usage) = measure(|| {
        let parsed = Config::parse_layer(&text, path);
        let message = parsed.as_ref().err().map(ToString::to_string);
        (parsed, message)
    });
    TOML_BUDGET.check("config", text.len(), usage);
    match parsed {
        Err(_) => {
            let message = message.unwrap_or_default();
            assert!(
                message.starts_with(&format!("{CONFIG_PATH}: ")),
                "an error does not name the file: {message}"
            );
        }
        Ok(config) => {
            let view = &config.view;
            assert!((0.0..=1.0).contains(&view.display.opacity), "{view:?}");
            assert!((0.0..=1.0).contains(&view.threshold), "{view:?}");
            assert!((1 << 20..=1 << 40).contains(&config.cam_cache_bytes));
            assert!((1..=100_000).contains(&config.image_cache_entries));
            assert!(config
                .export_folder
                .as_ref()
                .is_none_or(|f| !f.as_os_str().is_empty()));
        }
    }
}

/// Pickles: `pickle_tensor_shapes` (kneecam's restricted unpickler on one `data.pkl`, what
/// reading an archive does before touching any storage) either refuses naming the file, or
/// gives tensors of non-negative shapes.
pub fn run_pickle(data: &[u8]) {
    let path = Path::new(PICKLE_PATH);
    let (result, usage) =
        measure(|| pickle_tensor_shapes(path, data).map_err(|e: WeightsError| e.to_string()));
    PICKLE_BUDGET.check("pickle", data.len(), usage);
    match &result {
        Err(message) => assert!(
            message.starts_with(&format!("{PICKLE_PATH}: ")),
            "an error does not name the file: {message}"
        ),
        Ok(shapes) => {
            for (name, shape) in shapes {
                assert!(
                    shape.iter().all(|&n| n >= 0),
                    "tensor {name:?} has a negative shape {shape:?}"
                );
            }
        }
    }
}

/// The names, shapes and dtypes of an archive's tensors, or its error message.
type Reading = Result<Vec<(String, Vec<i64>, String)>, String>;

/// PyTorch zip archives: `read_torch_archive` (what `read_tensors` does with a PyTorch file
/// once opened) either refuses naming the file, or gives CPU tensors of non-negative shapes
/// whose bytes stay within [`TENSOR_BYTES_PER_BYTE`] of the archive; running it twice gives the
/// same answer (the same `data.pkl` and records each time).
pub fn run_torch_zip(data: &[u8]) {
    let path = Path::new(TORCH_ZIP_PATH);
    let read = || -> (Reading, usize) {
        match read_torch_archive(path, data) {
            Err(e) => (Err(e.to_string()), 0),
            Ok(tensors) => {
                let mut bytes = 0usize;
                let mut seen = Vec::with_capacity(tensors.len());
                for (name, t) in &tensors {
                    let shape = t.size();
                    assert!(
                        shape.iter().all(|&n| n >= 0),
                        "tensor {name:?} has a negative shape {shape:?}"
                    );
                    assert_eq!(t.device(), tch::Device::Cpu, "tensor {name:?}");
                    let numel: usize = shape.iter().map(|&n| n as usize).product();
                    bytes =
                        bytes.saturating_add(numel.saturating_mul(t.kind().elt_size_in_bytes()));
                    seen.push((name.clone(), shape, format!("{:?}", t.kind())));
                }
                (Ok(seen), bytes)
            }
        }
    };
    let ((result, tensor_bytes), usage) = measure(read);
    TORCH_ZIP_BUDGET.check("torch_zip", data.len(), usage);
    let allowed = TENSOR_BYTES_PER_BYTE * data.len() + TENSOR_BYTES_FIXED;
    assert!(
        tensor_bytes <= allowed,
        "torch_zip: a {}-byte archive gave tensors of {tensor_bytes} bytes, over the budget of \
         {allowed}",
        data.len()
    );
    if let Err(message) = &result {
        assert!(
            message.starts_with(&format!("{TORCH_ZIP_PATH}: ")),
            "an error does not name the file: {message}"
        );
    }
    let (again, _) = read();
    assert_eq!(result, again, "two readings disagree");
}
