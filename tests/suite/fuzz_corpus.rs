//! The fuzz corpus, replayed on stable: every file under `fuzz/corpus/<target>/` goes through
//! the same check as the cargo-fuzz target (`fuzz/src/lib.rs`, included below), then a few
//! hundred proptest mutations of those files do too, and the parsers' stated limits are held to
//! with the allocations measured. Re-running the fuzzers themselves: `fuzz/README.md`.
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kneecam::config::Config;
use kneecam::data::labels::{parse_labels, read_labels};
use kneecam::data::npy::{self, NpyError, MAX_HEADER_LEN};
use kneecam::model::manifest::{Manifest, MANIFEST_FILE};
use proptest::prelude::*;
use proptest::sample::Index;

#[path = "../../fuzz/src/lib.rs"]
mod targets;

use targets::{measure, run, TrackingAlloc, TARGETS};

#[global_allocator]
static ALLOC: TrackingAlloc = TrackingAlloc;

/// Longest a single input may take here (a debug build, on a busy machine); libFuzzer's own
/// limit on the release build is far tighter (see fuzz/README.md).
const SLOW: Duration = Duration::from_secs(5);

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// The corpus files of `target`, sorted by name.
fn corpus_files(target: &str) -> Vec<PathBuf> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    corpus_files(target)
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(a panic without a message)".into())
}

#[test]
fn the_budgets_are_really_measured() {
    assert!(
        targets::tracking(),
        "TrackingAlloc is not the global allocator"
    );
}

#[test]
fn every_corpus_file_returns_without_panicking() {
    let mut failures = Vec::new();
    for target in TARGETS {
        let files = corpus_files(target);
        assert!(
            files.len() >= 10,
            "{target}: only {} corpus files",
            files.len()
        );
        for file in files {
            let data = std::fs::read(&file).expect("a corpus file");
            let start = Instant::now();
            if let Err(payload) = panic::catch_unwind(|| run(target, &data)) {
                failures.push(format!("{}: {}", file.display(), panic_text(&*payload)));
            }
            let took = start.elapsed();
            if took > SLOW {
                failures.push(format!("{}: took {took:?}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `read_header` / `read_volume` on the corpus files themselves agree with the in-memory
/// parsers the fuzzer drives.
#[test]
fn npy_files_read_as_they_parse() {
    for file in corpus_files("npy") {
        let bytes = std::fs::read(&file).expect("a corpus file");
        let detail = |r: Result<(), NpyError>| r.map_err(|e| e.detail());
        assert_eq!(
            detail(npy::read_header(&file).map(drop)),
            detail(npy::parse_header(&file, &bytes).map(drop)),
            "{}",
            file.display()
        );
        let read = npy::read_volume(&file);
        let parsed = npy::parse_volume(&file, &bytes);
        match (read, parsed) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{}", file.display()),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            (a, b) => panic!("{}: read {a:?}, parsed {b:?}", file.display()),
        }
    }
}

#[test]
fn label_files_read_as_they_parse() {
    for file in corpus_files("labels") {
        let bytes = std::fs::read(&file).expect("a corpus file");
        let read = read_labels(&file).expect("a corpus file reads");
        let parsed = parse_labels(&file, &bytes);
        assert_eq!(read.rows, parsed.rows, "{}", file.display());
        let messages = |errors: &[kneecam::data::labels::LabelError]| {
            errors.iter().map(ToString::to_string).collect::<Vec<_>>()
        };
        assert_eq!(messages(&read.errors), messages(&parsed.errors));
    }
}

#[test]
fn manifest_and_config_files_load_as_they_parse() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let manifest_path = dir.path().join(MANIFEST_FILE);
    for file in corpus_files("manifest") {
        let bytes = std::fs::read(&file).expect("a corpus file");
        std::fs::write(&manifest_path, &bytes).expect("written");
        let loaded = Manifest::load(dir.path());
        match std::str::from_utf8(&bytes) {
            // `load` reads text; the fuzzer fed the same bytes lossily.
            Err(_) => assert!(loaded.is_err(), "{}", file.display()),
            Ok(text) => {
                let parsed = Manifest::parse(text, &manifest_path);
                match (loaded, parsed) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b, "{}", file.display()),
                    (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                    (a, b) => panic!("{}: loaded {a:?}, parsed {b:?}", file.display()),
                }
            }
        }
    }
    let empty = tempfile::tempdir().expect("a temporary folder");
    for file in corpus_files("config") {
        let loaded = Config::load(empty.path(), Some(&file));
        let Ok(text) = std::fs::read_to_string(&file) else {
            assert!(loaded.is_err(), "{}", file.display());
            continue;
        };
        match (loaded, Config::parse_layer(&text, &file)) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{}", file.display()),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            (a, b) => panic!("{}: loaded {a:?}, parsed {b:?}", file.display()),
        }
    }
}

// ---- resource limits ------------------------------------------------------------------------

/// A version-1 `.npy` with header dict `dict`, padded to `total` bytes with zeros.
fn npy_file(dict: &str, total: usize) -> Vec<u8> {
    let mut header = dict.to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend(u16::try_from(header.len()).expect("short").to_le_bytes());
    out.extend(header.as_bytes());
    out.resize(total.max(out.len()), 0);
    out
}

/// The largest single allocation `f` asks for, in bytes.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let (out, usage) = measure(f);
    (out, usage.largest)
}

#[test]
fn npy_headers_claiming_huge_shapes_are_refused_before_allocating() {
    let path = Path::new("huge.npy");
    for (dict, wanted) in [
        // 10^12 elements, past the per-axis limits.
        (
            "{'descr': '|u1', 'fortran_order': False, 'shape': (1000000, 1000000, 1), }",
            "1000000 slices is more than 1024",
        ),
        // Within the limits but 32 GiB of float64 for a 200-byte file.
        (
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1024, 2048, 2048), }",
            "needs 34359738368 bytes of data",
        ),
        // Axes past u64.
        (
            "{'descr': '|u1', 'fortran_order': False, 'shape': (18446744073709551616, 1, 1), }",
            "too large",
        ),
    ] {
        let bytes = npy_file(dict, 200);
        assert_eq!(bytes.len(), 200);
        let (result, largest) = largest_allocation(|| npy::parse_volume(path, &bytes));
        let err = result.expect_err(dict).to_string();
        assert!(err.contains(wanted), "{err}");
        assert!(largest < 4096, "{dict}: allocated {largest} bytes");

        let dir = tempfile::tempdir().expect("a temporary folder");
        let file = dir.path().join("huge.npy");
        std::fs::write(&file, &bytes).expect("written");
        let (result, largest) = largest_allocation(|| npy::read_volume(&file));
        assert!(result.expect_err(dict).to_string().contains(wanted));
        assert!(
            largest < 16 * 1024,
            "{dict}: read_volume allocated {largest} bytes"
        );
    }
}

#[test]
fn npy_header_length_fields_are_checked_before_allocating() {
    let path = Path::new("long.npy");
    // Version 2 takes a 4-byte length: 4 GiB of header claimed in a 200-byte file.
    let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
    bytes.extend(u32::MAX.to_le_bytes());
    bytes.resize(200, b' ');
    let (result, largest) = largest_allocation(|| npy::parse_header(path, &bytes));
    let err = result.expect_err("4 GiB header").to_string();
    assert!(
        err.contains("header length field says 4294967295 bytes"),
        "{err}"
    );
    assert!(largest < 4096, "allocated {largest} bytes");

    // Within MAX_HEADER_LEN, but longer than the file: refused before the buffer exists.
    let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
    bytes.extend(u32::try_from(MAX_HEADER_LEN).expect("small").to_le_bytes());
    bytes.resize(200, b' ');
    let (result, largest) = largest_allocation(|| npy::parse_header(path, &bytes));
    let err = result.expect_err("long header").to_string();
    assert!(
        err.contains("truncated header: the file has 200 bytes"),
        "{err}"
    );
    assert!(largest < 4096, "allocated {largest} bytes");
}

#[test]
fn a_valid_npy_costs_about_its_own_size() {
    let body: Vec<u8> = (0..64 * 64 * 4).map(|i| (i % 251) as u8).collect();
    let mut bytes = npy_file(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 32, 32), }",
        0,
    );
    bytes.extend(&body);
    let (volume, usage) = measure(|| npy::parse_volume(Path::new("ok.npy"), &bytes));
    let volume = volume.expect("valid");
    assert_eq!(volume.data.len(), 4 * 32 * 32);
    assert!(usage.largest <= body.len(), "{usage:?}");
    assert!(usage.peak <= 2 * body.len(), "{usage:?}");
}

/// Deeply nested TOML is refused (or accepted) without overflowing the stack: a fuzz input is
/// capped at a few KiB, so this checks far deeper nesting than the fuzzer can reach. It runs on
/// a thread with a 2 MiB stack, as small as a test thread's default.
#[test]
fn deeply_nested_toml_does_not_overflow_the_stack() {
    let depth = 20_000;
    let inputs = [
        format!(
            "format = 1\nx = {}{}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        ),
        format!(
            "format = 1\nx = {}1{}\n",
            "{a=".repeat(depth),
            "}".repeat(depth)
        ),
        format!("[view]\ntask = {}\n", "[".repeat(depth)),
        format!("x = {}\n", "{a=".repeat(depth)),
    ];
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            for text in &inputs {
                assert!(Manifest::parse(text, Path::new("deep.toml")).is_err());
                assert!(Config::parse_layer(text, Path::new("deep.toml")).is_err());
            }
        })
        .expect("a thread")
        .join()
        .expect("no stack overflow or panic");
}

// ---- mutations of the corpus ----------------------------------------------------------------

/// One edit of a seed, positions as fractions of its length.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    /// Copies a piece of another corpus file in.
    Splice {
        at: Index,
        from: Index,
        start: Index,
        len: usize,
    },
    Duplicate(Index, usize),
    /// Inserts one of the target's interesting tokens.
    Token(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        any::<Index>().prop_map(Mutation::Truncate),
        (
            any::<Index>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<Index>(), 1usize..32).prop_map(|(i, n)| Mutation::Remove(i, n)),
        (any::<Index>(), any::<Index>(), any::<Index>(), 1usize..64).prop_map(
            |(at, from, start, len)| Mutation::Splice {
                at,
                from,
                start,
                len
            }
        ),
        (any::<Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        (any::<Index>(), any::<Index>()).prop_map(|(i, t)| Mutation::Token(i, t)),
    ]
}

fn tokens(target: &str) -> &'static [&'static [u8]] {
    match target {
        "npy" => &[
            b"\x93NUMPY\x01\x00",
            b"\x93NUMPY\x02\x00",
            b"\xff\xff\xff\xff",
            b"'descr'",
            b"'shape'",
            b"'fortran_order'",
            b"'|u1'",
            b"'<f8'",
            b"'>i2'",
            b"True",
            b"False",
            b"None",
            b"(",
            b")",
            b"[",
            b",",
            b"0",
            b"1024",
            b"2049",
            b"18446744073709551615",
            b"L",
            b"\n",
        ],
        "labels" => &[
            b",",
            b"\n",
            b"\r\n",
            b"\xef\xbb\xbf",
            b"0",
            b"1",
            b"4294967295",
            b"4294967296",
            b" ",
            b"\t",
            b"-",
            b"\xc2\xa0",
            b"\xff",
        ],
        "pickle" | "torch_zip" => &[
            // Pickle opcodes and the globals a state dict uses.
            b"\x80\x02",
            b"\x80\x05\x95\x00\x00\x00\x00\x00\x00\x00\x00",
            b"(",
            b"t",
            b"\x85",
            b"R",
            b"}",
            b"]",
            b"u",
            b"s",
            b"e",
            b".",
            b"h\x00",
            b"q\x00",
            b"\x94",
            b"2",
            b"Q",
            b"K\xff",
            b"J\xff\xff\xff\xff",
            b"\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f",
            b"X\x01\x00\x00\x000",
            b"ctorch._utils\n_rebuild_tensor_v2\n",
            b"ctorch\nFloatStorage\n",
            b"ccollections\nOrderedDict\n",
            b"cos\nsystem\n",
            // Zip records and names.
            b"PK\x03\x04",
            b"PK\x01\x02",
            b"PK\x05\x06",
            b"PK\x06\x06",
            b"\xff\xff\xff\xff",
            b"archive/data.pkl",
            b"archive/data/0",
            b"archive/byteorder",
            b"big",
        ],
        _ => &[
            b"[",
            b"]",
            b"[[",
            b"]]",
            b"{",
            b"}",
            b"=",
            b"\"",
            b"'''",
            b"\"\"\"",
            b".",
            b"\n",
            b"#",
            b"nan",
            b"-inf",
            b"1e999",
            b"9223372036854775807",
            b"-9223372036854775808",
            b"1979-05-27T07:32:00Z",
            b"true",
            b"format = 1\n",
            b"[models.acl-axial]\n",
            b"[images.x]\n",
            b"[combiners.acl]\n",
            b"arch = \"torchscript\"\n",
            b"[view]\n",
            b"[keys]\n",
            b"quit = [\"q\"]\n",
            b"opacity = 1.0\n",
            b"cam_bytes = 1099511627776\n",
            b"\\u0000",
            b"\r",
        ],
    }
}

fn apply(target: &str, seeds: &[Vec<u8>], seed: &Index, edits: &[Mutation]) -> Vec<u8> {
    let mut data = seed.get(seeds).clone();
    // A position in 0..=len.
    let at = |i: &Index, data: &Vec<u8>| i.index(data.len() + 1);
    for edit in edits {
        match edit {
            Mutation::FlipBit(i, bit) if !data.is_empty() => {
                let k = i.index(data.len());
                data[k] ^= 1 << bit;
            }
            Mutation::SetByte(i, byte) if !data.is_empty() => {
                let k = i.index(data.len());
                data[k] = *byte;
            }
            Mutation::Truncate(i) => data.truncate(at(i, &data)),
            Mutation::Insert(i, bytes) => {
                let k = at(i, &data);
                data.splice(k..k, bytes.iter().copied());
            }
            Mutation::Remove(i, n) => {
                let k = at(i, &data);
                let end = (k + n).min(data.len());
                data.drain(k..end);
            }
            Mutation::Splice {
                at: i,
                from,
                start,
                len,
            } => {
                let other = from.get(seeds);
                let s = at(start, other);
                let piece = &other[s..(s + len).min(other.len())];
                let k = at(i, &data);
                data.splice(k..k, piece.iter().copied());
            }
            Mutation::Duplicate(i, n) => {
                let k = at(i, &data);
                let piece: Vec<u8> = data[k..(k + n).min(data.len())].to_vec();
                data.splice(k..k, piece);
            }
            Mutation::Token(i, t) => {
                let token = t.get(tokens(target));
                let k = at(i, &data);
                data.splice(k..k, token.iter().copied());
            }
            Mutation::FlipBit(..) | Mutation::SetByte(..) => {}
        }
    }
    data
}

fn mutated(target: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let seeds = corpus(target);
    (any::<Index>(), proptest::collection::vec(mutation(), 1..8))
        .prop_map(move |(seed, edits)| apply(target, &seeds, &seed, &edits))
}

fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: 300,
        // Failures print their input; no regression files beside the tests.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Fewer cases for the weights targets (each input may build tensors through libtorch), from a
/// fixed seed: the same mutations every run, so a weights bug shows on every run or none.
fn weights_cases() -> ProptestConfig {
    ProptestConfig {
        cases: 100,
        rng_seed: proptest::test_runner::RngSeed::Fixed(16),
        ..cases()
    }
}

fn run_quietly(target: &str, data: &[u8]) -> Result<(), TestCaseError> {
    panic::catch_unwind(AssertUnwindSafe(|| run(target, data)))
        .map_err(|payload| TestCaseError::fail(panic_text(&*payload)))
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn mutated_npy_never_panics(data in mutated("npy")) {
        run_quietly("npy", &data)?;
    }

    #[test]
    fn mutated_labels_never_panic(data in mutated("labels")) {
        run_quietly("labels", &data)?;
    }

    #[test]
    fn mutated_manifests_never_panic(data in mutated("manifest")) {
        run_quietly("manifest", &data)?;
    }

    #[test]
    fn mutated_configs_never_panic(data in mutated("config")) {
        run_quietly("config", &data)?;
    }
}

proptest! {
    #![proptest_config(weights_cases())]

    #[test]
    fn mutated_pickles_never_panic(data in mutated("pickle")) {
        run_quietly("pickle", &data)?;
    }

    #[test]
    fn mutated_torch_archives_never_panic(data in mutated("torch_zip")) {
        run_quietly("torch_zip", &data)?;
    }
}
