//! The CAM store: a content-addressed cache of forward-pass results, shared by `precompute`,
//! the explorer and `predict`, and safe to fill from several processes and machines at once.
//!
//! A key is the sha256 of: the store format version, the model file's sha256, the exam
//! file's sha256, the method, the class and the preprocessing. An entry holds what a CAM
//! needs before normalisation (logits, the raw maps at feature resolution, per-slice scores,
//! bias, where the input sat in the slice), so one entry serves every normalisation. Entries
//! are written to a temporary file and renamed into place; each ends with the sha256 of its
//! bytes, and an entry that fails it (truncated, corrupt, another format) is a miss, to be
//! recomputed and replaced, never shown.
use std::io::Write;
use std::path::{Path, PathBuf};

use half::f16;
use ndarray::Array3;
use sha2::{Digest, Sha256};
use tch::{Kind, Tensor};

use super::{methods, Explanation, Method, Normalization, Placement};
use crate::model::manifest::ModelEntry;
use crate::model::preprocess::Preprocess;

/// Bumped whenever the key or the entry layout changes: old entries are then misses.
pub const FORMAT: u32 = 1;
const MAGIC: &[u8; 4] = b"KCAM";
const CHECKSUM: usize = 32;

/// How the raw maps are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Half the bytes; maps keep about 3 significant digits, which display maps (0–255) and
    /// the strip never notice. Scores and logits stay float32.
    #[default]
    F16,
    F32,
}

/// What identifies an entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub model_sha256: String,
    pub exam_sha256: String,
    pub method: Method,
    pub class: usize,
    pub preprocess: Preprocess,
}

impl CacheKey {
    /// The key of `method`'s CAM of the positive class for the model of `entry` on the exam
    /// file whose sha256 is `exam_sha256`.
    pub fn for_model(entry: &ModelEntry, exam_sha256: &str, method: Method) -> CacheKey {
        CacheKey {
            model_sha256: entry.sha256.clone(),
            exam_sha256: exam_sha256.to_string(),
            method,
            class: entry.positive_class(),
            preprocess: entry.preprocess,
        }
    }

    /// The content address: lowercase hex sha256.
    pub fn address(&self) -> String {
        let text = format!(
            "kneecam cam store v{FORMAT}\nmodel {}\nexam {}\nmethod {}\nclass {}\npreprocess {:?}\n",
            self.model_sha256,
            self.exam_sha256,
            self.method.name(),
            self.class,
            self.preprocess
        );
        crate::digest::sha256_hex(text.as_bytes())
    }
}

/// A forward pass's result for one method, before normalisation.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub logits: Vec<f32>,
    pub probability: f32,
    pub class: usize,
    pub bias: f32,
    /// Per-slice maps at feature resolution (S, h, w).
    pub raw: Array3<f32>,
    pub scores: Vec<f32>,
    pub placement: Placement,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {error}", .path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: {reason}", .path.display())]
    Corrupt { path: PathBuf, reason: String },
}

/// A store rooted at a folder (one per user by default, or a shared network folder).
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    precision: Precision,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>, precision: Precision) -> Store {
        Store {
            root: root.into(),
            precision,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `key`'s entry lives: `<root>/v1/ab/abcdef….kcam`.
    pub fn path(&self, key: &CacheKey) -> PathBuf {
        let address = key.address();
        self.root
            .join(format!("v{FORMAT}"))
            .join(&address[..2])
            .join(format!("{address}.kcam"))
    }

    /// The entry for `key`: Ok(None) when there is none, Err when it exists but cannot be
    /// trusted (the caller recomputes and replaces it).
    pub fn get(&self, key: &CacheKey) -> Result<Option<Entry>, StoreError> {
        let path = self.path(key);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(StoreError::Io { path, error }),
        };
        decode(&bytes)
            .map(Some)
            .map_err(|reason| StoreError::Corrupt { path, reason })
    }

    /// The entry in the file at `path` (for tools that walk a store).
    pub fn read_path(path: &Path) -> Result<Entry, StoreError> {
        let bytes = std::fs::read(path).map_err(|error| StoreError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        decode(&bytes).map_err(|reason| StoreError::Corrupt {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Writes and removes a small, uniquely named probe file under the root (creating it): a
    /// store on a read-only or full file system says so here, before any work is done for it.
    pub fn check_writable(&self) -> Result<(), StoreError> {
        let dir = self.root.join(format!("v{FORMAT}"));
        let io = |error| StoreError::Io {
            path: dir.clone(),
            error,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let mut probe = tempfile::Builder::new()
            .prefix(".probe.")
            .tempfile_in(&dir)
            .map_err(io)?;
        probe.write_all(&[0u8; 4096]).map_err(io)?;
        probe.close().map_err(io)
    }

    /// Writes `entry` for `key` atomically (temporary file, then rename), creating folders.
    pub fn put(&self, key: &CacheKey, entry: &Entry) -> Result<(), StoreError> {
        let path = self.path(key);
        let io = |error| StoreError::Io {
            path: path.clone(),
            error,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let bytes = encode(entry, self.precision);
        crate::fsutil::atomic_write_unsynced(&path, |w| w.write_all(&bytes)).map_err(io)
    }
}

impl Entry {
    pub fn from_explanation(explanation: &Explanation, placement: Placement) -> Entry {
        Entry {
            logits: explanation.logits.clone(),
            probability: explanation.probability,
            class: explanation.class,
            bias: explanation.bias,
            raw: explanation.raw.clone(),
            scores: explanation.scores.clone(),
            placement,
        }
    }

    /// The explanation this entry gives under `normalization` (display maps made on the CPU).
    pub fn explain(&self, method: Method, normalization: Normalization) -> Explanation {
        let (s, h, w) = self.raw.dim();
        let raw = Tensor::from_slice(self.raw.as_slice().unwrap_or(&[]))
            .reshape([s as i64, h as i64, w as i64]);
        let maps = tch::no_grad(|| {
            methods::display_maps(&raw, method, normalization, self.placement).to_kind(Kind::Uint8)
        });
        let (slice_h, slice_w) = self.placement.slice;
        let values = Vec::<u8>::try_from(maps.flatten(0, -1)).unwrap_or_default();
        self.clone().with_maps(
            Array3::from_shape_vec((s, slice_h, slice_w), values)
                .unwrap_or_else(|_| Array3::zeros((s, slice_h, slice_w))),
        )
    }

    /// The explanation this entry gives with display maps `maps` (S, H, W).
    pub fn with_maps(self, maps: Array3<u8>) -> Explanation {
        Explanation {
            logits: self.logits,
            probability: self.probability,
            class: self.class,
            raw: self.raw,
            scores: self.scores,
            maps,
            bias: self.bias,
        }
    }
}

fn encode(entry: &Entry, precision: Precision) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + entry.raw.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.push(match precision {
        Precision::F16 => 1,
        Precision::F32 => 0,
    });
    let u32s = |out: &mut Vec<u8>, values: &[usize]| {
        for v in values {
            out.extend_from_slice(&(*v as u32).to_le_bytes());
        }
    };
    let f32s = |out: &mut Vec<u8>, values: &[f32]| {
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    };
    let (s, h, w) = entry.raw.dim();
    let (top, left, height, width) = entry.placement.window;
    let (slice_h, slice_w) = entry.placement.slice;
    u32s(
        &mut out,
        &[
            entry.class,
            entry.logits.len(),
            s,
            h,
            w,
            top,
            left,
            height,
            width,
            slice_h,
            slice_w,
        ],
    );
    f32s(&mut out, &[entry.probability, entry.bias]);
    f32s(&mut out, &entry.logits);
    f32s(&mut out, &entry.scores);
    for v in entry.raw.iter() {
        match precision {
            Precision::F16 => out.extend_from_slice(&f16::from_f32(*v).to_le_bytes()),
            Precision::F32 => out.extend_from_slice(&v.to_le_bytes()),
        }
    }
    let checksum = Sha256::digest(&out);
    out.extend_from_slice(&checksum);
    out
}

/// Reads bytes front to back, every read checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| "truncated".to_string())?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u32(&mut self) -> Result<usize, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn f32s(&mut self, n: usize) -> Result<Vec<f32>, String> {
        let bytes = self.take(n.checked_mul(4).ok_or("too large")?)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    fn f16s(&mut self, n: usize) -> Result<Vec<f32>, String> {
        let bytes = self.take(n.checked_mul(2).ok_or("too large")?)?;
        Ok(bytes
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect())
    }
}

fn decode(bytes: &[u8]) -> Result<Entry, String> {
    if bytes.len() < MAGIC.len() + 5 + CHECKSUM {
        return Err("truncated".into());
    }
    let (body, checksum) = bytes.split_at(bytes.len() - CHECKSUM);
    if Sha256::digest(body).as_slice() != checksum {
        return Err("checksum mismatch (truncated or corrupt)".into());
    }
    let mut r = Reader { bytes: body, at: 0 };
    if r.take(4)? != MAGIC {
        return Err("not a kneecam CAM entry".into());
    }
    let format = r.u32()?;
    if format != FORMAT as usize {
        return Err(format!("store format {format}, expected {FORMAT}"));
    }
    let half = match r.take(1)?[0] {
        0 => false,
        1 => true,
        other => return Err(format!("unknown precision {other}")),
    };
    let header = (0..11).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
    let &[class, n_logits, s, h, w, top, left, height, width, slice_h, slice_w] = header.as_slice()
    else {
        return Err("truncated".into());
    };
    let [probability, bias]: [f32; 2] =
        r.f32s(2)?.try_into().map_err(|_| "truncated".to_string())?;
    let logits = r.f32s(n_logits)?;
    let scores = r.f32s(s)?;
    let cells = s
        .checked_mul(h)
        .and_then(|n| n.checked_mul(w))
        .ok_or("dimensions overflow")?;
    let raw = if half { r.f16s(cells)? } else { r.f32s(cells)? };
    if r.at != body.len() {
        return Err("trailing bytes".into());
    }
    let placement = Placement {
        window: (top, left, height, width),
        slice: (slice_h, slice_w),
    };
    if class >= n_logits || top + height > placement.slice.0 || left + width > placement.slice.1 {
        return Err("inconsistent header".into());
    }
    Ok(Entry {
        logits,
        probability,
        class,
        bias,
        raw: Array3::from_shape_vec((s, h, w), raw).map_err(|e| e.to_string())?,
        scores,
        placement,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            logits: vec![-0.5, 1.25],
            probability: 0.8,
            class: 1,
            bias: 0.1,
            raw: Array3::from_shape_fn((3, 2, 2), |(s, r, c)| (s * 4 + r * 2 + c) as f32 / 7.0),
            scores: vec![0.1, -0.2, 0.3],
            placement: Placement {
                window: (0, 0, 8, 8),
                slice: (8, 8),
            },
        }
    }

    fn key(method: Method) -> CacheKey {
        CacheKey {
            model_sha256: "a".repeat(64),
            exam_sha256: "b".repeat(64),
            method,
            class: 1,
            preprocess: Preprocess::Raw,
        }
    }

    #[test]
    fn entries_round_trip_in_both_precisions() {
        let dir = tempfile::tempdir().expect("tempdir");
        for precision in [Precision::F32, Precision::F16] {
            let store = Store::new(dir.path(), precision);
            store.put(&key(Method::Cam), &entry()).expect("put");
            let back = store.get(&key(Method::Cam)).expect("get").expect("present");
            let tolerance = if precision == Precision::F32 {
                0.0
            } else {
                1e-3
            };
            assert_eq!(back.logits, entry().logits);
            assert_eq!(back.scores, entry().scores);
            for (a, b) in back.raw.iter().zip(entry().raw.iter()) {
                assert!((a - b).abs() <= tolerance, "{a} vs {b}");
            }
        }
        assert!(store_miss(dir.path()));
    }

    fn store_miss(root: &Path) -> bool {
        let store = Store::new(root, Precision::F32);
        matches!(store.get(&key(Method::Contrib)), Ok(None))
    }

    #[test]
    fn keys_differ_by_every_part() {
        let base = key(Method::Cam);
        let variants = [
            CacheKey {
                method: Method::Contrib,
                ..base.clone()
            },
            CacheKey {
                class: 0,
                ..base.clone()
            },
            CacheKey {
                preprocess: Preprocess::Crop224Norm,
                ..base.clone()
            },
            CacheKey {
                exam_sha256: "c".repeat(64),
                ..base.clone()
            },
            CacheKey {
                model_sha256: "d".repeat(64),
                ..base.clone()
            },
        ];
        for variant in variants {
            assert_ne!(variant.address(), base.address());
        }
    }

    #[test]
    fn truncated_or_flipped_entries_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path(), Precision::F32);
        store.put(&key(Method::Cam), &entry()).expect("put");
        let path = store.path(&key(Method::Cam));
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncate");
        assert!(matches!(
            store.get(&key(Method::Cam)),
            Err(StoreError::Corrupt { .. })
        ));
        let mut flipped = bytes.clone();
        flipped[40] ^= 0x01;
        std::fs::write(&path, &flipped).expect("flip");
        let err = store.get(&key(Method::Cam)).expect_err("corrupt");
        assert!(err.to_string().contains("checksum"), "{err}");
        std::fs::write(&path, b"").expect("empty");
        assert!(store.get(&key(Method::Cam)).is_err());
    }

    #[test]
    fn an_entry_explains_like_the_cam_it_came_from() {
        let explained = entry().explain(Method::Cam, Normalization::Exam);
        assert_eq!(explained.maps.dim(), (3, 8, 8));
        assert_eq!(explained.maps.iter().max(), Some(&255));
        assert_eq!(explained.maps.iter().min(), Some(&0));
    }
}
