//! `repvgg::Cpu` (reparam-winograd's kernels, NCHWc arena) against the reference executor: the
//! timm fixtures (both forms, both namings, tiny and tiny-g4), full-size RepVGG-A0 and B0 with
//! synthetic weights, and a net with squeeze-excitation; and the arena plan on random graphs.
//!
//! Tolerance: `Tolerance::for_network(K, f, depth)` (`reparam_tensor::tolerance`), with `K` the
//! longest reduction of the graph (a 3x3 conv's `9·C_in/g` or the classifier's features), `f`
//! the largest error factor of the algorithms the engine chose (F(6,3): 16) and `depth` the
//! number of 3x3 convs plus the classifier.

use crate::fixtures::{FILES, FIXTURES, input, load_plain, load_train};
use proptest::prelude::*;
use reparam_tensor::rng::SplitMix64;
use reparam_tensor::tolerance::{Comparison, Tolerance, assert_close};
use reparam_tensor::{Tensor, blocked_len};
use reparam_winograd::Precision;
use repvgg::exec::{Lifetime, peak_live, plan_arena};
use repvgg::graph::Form;
use repvgg::{Config, Cpu, CpuOptions, Engine, Executor, Graph, Outputs, StageConfig, TrainNet};

/// D2se's block structure (SE before each block's ReLU, reduction 4) at a small size.
pub(crate) fn small_se_config() -> Config {
    Config::custom(
        16,
        vec![
            StageConfig::dense(24, 2),
            StageConfig::dense(40, 3),
            StageConfig::dense(64, 1),
        ],
        10,
        Some(4),
    )
    .expect("config")
}

/// The network tolerance of `graph` run by `engine` (see the module docs).
fn tolerance(graph: &Graph, engine: &Cpu) -> Tolerance {
    graph.tolerance(engine.error_factor())
}

/// Runs `graph` on both engines and asserts every output (logits, pooled, stages) within the
/// network tolerance; returns the logits comparison.
fn check(context: &str, graph: &Graph, x: &Tensor, threads: Option<usize>) -> Comparison {
    let want = Executor::reference(graph)
        .expect("prepare the reference")
        .with_outputs(Outputs::ALL)
        .run(x)
        .expect("reference run");
    let [_, _, h, w] = x.shape();
    let options = CpuOptions {
        threads,
        input_hw: (h, w),
        outputs: Outputs::ALL,
        ..CpuOptions::default()
    };
    let mut cpu = Cpu::new(graph, &options).expect("prepare the CPU engine");
    let tol = tolerance(graph, &cpu);
    let got = cpu.run(x).expect("CPU run");
    let logits = assert_close(
        &got.logits,
        &want.logits,
        &tol,
        &format!("{context}: logits"),
    );
    assert_close(
        got.pooled.as_ref().expect("pooled kept"),
        want.pooled.as_ref().expect("pooled kept"),
        &tol,
        &format!("{context}: pooled"),
    );
    assert_eq!(got.stages.len(), want.stages.len(), "{context}: stages");
    for (k, (g, e)) in got.stages.iter().zip(&want.stages).enumerate() {
        assert_close(g, e, &tol, &format!("{context}: stage {k}"));
    }
    println!(
        "{context}: logits {logits} (bound rel_L2 {:.1e}, max r {:.1e})",
        tol.rel_l2, tol.max_rel
    );
    logits
}

/// A tensor of `shape` uniform in [-1, 1), seeded.
pub(crate) fn random_input(shape: [usize; 4], seed: u64) -> Tensor {
    let mut rng = SplitMix64::new(seed);
    Tensor::new(shape, rng.uniform_vec(shape.iter().product(), -1.0, 1.0)).unwrap()
}

#[test]
fn the_fixtures_run_on_the_cpu_engine_as_on_the_reference() {
    for (fixture, _) in FIXTURES {
        let x = input(fixture);
        for (naming, train_file, deploy_file) in FILES {
            let train = load_train(fixture, train_file, naming);
            for form in [Form::Plain, Form::MultiBranch] {
                let graph = Graph::deployed(&train, form).expect("graph");
                check(&format!("{fixture}/{train_file} {form}"), &graph, &x, None);
            }
            let unfolded = Graph::multi_branch(&train).expect("graph");
            check(
                &format!("{fixture}/{train_file} multi-branch, BN unfolded"),
                &unfolded,
                &x,
                None,
            );
            let deployed = Graph::plain(&load_plain(fixture, deploy_file, naming)).expect("graph");
            check(
                &format!("{fixture}/{deploy_file} plain"),
                &deployed,
                &x,
                Some(1),
            );
        }
    }
}

#[test]
fn full_size_a0_and_b0_run_on_the_cpu_engine_as_on_the_reference() {
    for (model, seed) in [("a0", 11), ("b0", 12)] {
        let train = TrainNet::random(&Config::official(model).expect("config"), seed);
        let x = random_input([1, 3, 224, 224], seed);
        for form in [Form::Plain, Form::MultiBranch] {
            let graph = Graph::deployed(&train, form).expect("graph");
            check(&format!("{model} {form} 224x224"), &graph, &x, None);
        }
    }
}

/// Reduced precision: full-size A0 (plain) against the reference within the network bound plus
/// the terms of every Winograd conv (`Cpu::weight_error_terms`: for f16 weights `Σ fᵢ·u₁₆` on
/// rel_L2 and `Σ 8·fᵢ·u₁₆` on max rᵢ, `u₁₆ = 2⁻¹¹`; for bf16 operands `Σ 2·fᵢ·u_bf16` and
/// `Σ 16·fᵢ·u_bf16`, `u_bf16 = 2⁻⁸`; `fᵢ` the conv's algorithm factor). bf16 runs where the
/// engine's ISA is AVX-512F and the CPU has AVX512-BF16, and prints a visible `SKIP` otherwise.
#[test]
fn full_size_a0_in_reduced_precision_stays_within_its_bound() {
    let train = TrainNet::random(&Config::official("a0").expect("config"), 13);
    let x = random_input([1, 3, 224, 224], 13);
    let graph = Graph::deployed(&train, Form::Plain).expect("graph");
    let want = Executor::reference(&graph)
        .expect("prepare the reference")
        .run(&x)
        .expect("reference run");
    let engine = |precision| {
        let options = CpuOptions {
            precision,
            ..CpuOptions::default()
        };
        Cpu::new(&graph, &options)
    };
    let mut f32_engine = engine(Precision::F32).expect("prepare the CPU engine");
    let f32_logits = f32_engine.run(&x).expect("CPU run").logits.clone();
    for precision in [Precision::F16Weights, Precision::Bf16] {
        if !precision.runs_on(f32_engine.isa()) {
            eprintln!(
                "SKIP full_size_a0_in_reduced_precision_stays_within_its_bound ({precision}): not available on {}",
                f32_engine.isa()
            );
            continue;
        }
        let mut reduced = engine(precision).expect("prepare the CPU engine");
        let f32_bound = tolerance(&graph, &reduced);
        let (l2, max) = reduced.weight_error_terms();
        let tol = Tolerance::new(f32_bound.max_rel + max, f32_bound.rel_l2 + l2);
        let got = reduced.run(&x).expect("CPU run").logits.clone();
        assert_ne!(got, f32_logits, "{precision} gave the f32 logits");
        let cmp = assert_close(&got, &want.logits, &tol, &format!("a0 plain, {precision}"));
        println!(
            "a0 plain 224x224, {precision}: logits {cmp} (bound rel_L2 {:.1e}, max r {:.1e})",
            tol.rel_l2, tol.max_rel
        );
    }
}

#[test]
fn a_net_with_squeeze_excitation_runs_on_the_cpu_engine_as_on_the_reference() {
    let config = small_se_config();
    let train = TrainNet::random(&config, 5);
    for shape in [[2, 3, 40, 36], [1, 3, 17, 23]] {
        let x = random_input(shape, 6);
        for form in [Form::Plain, Form::MultiBranch] {
            let graph = Graph::deployed(&train, form).expect("graph");
            check(&format!("se {form} {shape:?}"), &graph, &x, Some(2));
        }
    }
}

/// The lifetimes the CPU engine gives the values of `graph` for `input`: each node's output from
/// its own step through its last reader, sized as an NCHWc tensor of `lanes` lanes.
fn lifetimes(graph: &Graph, input: [usize; 4], lanes: usize) -> Vec<Lifetime> {
    let shapes = graph.value_shapes(input).expect("shapes");
    let mut lives = vec![
        Lifetime {
            len: 0,
            first: 0,
            last: 0
        };
        graph.num_values()
    ];
    for (k, node) in graph.nodes().iter().enumerate() {
        lives[node.output.0] = Lifetime {
            len: blocked_len(shapes[node.output.0], lanes).expect("len"),
            first: k,
            last: k,
        };
        for v in node.op.inputs() {
            lives[v.0].last = lives[v.0].last.max(k);
        }
    }
    lives
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// On random nets of both forms, no two values alive at the same step share arena memory.
    #[test]
    fn arena_plans_of_random_graphs_never_overlap_live_values(
        stem in 1usize..20,
        stages in proptest::collection::vec((1usize..40, 1usize..4), 1..4),
        side in 1usize..40,
        batch in 1usize..3,
        lanes_index in 0usize..3,
        se in proptest::option::of(1usize..4),
    ) {
        let stage_configs: Vec<StageConfig> =
            stages.iter().map(|&(w, d)| StageConfig::dense(w, d)).collect();
        let Ok(config) = Config::custom(stem, stage_configs, 5, se) else {
            return Ok(());
        };
        let train = TrainNet::random(&config, 1);
        let lanes = [4, 8, 16][lanes_index];
        for form in [Form::Plain, Form::MultiBranch] {
            let graph = Graph::deployed(&train, form).expect("graph");
            let lives = lifetimes(&graph, [batch, 3, side, side], lanes);
            let plan = plan_arena(&lives);
            for (i, a) in lives.iter().enumerate() {
                prop_assert!(plan.offsets[i] + a.len <= plan.len);
                for (j, b) in lives.iter().enumerate().skip(i + 1) {
                    if a.len == 0 || b.len == 0 || !a.overlaps(b) {
                        continue;
                    }
                    let (sa, sb) = (plan.offsets[i], plan.offsets[j]);
                    prop_assert!(
                        sa + a.len <= sb || sb + b.len <= sa,
                        "{} v{} {:?} at {} overlaps v{} {:?} at {}", form, i, a, sa, j, b, sb
                    );
                }
            }
            prop_assert!(plan.len >= peak_live(&lives));
        }
    }
}
