//! Phantom generation speed. The target is 100 exams in under 30 s on 2 cores in release,
//! files written; this measures a 10-exam cohort (× 10 gives the figure per 100) and one
//! exam's three planes on one thread.
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use kneecam::data::phantom::{write_cohort, CohortSpec, ExamPlan};
use kneecam::data::Plane;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("phantom");
    group.sample_size(10);
    group.bench_function("write 10-exam cohort (all cores)", |b| {
        b.iter(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let spec = CohortSpec {
                cases: 10,
                valid: 1,
                seed: 3,
            };
            write_cohort(dir.path(), &spec, false, || {}).expect("synth");
        })
    });
    group.bench_function("scan one exam, 3 planes (one thread)", |b| {
        let plan = ExamPlan::new(3, 0);
        b.iter(|| {
            for plane in Plane::ALL {
                black_box(plan.scan(plane));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
