//! One exam (S = 32, 256×256) on the CPU: the forward pass alone (dense convolutions, and as
//! loaded models run: oneDNN-prepacked) vs forward + each CAM method.
//! Targets: cam and contrib add ≤ 5 % to the forward, gradcam and gradcam++ ≤ 15 % (their
//! gradient goes through the pooling-and-linear head only).
use criterion::{criterion_group, criterion_main, Criterion};
use kneecam::cam::{explain, CamSpec, Method, Normalization, Placement};
use kneecam::model::mrnet::Mrnet;
use kneecam::model::network::{head, GapNetwork};
use kneecam::model::preprocess::Preprocess;
use ndarray::Array3;
use tch::Device;

fn bench(c: &mut Criterion) {
    tch::manual_seed(0);
    let dense = Mrnet::new(Device::Cpu, 2);
    tch::manual_seed(0);
    let mut net = Mrnet::new(Device::Cpu, 2);
    // As every loaded model: the convolutions in oneDNN's layout ("forward only, dense" is
    // without).
    net.prepack_for_cpu();
    let volume = Array3::from_shape_fn((32, 256, 256), |(s, r, col)| {
        ((s * 7 + r * 3 + col) % 256) as u8
    });
    let placement = Placement {
        window: (0, 0, 256, 256),
        slice: (256, 256),
    };
    let mut group = c.benchmark_group("cam (S=32, 256x256, CPU)");
    group.sample_size(10);
    group.bench_function("forward only, dense", |b| {
        b.iter(|| {
            let x = Preprocess::Raw.input(&volume, Device::Cpu);
            tch::no_grad(|| {
                let a = dense.features(&x).expect("forward");
                let (w, bias) = dense.classifier();
                Vec::<f32>::try_from(head(&a, w, bias)).expect("logits")
            })
        })
    });
    group.bench_function("forward only", |b| {
        b.iter(|| {
            let x = Preprocess::Raw.input(&volume, Device::Cpu);
            tch::no_grad(|| {
                let a = net.features(&x).expect("forward");
                let (w, bias) = net.classifier();
                Vec::<f32>::try_from(head(&a, w, bias)).expect("logits")
            })
        })
    });
    for method in Method::ALL {
        group.bench_function(format!("forward + {method}"), |b| {
            let spec = CamSpec {
                method,
                class: None,
                normalization: Normalization::Exam,
            };
            b.iter(|| {
                let x = Preprocess::Raw.input(&volume, Device::Cpu);
                explain(&net, &x, &spec, placement).expect("explain")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
