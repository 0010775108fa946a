//! The non-conv ops and the layout conversions against the oracle.

use super::{gpu, random};
use crate::{Activation, AffinePlan, GpuTensor, LinearPlan, SqueezeExcitePlan, ops};
use reparam_tensor::BatchNorm;
use reparam_tensor::reference;
use reparam_tensor::tolerance::{Tolerance, assert_close};
use reparam_tensor::{Shape, Tensor};

/// Element-wise ops: one rounding each, compare tightly.
const ELEMENTWISE: Tolerance = Tolerance {
    max_rel: 1e-6,
    rel_l2: 1e-6,
};

fn poisoned(ctx: &crate::GpuContext, shape: Shape) -> GpuTensor {
    let t = GpuTensor::zeros(ctx, shape).unwrap();
    t.fill(ctx, f32::NAN).unwrap();
    t
}

#[test]
fn upload_download_round_trip_is_exact() {
    let Some(ctx) = gpu() else { return };
    for shape in [[1, 1, 1, 1], [2, 3, 5, 7], [3, 16, 4, 4], [1, 17, 2, 9]] {
        let t = random(shape, 11);
        let back = GpuTensor::upload(ctx, &t).unwrap().download(ctx).unwrap();
        assert_eq!(back, t, "shape {shape:?}");
    }
}

#[test]
fn batch_norm_relu_and_add_match_the_oracle() {
    let Some(ctx) = gpu() else { return };
    for shape in [[2, 5, 3, 4], [1, 16, 7, 7], [1, 1, 1, 1]] {
        let c = shape[1];
        let bn = BatchNorm {
            gamma: random([1, c, 1, 1], 1).into_data(),
            beta: random([1, c, 1, 1], 2).into_data(),
            mean: random([1, c, 1, 1], 3).into_data(),
            var: random([1, c, 1, 1], 4)
                .into_data()
                .iter()
                .map(|v| v.abs() + 0.1)
                .collect(),
            eps: 1e-5,
        };
        let (a, b) = (random(shape, 5), random(shape, 6));
        let (ga, gb) = (
            GpuTensor::upload(ctx, &a).unwrap(),
            GpuTensor::upload(ctx, &b).unwrap(),
        );

        let y = poisoned(ctx, shape);
        let op = AffinePlan::batch_norm(ctx, &bn, false)
            .unwrap()
            .bind(ctx, &ga, None, &y)
            .unwrap();
        ctx.run(&[&op]).unwrap();
        let expected = reference::batch_norm(&a, &bn).unwrap();
        assert_close(
            &y.download(ctx).unwrap(),
            &expected,
            &ELEMENTWISE,
            "batch norm",
        );

        let y = poisoned(ctx, shape);
        let op = AffinePlan::identity(ctx, c, true)
            .unwrap()
            .bind(ctx, &ga, Some(&gb), &y)
            .unwrap();
        ctx.run(&[&op]).unwrap();
        let expected = reference::relu(&reference::add(&a, &b).unwrap());
        assert_close(
            &y.download(ctx).unwrap(),
            &expected,
            &ELEMENTWISE,
            "add + relu",
        );

        let y = poisoned(ctx, shape);
        let op = AffinePlan::identity(ctx, c, true)
            .unwrap()
            .bind(ctx, &ga, None, &y)
            .unwrap();
        ctx.run(&[&op]).unwrap();
        assert_close(
            &y.download(ctx).unwrap(),
            &reference::relu(&a),
            &ELEMENTWISE,
            "relu",
        );
    }
}

#[test]
fn pool_and_linear_head_match_the_oracle() {
    let Some(ctx) = gpu() else { return };
    let x = random([3, 13, 5, 6], 7);
    let gx = GpuTensor::upload(ctx, &x).unwrap();
    let pooled = poisoned(ctx, [3, 13, 1, 1]);
    let op = ops::global_avg_pool(ctx, &gx, &pooled).unwrap();
    ctx.run(&[&op]).unwrap();
    let expected = reference::global_avg_pool(&x).unwrap();
    assert_close(
        &pooled.download(ctx).unwrap(),
        &expected,
        &Tolerance::for_reduction(30, 1.0),
        "pool",
    );

    let weight = random([10, 13, 1, 1], 8);
    let bias = random([1, 10, 1, 1], 9).into_data();
    let logits = poisoned(ctx, [3, 10, 1, 1]);
    let plan = LinearPlan::new(ctx, &weight, &bias, Activation::Identity).unwrap();
    let op = plan.bind(ctx, &pooled, &logits).unwrap();
    ctx.run(&[&op]).unwrap();
    let expected = reference::linear(&expected, &weight, Some(&bias)).unwrap();
    assert_close(
        &logits.download(ctx).unwrap(),
        &expected,
        &Tolerance::for_reduction(13 * 30, 1.0),
        "linear",
    );
}

#[test]
fn squeeze_excite_matches_the_oracle() {
    let Some(ctx) = gpu() else { return };
    let (c, r) = (12, 3);
    let x = random([2, c, 4, 5], 10);
    let (wd, bd) = (
        random([r, c, 1, 1], 11),
        random([1, r, 1, 1], 12).into_data(),
    );
    let (wu, bu) = (
        random([c, r, 1, 1], 13),
        random([1, c, 1, 1], 14).into_data(),
    );
    let plan = SqueezeExcitePlan::new(ctx, (&wd, &bd), (&wu, &bu)).unwrap();
    let gx = GpuTensor::upload(ctx, &x).unwrap();
    let y = poisoned(ctx, x.shape());
    let op = plan.bind(ctx, &gx, &y).unwrap();
    assert_eq!(op.dispatch_count(), 4);
    ctx.run(&[&op]).unwrap();

    let p = reference::global_avg_pool(&x).unwrap();
    let z = reference::relu(&reference::linear(&p, &wd, Some(&bd)).unwrap());
    let s = reference::sigmoid(&reference::linear(&z, &wu, Some(&bu)).unwrap());
    let expected = reference::scale_channels(&x, &s).unwrap();
    assert_close(
        &y.download(ctx).unwrap(),
        &expected,
        &Tolerance::for_reduction(20 * 12, 2.0),
        "squeeze-excite",
    );
}

#[test]
fn ops_reject_mismatched_shapes() {
    let Some(ctx) = gpu() else { return };
    let a = GpuTensor::zeros(ctx, [1, 4, 3, 3]).unwrap();
    let b = GpuTensor::zeros(ctx, [1, 4, 3, 2]).unwrap();
    let plan = AffinePlan::identity(ctx, 4, false).unwrap();
    assert!(plan.bind(ctx, &a, Some(&b), &a).is_err());
    assert!(plan.bind(ctx, &a, None, &b).is_err());
    assert!(
        AffinePlan::identity(ctx, 5, false)
            .unwrap()
            .bind(ctx, &a, None, &a)
            .is_err()
    );
    assert!(AffinePlan::new(ctx, &[1.0, f32::NAN], &[0.0, 0.0], false).is_err());
    let w = Tensor::zeros([3, 4, 1, 1]).unwrap();
    assert!(LinearPlan::new(ctx, &w, &[0.0; 2], Activation::Identity).is_err());
}
