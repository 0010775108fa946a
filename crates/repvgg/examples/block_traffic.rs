//! Runs a small RepVGG net on the CPU engine a given number of times, for checking the analytic
//! memory-traffic model (`repvgg::traffic`) against a cache simulator (`docs/memory-traffic.md`).
//!
//! `block_traffic FORM DEPTH RUNS`: a stem (3→48, stride 2) and one stage of DEPTH blocks of
//! width 96 (the first with stride 2) on a 112x112 image, so every block after the first is
//! RepVGG-A0's stage-2 block (96→96 at 28x28); FORM is `plain` or `multi-branch`. The engine
//! (one thread) is built and run once before the RUNS counted runs, so differences between
//! cachegrind totals of (DEPTH, RUNS) pairs isolate one block of one run:
//! `[C(d+1, r+1) − C(d+1, r)] − [C(d, r+1) − C(d, r)]`. Prints the model's bytes for that block.

use reparam_tensor::Tensor;
use repvgg::graph::Form;
use repvgg::traffic::{OpCost, op_costs};
use repvgg::{Config, Cpu, CpuOptions, Engine, Graph, StageConfig, TrainNet};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: block_traffic plain|multi-branch DEPTH RUNS";
    let [_, form, depth, runs] = args.as_slice() else {
        return Err(usage.into());
    };
    let form = match form.as_str() {
        "plain" => Form::Plain,
        "multi-branch" => Form::MultiBranch,
        _ => return Err(usage.into()),
    };
    let depth: usize = depth.parse()?;
    let runs: usize = runs.parse()?;
    let config = Config::custom(48, vec![StageConfig::dense(96, depth)], 10, None)?;
    let graph = Graph::deployed(&TrainNet::random(&config, 1), form)?;
    let input = Tensor::filled([1, 3, 112, 112], 0.5)?;
    let options = CpuOptions {
        threads: Some(1),
        input_hw: (112, 112),
        ..CpuOptions::default()
    };
    let mut engine = Cpu::new(&graph, &options)?;
    engine.run(&input)?;
    for _ in 0..runs {
        engine.run(&input)?;
    }
    // The model's bytes of the last block (its ops are labelled `stage1.<depth-1>.`).
    let prefix = format!("stage1.{}.", depth - 1);
    let block: Vec<OpCost> = op_costs(&graph, input.shape())?
        .into_iter()
        .filter(|c| c.label.starts_with(&prefix))
        .collect();
    let bytes: u64 = block.iter().map(OpCost::bytes_moved).sum();
    let weights: u64 = block.iter().map(|c| c.weight_bytes).sum();
    println!(
        "{form} block {prefix}: {} ops, model {bytes} bytes ({weights} of parameters)",
        block.len()
    );
    Ok(())
}
