//! The timm-produced fixtures: our multi-branch run, fold and plain run against PyTorch.
//!
//! `tests/fixtures/{tiny,tiny-g4}` hold a small RepVGG (stem 12, stages 16/32/48/80 of depths
//! 2/3/4/1, grouped blocks with g = 2 resp. 4, 10 classes) exported by timm 1.0.31 / torch
//! 2.15 (`manifest.json`): the training-time weights in timm and official naming, the weights
//! timm's `reparameterize_model` produced in both namings, a `[2, 3, 57, 57]` input and
//! PyTorch's f32 outputs of both forms (every stage, the pooled features, the logits).
//!
//! For each fixture and each naming:
//! 1. the multi-branch graph of the training file reproduces `train_time_*`;
//! 2. our fold of the training weights reproduces the deploy file's kernels and biases;
//! 3. the plain graph of our fold reproduces `deploy_*`;
//! 4. the plain graph of the deploy file reproduces `deploy_*`.
//!
//! # Tolerances
//! Our runs use the f64-accumulating oracle, so their error is negligible; the error being
//! measured is PyTorch's. Its f32 convolutions (reductions of `K = (C_in/g)·9 ≤ 432`) carry a
//! relative error of order `√K·u` each (`u = 2⁻²⁴`), and 11 blocks plus the head compound that:
//! the expected values themselves are off by roughly `depth·√K·u ≈ 11·21·6e-8 ≈ 1.4e-5`
//! relative in the worst case, much less in L2 since independent roundings add in quadrature.
//! Element-wise errors are measured relative to `max(|e|, RMS(e))`; near-zero elements after a
//! ReLU inherit the absolute error of the cancelling branches. [`RUN_TOLERANCE`] allows
//! `rel_L2 ≤ 2e-5` (the linear worst case above) and `max rᵢ ≤ 2e-4`; the measured worst values
//! over both fixtures, both namings, both forms and all 7 outputs were `rel_L2 ≤ 1.5e-6` and
//! `max rᵢ ≤ 8e-6` (printed as `measured_errors` with `--nocapture`).
//!
//! The fused weights: PyTorch folds in f32 (`t = γ/√(σ²+ε)`, `K = W·t`, three rounded partial
//! sums), we fold in f64 and round once, so each element differs by a few `u` of the largest
//! branch term. [`WEIGHT_TOLERANCE`] allows `max rᵢ ≤ 1e-5` and `rel_L2 ≤ 2e-6` per tensor
//! (measured: ≤ 4.8e-7 and ≤ 8.6e-8).
//!
//! A real mistake is far outside these bounds. Checked by hand when these tests were written,
//! by breaking the fold three ways: the pre-fix identity kernel `[o, o, 1, 1]` for grouped
//! blocks (weights off by 1e6x the tolerance, runs by 2e4x), ε = 1e-3 instead of 1e-5 (2e3x,
//! 6e2x) and the identity BN's shift dropped (9e4x, 3e4x); the property test of
//! `equivalence.rs` failed for each as well.

use reparam_tensor::Tensor;
use reparam_tensor::tolerance::{Comparison, Tolerance, assert_close};
use repvgg::checkpoint::{Checkpoint, LoadOptions, Naming, load_file};
use repvgg::{Executor, Graph, Outputs, PlainNet, RunOutput, TrainNet, fuse};
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The fixture directories under `tests/fixtures`, with the group count of their grouped blocks.
pub(crate) const FIXTURES: [(&str, usize); 2] = [("tiny", 2), ("tiny-g4", 4)];

/// Training-time and deployed file of each naming scheme.
pub(crate) const FILES: [(Naming, &str, &str); 2] = [
    (Naming::Timm, "train_time.safetensors", "deploy.safetensors"),
    (
        Naming::Official,
        "train_time_official.safetensors",
        "deploy_official.safetensors",
    ),
];

/// Outputs of a run against PyTorch's f32 outputs; derivation in the [module docs](self).
pub(crate) const RUN_TOLERANCE: Tolerance = Tolerance {
    max_rel: 2e-4,
    rel_l2: 2e-5,
};

/// Our fused kernels and biases against PyTorch's fold; derivation in the [module docs](self).
const WEIGHT_TOLERANCE: Tolerance = Tolerance {
    max_rel: 1e-5,
    rel_l2: 2e-6,
};

pub(crate) fn fixture_path(fixture: &str, file: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "fixtures", fixture, file]
        .iter()
        .collect()
}

/// Every tensor of a safetensors file as an f32 [`Tensor`], 1- and 2-D shapes padded with
/// trailing unit axes to `[N, C, 1, 1]` (the layout of our logits and pooled features).
pub(crate) fn read_tensors(fixture: &str, file: &str) -> BTreeMap<String, Tensor> {
    let path = fixture_path(fixture, file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), Dtype::F32, "{file}: `{name}`");
            let mut shape = [1usize; 4];
            assert!(view.shape().len() <= 4, "{file}: `{name}` has rank > 4");
            shape[..view.shape().len()].copy_from_slice(view.shape());
            let data = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let tensor = Tensor::new(shape, data).unwrap_or_else(|e| panic!("`{name}`: {e}"));
            (name, tensor)
        })
        .collect()
}

pub(crate) fn input(fixture: &str) -> Tensor {
    let mut tensors = read_tensors(fixture, "input.safetensors");
    let x = tensors
        .remove("input")
        .expect("input.safetensors holds `input`");
    assert_eq!(x.shape(), [2, 3, 57, 57]);
    x
}

/// PyTorch's outputs of one form: `{prefix}_stage0..4`, `{prefix}_pooled`, `{prefix}_logits`.
pub(crate) struct Expected {
    stages: Vec<Tensor>,
    pooled: Tensor,
    logits: Tensor,
}

pub(crate) fn expected(fixture: &str, prefix: &str) -> Expected {
    let mut all = read_tensors(fixture, "expected.safetensors");
    let mut take = |name: String| {
        all.remove(&name)
            .unwrap_or_else(|| panic!("{fixture}: expected.safetensors lacks `{name}`"))
    };
    Expected {
        stages: (0..5).map(|k| take(format!("{prefix}_stage{k}"))).collect(),
        pooled: take(format!("{prefix}_pooled")),
        logits: take(format!("{prefix}_logits")),
    }
}

fn load(fixture: &str, file: &str, naming: Naming) -> Checkpoint {
    let loaded = load_file(&fixture_path(fixture, file), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{fixture}/{file}: {e}"));
    assert_eq!(loaded.naming, naming, "{fixture}/{file}: detected naming");
    loaded.net
}

pub(crate) fn load_train(fixture: &str, file: &str, naming: Naming) -> TrainNet {
    match load(fixture, file, naming) {
        Checkpoint::Train(net) => net,
        Checkpoint::Deploy(_) => panic!("{fixture}/{file} loaded as a deployed checkpoint"),
    }
}

pub(crate) fn load_plain(fixture: &str, file: &str, naming: Naming) -> PlainNet {
    match load(fixture, file, naming) {
        Checkpoint::Deploy(net) => net,
        Checkpoint::Train(_) => panic!("{fixture}/{file} loaded as a training-time checkpoint"),
    }
}

/// The architecture the manifest describes: 11 blocks, grouped (g = `groups`) exactly at
/// `stage2.1`, `stage3.1` and `stage3.3`, 10 classes, no SE.
fn check_architecture(context: &str, blocks: &[repvgg::BlockSpec], groups: usize) {
    let grouped: Vec<String> = blocks
        .iter()
        .filter(|b| b.groups != 1)
        .map(|b| format!("{}:g{}", b.official_prefix(), b.groups))
        .collect();
    let want: Vec<String> = ["stage2.1", "stage3.1", "stage3.3"]
        .iter()
        .map(|p| format!("{p}:g{groups}"))
        .collect();
    assert_eq!(blocks.len(), 11, "{context}");
    assert_eq!(grouped, want, "{context}");
    assert!(blocks.iter().all(|b| b.se_hidden.is_none()), "{context}");
}

/// Asserts every output of `out` against `want` and returns the comparisons, named.
pub(crate) fn check_run(
    context: &str,
    out: &RunOutput,
    want: &Expected,
) -> Vec<(String, Comparison)> {
    assert_eq!(
        out.stages.len(),
        want.stages.len(),
        "{context}: stage count"
    );
    let mut pairs = vec![
        ("logits".to_string(), &out.logits, &want.logits),
        (
            "pooled".to_string(),
            out.pooled.as_ref().expect("pooled features kept"),
            &want.pooled,
        ),
    ];
    for (k, (got, exp)) in out.stages.iter().zip(&want.stages).enumerate() {
        pairs.push((format!("stage{k}"), got, exp));
    }
    pairs
        .into_iter()
        .map(|(name, got, exp)| {
            let label = format!("{context}: {name}");
            let cmp = assert_close(got, exp, &RUN_TOLERANCE, &label);
            (label, cmp)
        })
        .collect()
}

/// Prints the worst comparison of a list (visible with `--nocapture`).
fn report(what: &str, comparisons: &[(String, Comparison)]) {
    let worst_rel = comparisons
        .iter()
        .max_by(|a, b| a.1.max_rel.total_cmp(&b.1.max_rel));
    let worst_l2 = comparisons
        .iter()
        .max_by(|a, b| a.1.rel_l2.total_cmp(&b.1.rel_l2));
    if let (Some((rel_at, rel)), Some((l2_at, l2))) = (worst_rel, worst_l2) {
        println!(
            "measured_errors {what}: max relative {:.2e} ({rel_at}), relative L2 {:.2e} ({l2_at})",
            rel.max_rel, l2.rel_l2
        );
    }
}

#[test]
fn multi_branch_run_of_the_training_weights_matches_pytorch() {
    let mut all = Vec::new();
    for (fixture, groups) in FIXTURES {
        let x = input(fixture);
        let want = expected(fixture, "train_time");
        for (naming, train_file, _) in FILES {
            let context = format!("{fixture}/{train_file}");
            let net = load_train(fixture, train_file, naming);
            check_architecture(&context, &net.config.blocks(), groups);
            let graph = Graph::multi_branch(&net).expect("multi-branch graph");
            let out = Executor::reference(&graph)
                .expect("prepare")
                .with_outputs(Outputs::ALL)
                .run(&x)
                .expect("run");
            all.extend(check_run(&context, &out, &want));
        }
    }
    report("multi-branch vs train_time_*", &all);
}

#[test]
fn our_fold_matches_the_pytorch_deploy_weights() {
    let mut all = Vec::new();
    for (fixture, _) in FIXTURES {
        for (naming, train_file, deploy_file) in FILES {
            let ours = fuse(&load_train(fixture, train_file, naming)).expect("fold");
            let theirs = load_plain(fixture, deploy_file, naming);
            assert_eq!(
                ours.config, theirs.config,
                "{fixture}/{deploy_file}: config"
            );
            assert_eq!(ours.head, theirs.head, "{fixture}/{deploy_file}: head");
            for (a, b) in ours.blocks.iter().zip(&theirs.blocks) {
                assert_eq!(a.spec, b.spec);
                let block = format!("{fixture}/{deploy_file}: {}", a.spec.official_prefix());
                let as_tensor = |v: &[f32]| Tensor::new([v.len(), 1, 1, 1], v.to_vec()).unwrap();
                let label = format!("{block}.weight");
                let cmp = assert_close(&a.weight, &b.weight, &WEIGHT_TOLERANCE, &label);
                all.push((label, cmp));
                let label = format!("{block}.bias");
                let cmp = assert_close(
                    &as_tensor(&a.bias),
                    &as_tensor(&b.bias),
                    &WEIGHT_TOLERANCE,
                    &label,
                );
                all.push((label, cmp));
            }
        }
    }
    report("our fold vs deploy weights", &all);
}

#[test]
fn plain_run_of_our_fold_matches_pytorch() {
    let mut all = Vec::new();
    for (fixture, _) in FIXTURES {
        let x = input(fixture);
        let want = expected(fixture, "deploy");
        for (naming, train_file, _) in FILES {
            let plain = fuse(&load_train(fixture, train_file, naming)).expect("fold");
            let graph = Graph::plain(&plain).expect("plain graph");
            let out = Executor::reference(&graph)
                .expect("prepare")
                .with_outputs(Outputs::ALL)
                .run(&x)
                .expect("run");
            all.extend(check_run(
                &format!("{fixture}/fuse({train_file})"),
                &out,
                &want,
            ));
        }
    }
    report("plain run of our fold vs deploy_*", &all);
}

#[test]
fn plain_run_of_the_deploy_weights_matches_pytorch() {
    let mut all = Vec::new();
    for (fixture, groups) in FIXTURES {
        let x = input(fixture);
        let want = expected(fixture, "deploy");
        for (naming, _, deploy_file) in FILES {
            let context = format!("{fixture}/{deploy_file}");
            let plain = load_plain(fixture, deploy_file, naming);
            check_architecture(&context, &plain.config.blocks(), groups);
            let graph = Graph::plain(&plain).expect("plain graph");
            let out = Executor::reference(&graph)
                .expect("prepare")
                .with_outputs(Outputs::ALL)
                .run(&x)
                .expect("run");
            all.extend(check_run(&context, &out, &want));
        }
    }
    report("plain run of deploy weights vs deploy_*", &all);
}
