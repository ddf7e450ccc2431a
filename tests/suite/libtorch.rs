//! Real libtorch on the CPU, through tch.
use tch::{Device, Kind, Tensor};

#[test]
fn conv2d_forward_on_cpu_gives_the_hand_computed_output() {
    let input = Tensor::arange_start(1, 10, (Kind::Float, Device::Cpu)).view([1, 1, 3, 3]);
    let weight = Tensor::ones([1, 1, 2, 2], (Kind::Float, Device::Cpu));
    let bias = Tensor::from_slice(&[0.5f32]);
    let out = input.conv2d(&weight, Some(&bias), [1, 1], [0, 0], [1, 1], 1);
    assert_eq!(out.size(), vec![1, 1, 2, 2]);
    let values: Vec<f32> = out.flatten(0, -1).try_into().expect("f32 values");
    // 1+2+4+5, 2+3+5+6, 4+5+7+8, 5+6+8+9, each plus the bias.
    assert_eq!(values, vec![12.5, 16.5, 24.5, 28.5]);
}

#[test]
fn autograd_reaches_the_input() {
    let x = Tensor::from_slice(&[1.0f32, 2.0, 3.0]).set_requires_grad(true);
    let y = (&x * &x).sum(Kind::Float);
    y.backward();
    let grad: Vec<f32> = x.grad().try_into().expect("f32 grad");
    assert_eq!(grad, vec![2.0, 4.0, 6.0]);
}
