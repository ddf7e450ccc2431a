//! Every CAM method against an independent, slow computation with plain ndarray loops, on a
//! real MRNet (fixed random weights) run by libtorch on the CPU.
use kneecam::cam::{explain, methods, CamSpec, Method, Normalization, Placement};
use kneecam::model::mrnet::Mrnet;
use kneecam::model::network::GapNetwork;
use kneecam::model::preprocess::Preprocess;
use ndarray::{Array2, Array3, Array4};
use tch::{Device, Kind, Tensor};

const SLICES: usize = 5;
const SIDE: usize = 128;

struct Fixture {
    net: Mrnet,
    x: Tensor,
    a: Array4<f32>,
    w: Array2<f32>,
    b: Vec<f32>,
}

/// Tests run in parallel threads and libtorch's generator is global: seeding and creating
/// the net happen under one lock, so every test gets the same weights.
fn seeded_net() -> Mrnet {
    crate::torch_rng(Some(7), || Mrnet::new(Device::Cpu, 2))
}

fn fixture() -> Fixture {
    let net = seeded_net();
    let volume = Array3::from_shape_fn((SLICES, SIDE, SIDE), |(s, r, c)| {
        let blob = ((r as f64 - 40.0 - 12.0 * s as f64).powi(2) + (c as f64 - 70.0).powi(2)).sqrt();
        (255.0 / (1.0 + blob / 9.0) + ((r * 7 + c * 13 + s * 31) % 23) as f64) as u8
    });
    let x = Preprocess::Raw.input(&volume, Device::Cpu);
    let features = tch::no_grad(|| net.features(&x)).expect("forward");
    let (weight, bias) = net.classifier();
    Fixture {
        a: to_array4(&features),
        w: to_array2(weight),
        b: Vec::<f32>::try_from(bias.detach()).expect("bias"),
        net,
        x,
    }
}

fn to_array4(t: &Tensor) -> Array4<f32> {
    let size: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let values = Vec::<f32>::try_from(t.detach().contiguous().flatten(0, -1)).expect("f32");
    Array4::from_shape_vec((size[0], size[1], size[2], size[3]), values).expect("shape")
}

fn to_array2(t: &Tensor) -> Array2<f32> {
    let size: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let values = Vec::<f32>::try_from(t.detach().contiguous().flatten(0, -1)).expect("f32");
    Array2::from_shape_vec((size[0], size[1]), values).expect("shape")
}

/// pooled[s][c], the winning slice of each channel, and the logits, by loops.
fn slow_head(f: &Fixture) -> (Array2<f64>, Vec<usize>, Vec<f64>) {
    let (s_n, c_n, h, w) = f.a.dim();
    let mut pooled = Array2::<f64>::zeros((s_n, c_n));
    for s in 0..s_n {
        for c in 0..c_n {
            let mut sum = 0.0;
            for y in 0..h {
                for x in 0..w {
                    sum += f64::from(f.a[[s, c, y, x]]);
                }
            }
            pooled[[s, c]] = sum / (h * w) as f64;
        }
    }
    let winners: Vec<usize> = (0..c_n)
        .map(|c| {
            (0..s_n).fold(0, |best, s| {
                if pooled[[s, c]] > pooled[[best, c]] {
                    s
                } else {
                    best
                }
            })
        })
        .collect();
    let logits = (0..f.w.dim().0)
        .map(|k| {
            (0..c_n)
                .map(|c| f64::from(f.w[[k, c]]) * pooled[[winners[c], c]])
                .sum::<f64>()
                + f64::from(f.b[k])
        })
        .collect();
    (pooled, winners, logits)
}

/// The raw map of `method` for class k, by loops.
fn slow_map(f: &Fixture, method: Method, k: usize) -> Array3<f64> {
    let (s_n, c_n, h, w) = f.a.dim();
    let (_, winners, _) = slow_head(f);
    let area = (h * w) as f64;
    // d logit_k / dA[s,c,y,x] = w[k,c]·[s = s*(c)] / (h·w)
    let grad = |s: usize, c: usize| {
        if winners[c] == s {
            f64::from(f.w[[k, c]]) / area
        } else {
            0.0
        }
    };
    let mut channel_weight = Array2::<f64>::zeros((s_n, c_n));
    for s in 0..s_n {
        for c in 0..c_n {
            channel_weight[[s, c]] = match method {
                Method::Cam => f64::from(f.w[[k, c]]),
                Method::Contrib => {
                    if winners[c] == s {
                        f64::from(f.w[[k, c]])
                    } else {
                        0.0
                    }
                }
                Method::GradCam => grad(s, c),
                Method::GradCamPlusPlus => {
                    let g = grad(s, c);
                    let sum_a: f64 = (0..h)
                        .flat_map(|y| (0..w).map(move |x| (y, x)))
                        .map(|(y, x)| f64::from(f.a[[s, c, y, x]]))
                        .sum();
                    let alpha = if g != 0.0 {
                        g * g / (2.0 * g * g + sum_a * g * g * g + 1e-6)
                    } else {
                        0.0
                    };
                    area * g.max(0.0) * alpha
                }
            };
        }
    }
    Array3::from_shape_fn((s_n, h, w), |(s, y, x)| {
        (0..c_n)
            .map(|c| channel_weight[[s, c]] * f64::from(f.a[[s, c, y, x]]))
            .sum()
    })
}

fn run(f: &Fixture, method: Method, normalization: Normalization) -> kneecam::cam::Explanation {
    let spec = CamSpec {
        method,
        class: None,
        normalization,
    };
    let placement = Placement {
        window: (0, 0, SIDE, SIDE),
        slice: (SIDE, SIDE),
    };
    explain(&f.net, &f.x, &spec, placement).expect("explain")
}

fn assert_close_to_range(fast: &Array3<f32>, slow: &Array3<f64>, what: &str) {
    let range = slow.iter().cloned().fold(f64::MIN, f64::max)
        - slow.iter().cloned().fold(f64::MAX, f64::min);
    assert!(range > 0.0, "{what}: degenerate map");
    let worst = fast
        .iter()
        .zip(slow.iter())
        .map(|(&a, &b)| (f64::from(a) - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst <= 1e-4 * range,
        "{what}: max |diff| {worst} > 1e-4 × range {range}"
    );
}

#[test]
fn logits_and_every_method_match_the_slow_computation() {
    let f = fixture();
    let (_, _, slow_logits) = slow_head(&f);
    for method in Method::ALL {
        let e = run(&f, method, Normalization::Exam);
        for (fast, slow) in e.logits.iter().zip(&slow_logits) {
            assert!(
                (f64::from(*fast) - slow).abs() < 1e-4 * slow.abs().max(1.0),
                "logits {fast} vs {slow}"
            );
        }
        assert_close_to_range(&e.raw, &slow_map(&f, method, e.class), method.name());
    }
}

#[test]
fn contrib_scores_plus_bias_add_up_to_the_logit() {
    let f = fixture();
    for class in [0, 1] {
        let spec = CamSpec {
            method: Method::Contrib,
            class: Some(class),
            normalization: Normalization::Exam,
        };
        let placement = Placement {
            window: (0, 0, SIDE, SIDE),
            slice: (SIDE, SIDE),
        };
        let e = explain(&f.net, &f.x, &spec, placement).expect("explain");
        let total: f64 =
            e.scores.iter().map(|&s| f64::from(s)).sum::<f64>() + f64::from(f.b[class]);
        let logit = f64::from(e.logits[class]);
        assert!(
            (total - logit).abs() <= 1e-4 * logit.abs().max(1e-3),
            "class {class}: {total} vs {logit}"
        );
    }
}

#[test]
fn gradcam_is_zero_on_slices_that_win_no_channel() {
    let f = fixture();
    let (_, winners, _) = slow_head(&f);
    let e = run(&f, Method::GradCam, Normalization::None);
    let losers: Vec<usize> = (0..SLICES).filter(|s| !winners.contains(s)).collect();
    for &s in &losers {
        assert!(
            e.raw
                .index_axis(ndarray::Axis(0), s)
                .iter()
                .all(|&v| v == 0.0),
            "slice {s}"
        );
    }
    let any_winner_nonzero = (0..SLICES).filter(|s| winners.contains(s)).any(|s| {
        e.raw
            .index_axis(ndarray::Axis(0), s)
            .iter()
            .any(|&v| v != 0.0)
    });
    assert!(any_winner_nonzero);
}

/// Bilinear with half-pixel centres (OpenCV resize, torch interpolate(align_corners=False)).
fn slow_upsample(map: &Array2<f64>, out: usize) -> Array2<f64> {
    let (h, w) = map.dim();
    let coord = |d: usize, n_in: usize| {
        let src = ((d as f64 + 0.5) * n_in as f64 / out as f64 - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(n_in - 1);
        (i0, (i0 + 1).min(n_in - 1), src - i0 as f64)
    };
    Array2::from_shape_fn((out, out), |(y, x)| {
        let (y0, y1, ly) = coord(y, h);
        let (x0, x1, lx) = coord(x, w);
        (1.0 - ly) * ((1.0 - lx) * map[[y0, x0]] + lx * map[[y0, x1]])
            + ly * ((1.0 - lx) * map[[y1, x0]] + lx * map[[y1, x1]])
    })
}

#[test]
fn display_maps_are_normalised_then_upsampled_like_opencv() {
    let f = fixture();
    for normalization in [Normalization::Exam, Normalization::Slice] {
        let e = run(&f, Method::Cam, normalization);
        let slow = slow_map(&f, Method::Cam, e.class);
        let (lo_all, hi_all) = (
            slow.iter().cloned().fold(f64::MAX, f64::min),
            slow.iter().cloned().fold(f64::MIN, f64::max),
        );
        for s in 0..SLICES {
            let plane = slow.index_axis(ndarray::Axis(0), s).to_owned();
            let (lo, hi) = match normalization {
                Normalization::Slice => (
                    plane.iter().cloned().fold(f64::MAX, f64::min),
                    plane.iter().cloned().fold(f64::MIN, f64::max),
                ),
                _ => (lo_all, hi_all),
            };
            let unit = plane.mapv(|v| (v - lo) / (hi - lo));
            let up = slow_upsample(&unit, SIDE);
            for ((y, x), &v) in up.indexed_iter() {
                let fast = i32::from(e.maps[[s, y, x]]);
                let expected = (v * 255.0).round() as i32;
                assert!(
                    (fast - expected).abs() <= 1,
                    "{normalization} slice {s} ({y},{x}): {fast} vs {expected}"
                );
            }
        }
    }
}

#[test]
fn a_cropped_input_is_placed_back_into_the_slice() {
    let f = fixture();
    let spec = CamSpec {
        method: Method::Cam,
        class: None,
        normalization: Normalization::Exam,
    };
    let placement = Placement {
        window: (10, 20, SIDE, SIDE),
        slice: (SIDE + 30, SIDE + 40),
    };
    let e = explain(&f.net, &f.x, &spec, placement).expect("explain");
    assert_eq!(e.maps.dim(), (SLICES, SIDE + 30, SIDE + 40));
    assert!(e
        .maps
        .slice(ndarray::s![.., ..10, ..])
        .iter()
        .all(|&v| v == 0));
    let uncropped = run(&f, Method::Cam, Normalization::Exam);
    assert_eq!(
        e.maps.slice(ndarray::s![.., 10..10 + SIDE, 20..20 + SIDE]),
        uncropped.maps,
        "the window holds exactly the map of the uncropped input"
    );
    let outside: usize = e.maps.iter().filter(|&&v| v != 0).count()
        - e.maps
            .slice(ndarray::s![.., 10..10 + SIDE, 20..20 + SIDE])
            .iter()
            .filter(|&&v| v != 0)
            .count();
    assert_eq!(outside, 0, "nothing outside the window");
}

#[test]
fn asking_for_a_class_the_model_lacks_is_an_error() {
    let f = fixture();
    let spec = CamSpec {
        method: Method::Cam,
        class: Some(2),
        normalization: Normalization::Exam,
    };
    let placement = Placement {
        window: (0, 0, SIDE, SIDE),
        slice: (SIDE, SIDE),
    };
    let err = explain(&f.net, &f.x, &spec, placement).expect_err("class 2 of 2");
    assert!(
        err.to_string()
            .contains("class 2 asked for, but the model has 2 output(s)"),
        "{err}"
    );
}

#[test]
fn winning_slices_are_one_hot_per_channel() {
    let f = fixture();
    let features = tch::no_grad(|| f.net.features(&f.x)).expect("forward");
    let onehot = methods::winning_slices(&features);
    let per_channel = onehot.sum_dim_intlist([0i64].as_slice(), false, Kind::Float);
    assert!(Vec::<f32>::try_from(per_channel)
        .expect("sums")
        .iter()
        .all(|&v| v == 1.0));
}

#[test]
fn a_series_too_small_for_the_network_is_an_error_not_a_crash() {
    let f = fixture();
    let tiny_volume = Array3::<u8>::zeros((2, 20, 20));
    let x = Preprocess::Raw.input(&tiny_volume, Device::Cpu);
    let spec = CamSpec {
        method: Method::GradCam,
        class: None,
        normalization: Normalization::Exam,
    };
    let placement = Placement {
        window: (0, 0, 20, 20),
        slice: (20, 20),
    };
    let err = explain(&f.net, &x, &spec, placement).expect_err("20 px is below AlexNet's minimum");
    assert!(
        err.to_string()
            .contains("the network refused the input of shape [2, 3, 20, 20]"),
        "{err}"
    );
    // Grad mode survived the panic: Grad-CAM still works on a proper series.
    assert!(run(&f, Method::GradCam, Normalization::Exam)
        .raw
        .iter()
        .any(|&v| v != 0.0));
}

#[test]
fn several_methods_entries_at_once_are_each_methods_own_entry() {
    // store_entries computes the logit's gradient once for Grad-CAM and Grad-CAM++.
    let f = fixture();
    let pass = kneecam::cam::forward(&f.net, &f.x).expect("forward");
    let placement = Placement {
        window: (0, 0, SIDE, SIDE),
        slice: (SIDE, SIDE),
    };
    let together = kneecam::cam::store_entries(&f.net, &pass, &Method::ALL, Some(1), placement)
        .expect("entries");
    assert_eq!(together.len(), Method::ALL.len());
    for (&method, entry) in Method::ALL.iter().zip(&together) {
        let alone =
            kneecam::cam::store_entry(&f.net, &pass, method, Some(1), placement).expect("entry");
        assert_eq!(entry, &alone, "{method}");
    }
}
