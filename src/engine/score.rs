//! Scoring an exam: each plane's series read once, each model's P(positive) from the CAM store
//! when it holds that model's result for the series, else from running the model.
use crate::cam::store::{CacheKey, Store};
use crate::cam::Method;
use crate::data::dataset::Exam;
use crate::data::Plane;
use crate::model::manifest::ModelEntry;

use super::message::{ExamScores, ModelKey};

/// P(positive) from any method's entry in the store (they share the forward pass).
pub fn stored_probability(store: &Store, entry: &ModelEntry, exam_sha256: &str) -> Option<f32> {
    Method::ALL.into_iter().find_map(|method| {
        let key = CacheKey::for_model(entry, exam_sha256, method);
        store.get(&key).ok().flatten().map(|e| e.probability)
    })
}

/// `exam`'s scores for `models` (with their manifest entries, for the store's keys): `run`
/// computes one model on one series. Planes that cannot be read are listed, not fatal; an
/// error of `run` (or a stop it asks for) ends the scoring.
pub fn exam_scores<E>(
    exam: &Exam,
    models: &[(ModelKey, Option<ModelEntry>)],
    store: Option<&Store>,
    mut run: impl FnMut(ModelKey, &ndarray::Array3<u8>) -> Result<f32, E>,
) -> Result<ExamScores, E> {
    let mut scores = ExamScores::default();
    for plane in Plane::ALL {
        let wanted: Vec<&(ModelKey, Option<ModelEntry>)> =
            models.iter().filter(|(key, _)| key.1 == plane).collect();
        if wanted.is_empty() || exam.path(plane).is_none() {
            continue;
        }
        let loaded = match store {
            Some(_) => exam.load_hashed(plane).map(|(v, sha)| (v, Some(sha))),
            None => exam.load(plane).map(|v| (v, None)),
        };
        let (volume, sha) = match loaded {
            Ok(loaded) => loaded,
            Err(err) => {
                scores.unreadable.push(err.to_string());
                continue;
            }
        };
        for (key, entry) in wanted {
            let stored = match (store, entry, &sha) {
                (Some(store), Some(entry), Some(sha)) => stored_probability(store, entry, sha),
                _ => None,
            };
            let probability = match stored {
                Some(p) => {
                    scores.from_store += 1;
                    p
                }
                None => run(*key, &volume.data)?,
            };
            scores.probabilities.set(key.0, key.1, Some(probability));
        }
    }
    Ok(scores)
}
