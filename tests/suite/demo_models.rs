//! The committed demo models (models/demo): they load, and on the regenerated valid split of
//! the cohort they were trained on (phantom seed 1, exams 300–359; same seed, same bytes) each
//! reproduces the validation AUC its manifest entry records.
use std::path::Path;

use kneecam::cam::forward;
use kneecam::data::phantom::ExamPlan;
use kneecam::data::{Plane, Task};
use kneecam::model::manifest::{load_network, Manifest};
use kneecam::model::metrics::auc;
use kneecam::model::network::positive_probability;
use ndarray::Array3;
use rayon::prelude::*;

const TRAINING_SEED: u64 = 1;
const VALID_IDS: std::ops::Range<u32> = 300..360;

fn demo_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models/demo"))
}

/// Each valid exam's three series and labels, generated in parallel.
fn valid_split() -> Vec<([Array3<u8>; 3], [bool; 3])> {
    VALID_IDS
        .into_par_iter()
        .map(|id| {
            let plan = ExamPlan::new(TRAINING_SEED, id);
            (Plane::ALL.map(|plane| plan.scan(plane).0), plan.labels())
        })
        .collect()
}

#[test]
fn every_demo_model_reproduces_its_recorded_validation_auc() {
    let manifest = Manifest::load(demo_dir()).expect("models/demo/manifest.toml");
    assert_eq!(manifest.models().count(), 9, "3 tasks × 3 planes");
    for task in Task::ALL {
        assert!(manifest.combiner(task).is_some(), "{task}: no combiner");
    }
    let exams = valid_split();
    for ((task, plane), entry) in manifest.models() {
        let network = crate::torch_rng(None, || load_network(demo_dir(), entry, tch::Device::Cpu))
            .expect("loads");
        let (scores, labels): (Vec<f64>, Vec<bool>) = exams
            .iter()
            .map(|(series, labels)| {
                let x = entry
                    .preprocess
                    .input(&series[plane.index()], tch::Device::Cpu);
                let logits = forward(&network, &x).expect("forward").logits;
                (
                    f64::from(positive_probability(&logits)),
                    labels[task.index()],
                )
            })
            .unzip();
        let found = auc(&scores, &labels).expect("both classes in the valid split");
        let recorded = entry.auc.expect("the manifest records the AUC");
        assert!(
            (found - recorded).abs() < 1e-3,
            "{task}-{plane}: AUC {found:.4} on the regenerated split, {recorded:.4} recorded"
        );
    }
}

#[test]
fn the_demo_cohort_is_not_the_training_cohort() {
    assert_ne!(kneecam::cli::demo::DEMO_SEED, TRAINING_SEED);
}
