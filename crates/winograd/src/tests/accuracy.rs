//! The measured error of each algorithm at C = 192 (RepVGG-A0's last stride-1 stage), with
//! bounds that fail if it grows.
//!
//! Setup (`docs/winograd.md#measured-error-per-algorithm`): a 192 -> 192 3x3 layer,
//! post-ReLU-like inputs uniform in [0, 1), weights uniform with the He variance 2/(9C), no
//! epilogue (the bare sum), compared with the f64 oracle by relative L2 error.
//!
//! | algorithm | bound (rel-L2) |
//! |---|---|
//! | direct | [`BOUND_DIRECT`] |
//! | F(2,3) | [`BOUND_F23`] |
//! | F(4,3) | [`BOUND_F43`] |
//! | F(6,3) | [`BOUND_F63`] |

use super::{Data, options, tested_isas, tolerance, visible};
use crate::{Algorithm, Conv2dPlan};
use reparam_tensor::reference::conv2d;
use reparam_tensor::tolerance::compare;
use reparam_tensor::{ConvSpec, Epilogue, Tensor};

/// Bound on direct's rel-L2 error at C = 192.
const BOUND_DIRECT: f64 = 1.5e-6;
/// Bound on F(2,3)'s rel-L2 error at C = 192.
const BOUND_F23: f64 = 1.0e-6;
/// Bound on F(4,3)'s rel-L2 error at C = 192 (issue requirement: ≤ 2e-6).
const BOUND_F43: f64 = 2.0e-6;
/// Bound on F(6,3)'s rel-L2 error at C = 192 (issue requirement: ≤ 1e-5).
const BOUND_F63: f64 = 1.0e-5;

fn bound(a: Algorithm) -> f64 {
    match a {
        Algorithm::Auto | Algorithm::Direct => BOUND_DIRECT,
        Algorithm::WinogradF23 => BOUND_F23,
        Algorithm::WinogradF43 => BOUND_F43,
        Algorithm::WinogradF63 => BOUND_F63,
    }
}

#[test]
fn winograd_error_at_c192_does_not_grow() {
    const C: usize = 192;
    const HW: usize = 28;
    let spec = ConvSpec::conv3x3(C, C, 1, 1);
    let data = Data::network(&spec, [1, C, HW, HW], 192);
    let epilogue = Epilogue::none();
    let expected = conv2d(&data.x, &spec, &data.w, &epilogue).expect("oracle");
    let mut failures = Vec::new();
    for isa in tested_isas() {
        let mut line = format!("rel-L2 error at C={C}, {HW}x{HW}, {isa}:");
        for algorithm in Algorithm::CONCRETE {
            let plan = Conv2dPlan::new(spec, &data.w, &epilogue, &options(algorithm, isa))
                .unwrap_or_else(|e| panic!("{algorithm} on {isa}: {e}"));
            let mut out = Tensor::filled(expected.shape(), f32::NAN).expect("shape");
            plan.run(&data.x, &mut out, None)
                .unwrap_or_else(|e| panic!("{algorithm} on {isa}: {e}"));
            let cmp = compare(&out, &expected).expect("same shape");
            line += &format!(
                " {algorithm} {:.2e} (max rel {:.2e});",
                cmp.rel_l2, cmp.max_rel
            );
            if cmp.rel_l2 > bound(algorithm) || !cmp.within(&tolerance(&spec, algorithm)) {
                failures.push(format!(
                    "{algorithm} on {isa}: {cmp}; bound rel-L2 {:.1e}, tolerance {:?}",
                    bound(algorithm),
                    tolerance(&spec, algorithm)
                ));
            }
        }
        visible(&line);
    }
    assert!(
        failures.is_empty(),
        "error grew past its bound:\n{}",
        failures.join("\n")
    );
}
