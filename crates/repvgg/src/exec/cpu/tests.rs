//! [`Cpu`] against the oracle on small nets of both forms, and its determinism.

use super::*;
use crate::config::{Config, StageConfig};
use crate::exec::Executor;
use crate::fold::fuse;
use crate::net::TrainNet;
use reparam_tensor::rng::SplitMix64;
use reparam_tensor::tolerance::{Tolerance, assert_close};

fn net(se: Option<usize>, seed: u64) -> TrainNet {
    let config = Config::custom(
        5,
        vec![
            StageConfig::dense(8, 2),
            StageConfig {
                width: 20,
                groups: vec![1, 2, 4],
            },
            StageConfig::dense(24, 1),
        ],
        7,
        se,
    )
    .unwrap();
    TrainNet::random(&config, seed)
}

fn input(shape: Shape, seed: u64) -> Tensor {
    let mut rng = SplitMix64::new(seed);
    Tensor::new(shape, rng.uniform_vec(shape.iter().product(), -1.0, 1.0)).unwrap()
}

/// The network tolerance of `graph` run by `engine` (see `Tolerance::for_network`).
fn tolerance(graph: &Graph, engine: &Cpu) -> Tolerance {
    graph.tolerance(engine.error_factor())
}

fn graphs(net: &TrainNet) -> Vec<(&'static str, Graph)> {
    let multi = Graph::multi_branch(net).unwrap();
    vec![
        ("multi-branch", multi.clone()),
        (
            "multi-branch (BN folded)",
            multi.fold_conv_batch_norms().unwrap(),
        ),
        ("plain", Graph::plain(&fuse(net).unwrap()).unwrap()),
    ]
}

#[test]
fn equals_the_reference_on_both_forms_with_and_without_se() {
    for se in [None, Some(4)] {
        for (form, graph) in graphs(&net(se, 3)) {
            for shape in [[1, 3, 17, 13], [3, 3, 9, 9], [2, 3, 1, 1]] {
                let x = input(shape, 11);
                let want = Executor::reference(&graph)
                    .unwrap()
                    .with_outputs(Outputs::ALL)
                    .run(&x)
                    .unwrap();
                let options = CpuOptions {
                    outputs: Outputs::ALL,
                    ..CpuOptions::default()
                };
                let mut cpu = Cpu::new(&graph, &options).unwrap();
                let tol = tolerance(&graph, &cpu);
                let got = cpu.run(&x).unwrap();
                let context = format!("{form} se={se:?} {shape:?}");
                assert_close(&got.logits, &want.logits, &tol, &context);
                let pooled = (got.pooled.as_ref(), want.pooled.as_ref());
                assert_close(pooled.0.unwrap(), pooled.1.unwrap(), &tol, &context);
                assert_eq!(got.stages.len(), want.stages.len());
                for (k, (g, w)) in got.stages.iter().zip(&want.stages).enumerate() {
                    assert_close(g, w, &tol, &format!("{context} stage {k}"));
                }
            }
        }
    }
}

#[test]
fn every_isa_equals_the_reference() {
    let graph = Graph::plain(&fuse(&net(Some(4), 5)).unwrap()).unwrap();
    let x = input([2, 3, 15, 11], 2);
    let want = Executor::reference(&graph).unwrap().run(&x).unwrap();
    for isa in Isa::available() {
        let options = CpuOptions {
            isa: Some(isa),
            ..CpuOptions::default()
        };
        let mut cpu = Cpu::new(&graph, &options).unwrap();
        let tol = tolerance(&graph, &cpu);
        assert_close(&cpu.run(&x).unwrap().logits, &want.logits, &tol, isa.name());
    }
}

#[test]
fn logits_are_bitwise_identical_for_one_and_two_threads_and_repeated_runs() {
    for (form, graph) in graphs(&net(Some(4), 8)) {
        let x = input([2, 3, 33, 31], 4);
        let run = |threads| {
            let options = CpuOptions {
                threads: Some(threads),
                ..CpuOptions::default()
            };
            let mut cpu = Cpu::new(&graph, &options).unwrap();
            let first = cpu.run(&x).unwrap().logits.clone();
            let second = cpu.run(&x).unwrap().logits.clone();
            assert_eq!(first, second, "{form}: a second run differs");
            first
        };
        assert_eq!(run(1), run(2), "{form}: 1 vs 2 threads");
    }
}

#[test]
fn a_second_graph_of_the_same_architecture_runs_its_own_weights() {
    let x = input([1, 3, 16, 16], 1);
    let graph_a = Graph::plain(&fuse(&net(None, 1)).unwrap()).unwrap();
    let graph_b = Graph::plain(&fuse(&net(None, 2)).unwrap()).unwrap();
    let mut a = Cpu::new(&graph_a, &CpuOptions::default()).unwrap();
    let mut b = Cpu::new(&graph_b, &CpuOptions::default()).unwrap();
    let got_a = a.run(&x).unwrap().logits.clone();
    let got_b = b.run(&x).unwrap().logits.clone();
    let want_b = Executor::reference(&graph_b).unwrap().run(&x).unwrap();
    assert_ne!(got_a, got_b);
    assert_close(&got_b, &want_b.logits, &tolerance(&graph_b, &b), "graph b");
}

#[test]
fn a_new_input_shape_replans_the_arena() {
    let graph = Graph::plain(&fuse(&net(None, 4)).unwrap()).unwrap();
    let mut cpu = Cpu::new(&graph, &CpuOptions::default()).unwrap();
    for shape in [[1, 3, 16, 16], [2, 3, 24, 20], [1, 3, 16, 16]] {
        let x = input(shape, 9);
        let want = Executor::reference(&graph).unwrap().run(&x).unwrap();
        let tol = tolerance(&graph, &cpu);
        let got = cpu.run(&x).unwrap();
        assert_eq!(got.logits.shape(), [shape[0], 7, 1, 1]);
        assert_close(&got.logits, &want.logits, &tol, &format!("{shape:?}"));
    }
}

#[test]
fn bad_inputs_are_typed_errors() {
    let graph = Graph::plain(&fuse(&net(None, 4)).unwrap()).unwrap();
    let mut cpu = Cpu::new(&graph, &CpuOptions::default()).unwrap();
    assert!(matches!(
        cpu.run(&input([1, 4, 8, 8], 1)),
        Err(Error::Tensor(reparam_tensor::TensorError::ShapeMismatch {
            operand: "input",
            ..
        }))
    ));
    let mut nan = input([1, 3, 8, 8], 1);
    nan.data_mut()[3] = f32::NAN;
    assert!(cpu.run(&nan).is_err());
    assert!(cpu.run(&Tensor::zeros([0, 3, 8, 8]).unwrap()).is_err());
}
