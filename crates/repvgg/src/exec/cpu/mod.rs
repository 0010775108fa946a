//! [`Cpu`]: a [`Graph`] compiled for reparam-winograd's kernels and run with NCHWc activations in
//! one planned arena.
//!
//! [`Cpu::new`] does all the work that does not depend on the data, once: one [`Conv2dPlan`] per
//! conv (algorithm chosen for the layer's input size, weights packed or Winograd-transformed),
//! per-channel parameters padded to channel blocks, the head's rows padded to the blocked
//! feature layout, and a rayon pool of the requested size. The first run for an input shape
//! plans the activation arena from the values' lifetimes ([`super::arena`]) and sizes one scratch
//! buffer for the largest plan; later runs of that shape allocate nothing.
//!
//! The network's NCHW input is read by the convolutions that take it straight from NCHW
//! ([`ConvInput::Nchw`]: the compact RGB first-layer path); only when another op reads the
//! input is it also copied to NCHWc.

mod ops;
#[cfg(test)]
mod tests;

use super::arena::{self, Lifetime};
use super::{Engine, Outputs, RunOutput, StepInfo, check_input};
use crate::error::Error;
use crate::graph::{Graph, Op, ValueId};
use ops::Dense;
use reparam_tensor::{AlignedVec, BlockedView, BlockedViewMut, Shape, Tensor, blocked_len};
use reparam_winograd::{Conv2dPlan, ConvInput, Isa, Parallelism, PlanOptions, Precision};
use std::ops::Range;
use std::time::{Duration, Instant};

/// How [`Cpu::new`] builds the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuOptions {
    /// Threads of the engine's rayon pool; `None` uses one per core.
    pub threads: Option<usize>,
    /// Force an ISA; `None` uses `REPARAM_ISA` or the best available.
    pub isa: Option<Isa>,
    /// The input `(H, W)` the conv algorithms are chosen for (any size still runs).
    pub input_hw: (usize, usize),
    /// Time every eligible algorithm per conv when the engine is built and keep the fastest.
    pub autotune: bool,
    /// What a run keeps besides the logits.
    pub outputs: Outputs,
    /// Time every step of every run ([`Cpu::profile`]).
    pub profile: bool,
    /// Storage precision of the Winograd convs' transformed weights
    /// ([`reparam_winograd::Precision`]); f32 by default.
    pub precision: Precision,
}

impl Default for CpuOptions {
    fn default() -> Self {
        Self {
            threads: None,
            isa: None,
            input_hw: (224, 224),
            autotune: false,
            outputs: Outputs::default(),
            profile: false,
            precision: Precision::F32,
        }
    }
}

/// The kernel of one step and its prepared parameters.
#[derive(Debug)]
enum Kernel {
    Conv(Box<Conv2dPlan>),
    /// Inference BN as `y = scale·x + shift`, both padded to channel blocks with zeros.
    Affine {
        scale: Vec<f32>,
        shift: Vec<f32>,
    },
    Add,
    Relu,
    SqueezeExcite(Box<ops::SqueezeExcite>),
    GlobalAvgPool,
    /// The classifier, rows padded to the blocked feature length.
    Linear(Dense),
}

/// One node of the graph, prepared.
#[derive(Debug)]
struct Step {
    info: StepInfo,
    inputs: Vec<ValueId>,
    output: ValueId,
    kernel: Kernel,
}

/// Everything that depends on the input shape: value shapes, the arena and the scratch.
#[derive(Debug)]
struct Layout {
    input: Shape,
    shapes: Vec<Shape>,
    /// Arena range of every value (empty for the input unless it is copied to NCHWc).
    ranges: Vec<Range<usize>>,
    arena: AlignedVec,
    scratch: AlignedVec,
    peak_live_bytes: usize,
}

/// The graph's outputs.
#[derive(Debug, Clone)]
struct Ends {
    stage_outputs: Vec<ValueId>,
    pooled: ValueId,
    logits: ValueId,
    input_channels: usize,
    num_values: usize,
}

/// A graph prepared for the CPU kernels (see the [module docs](self)).
#[derive(Debug)]
pub struct Cpu {
    steps: Vec<Step>,
    ends: Ends,
    pool: rayon::ThreadPool,
    lanes: usize,
    isa: Isa,
    outputs: Outputs,
    /// The input has an NCHWc copy (some non-conv op reads it).
    input_blocked: bool,
    layout: Option<Layout>,
    output: RunOutput,
    /// Per step, the time of the last run (with [`CpuOptions::profile`]).
    profile: Option<Vec<Duration>>,
}

impl Cpu {
    /// Prepares `graph`: every conv plan, every op's parameters and the thread pool.
    pub fn new(graph: &Graph, options: &CpuOptions) -> Result<Self, Error> {
        let threads = options.threads.unwrap_or(0);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| Error::ThreadPool {
                threads,
                reason: e.to_string(),
            })?;
        let (h, w) = options.input_hw;
        let shapes = graph.value_shapes([1, graph.input_channels(), h, w])?;
        let isa = match options.isa {
            Some(isa) => isa.require()?,
            None => Isa::from_env()?,
        };
        let lanes = isa.lanes();
        let steps = pool.install(|| {
            graph
                .nodes()
                .iter()
                .map(|node| prepare_step(node, &shapes, isa, options))
                .collect::<Result<Vec<_>, Error>>()
        })?;
        let input_blocked = graph
            .nodes()
            .iter()
            .any(|n| !matches!(n.op, Op::Conv { .. }) && n.op.inputs().contains(&Graph::INPUT));
        let ends = Ends {
            stage_outputs: graph.stage_outputs().to_vec(),
            pooled: graph.pooled(),
            logits: graph.logits(),
            input_channels: graph.input_channels(),
            num_values: graph.num_values(),
        };
        Ok(Self {
            profile: options.profile.then(|| vec![Duration::ZERO; steps.len()]),
            steps,
            ends,
            pool,
            lanes,
            isa,
            outputs: options.outputs,
            input_blocked,
            layout: None,
            output: RunOutput::empty(),
        })
    }

    /// The ISA of every kernel.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Threads of the engine's pool.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// The largest error factor ([`reparam_winograd::Algorithm::error_factor`]) among the
    /// algorithms its conv plans chose: what a tolerance for the whole network must allow.
    pub fn error_factor(&self) -> f64 {
        self.steps
            .iter()
            .filter_map(|s| match &s.kernel {
                Kernel::Conv(plan) => Some(plan.algorithm().error_factor()),
                _ => None,
            })
            .fold(1.0, f64::max)
    }

    /// The `(rel_L2, max rᵢ)` terms the conv plans' weight precision adds to a network
    /// tolerance: [`Precision::error_terms`] of each plan for its algorithm's error factor,
    /// summed over the convs (each layer's relative error passes on to the next, so they add at
    /// most linearly, as in `Tolerance::for_network`); zero with f32 weights.
    pub fn weight_error_terms(&self) -> (f64, f64) {
        self.steps
            .iter()
            .filter_map(|s| match &s.kernel {
                Kernel::Conv(plan) => Some(
                    plan.precision()
                        .error_terms(plan.algorithm().error_factor()),
                ),
                _ => None,
            })
            .fold((0.0, 0.0), |(l2, max), (a, b)| (l2 + a, max + b))
    }

    /// Per step, the time it took in the last run (with [`CpuOptions::profile`]).
    pub fn profile(&self) -> Option<&[Duration]> {
        self.profile.as_deref()
    }

    /// Bytes of the activation arena planned for inputs of shape `input` (planning it if this
    /// is a new shape).
    pub fn arena_bytes(&mut self, input: Shape) -> Result<usize, Error> {
        self.ensure_layout(input)?;
        Ok(self.layout.as_ref().map_or(0, |l| l.arena.len() * 4))
    }

    /// Plans the arena and scratch for `input` unless they are planned for it already.
    fn ensure_layout(&mut self, input: Shape) -> Result<(), Error> {
        if self.layout.as_ref().is_some_and(|l| l.input == input) {
            return Ok(());
        }
        let lanes = self.lanes;
        let shapes = value_shapes(&self.steps, &self.ends, input)?;
        let mut lives = vec![
            Lifetime {
                len: 0,
                first: 0,
                last: 0
            };
            self.ends.num_values
        ];
        for step in &self.steps {
            let k = step.output.0 - 1;
            lives[step.output.0] = Lifetime {
                len: blocked_len(shapes[step.output.0], lanes)?,
                first: k,
                last: k,
            };
            for v in &step.inputs {
                lives[v.0].last = lives[v.0].last.max(k);
            }
        }
        if self.input_blocked {
            lives[0].len = blocked_len(input, lanes)?;
        }
        let plan = arena::plan(&lives);
        let ranges = lives
            .iter()
            .zip(&plan.offsets)
            .map(|(l, &o)| o..o + l.len)
            .collect();
        let threads = self.pool.current_num_threads();
        let scratch = self.pool.install(|| {
            self.steps
                .iter()
                .filter_map(|s| match &s.kernel {
                    Kernel::Conv(plan) => Some(plan.scratch_len(shapes[s.inputs[0].0], threads)),
                    _ => None,
                })
                .try_fold(0, |m, len| len.map(|l| m.max(l)))
        })?;
        self.output = RunOutput {
            logits: Tensor::zeros(shapes[self.ends.logits.0])?,
            stages: if self.outputs.stages {
                self.ends
                    .stage_outputs
                    .iter()
                    .map(|v| Tensor::zeros(shapes[v.0]))
                    .collect::<Result<_, _>>()?
            } else {
                Vec::new()
            },
            pooled: if self.outputs.pooled {
                Some(Tensor::zeros(shapes[self.ends.pooled.0])?)
            } else {
                None
            },
            peak_live_bytes: plan.len * 4,
        };
        self.layout = Some(Layout {
            input,
            shapes,
            ranges,
            arena: AlignedVec::zeros(plan.len),
            scratch: AlignedVec::zeros(scratch),
            peak_live_bytes: arena::peak_live(&lives) * 4,
        });
        Ok(())
    }

    /// The largest total of activation bytes alive during one step for the planned shape (the
    /// arena, [`RunOutput::peak_live_bytes`], is at least this).
    pub fn peak_live_bytes(&self) -> Option<usize> {
        self.layout.as_ref().map(|l| l.peak_live_bytes)
    }
}

/// Shapes of every value for `input`, from the prepared steps.
fn value_shapes(steps: &[Step], ends: &Ends, input: Shape) -> Result<Vec<Shape>, Error> {
    let mut shapes = vec![[0; 4]; ends.num_values];
    shapes[0] = input;
    for step in steps {
        let x = shapes[step.inputs[0].0];
        let [n, c, _, _] = x;
        shapes[step.output.0] = match &step.kernel {
            Kernel::Conv(plan) => plan.output_shape(x)?,
            Kernel::GlobalAvgPool => [n, c, 1, 1],
            Kernel::Linear(dense) => [n, dense.outputs(), 1, 1],
            Kernel::Affine { .. } | Kernel::Add | Kernel::Relu | Kernel::SqueezeExcite(_) => x,
        };
    }
    Ok(shapes)
}

/// Builds the kernel of one node for inputs shaped as in `shapes` (batch 1, the planned size).
fn prepare_step(
    node: &crate::graph::Node,
    shapes: &[Shape],
    isa: Isa,
    options: &CpuOptions,
) -> Result<Step, Error> {
    let lanes = isa.lanes();
    let inputs = node.op.inputs();
    let [_, _, h, w] = shapes[inputs[0].0];
    let pad = |n: usize| n.div_ceil(lanes) * lanes;
    let (kernel, algorithm) = match &node.op {
        Op::Conv { layer, .. } => {
            let plan = Conv2dPlan::new(
                layer.spec,
                &layer.weight,
                &layer.epilogue,
                &PlanOptions {
                    isa: Some(isa),
                    parallelism: Parallelism::Rayon,
                    input_hw: Some((h, w)),
                    autotune: options.autotune,
                    precision: options.precision,
                    ..PlanOptions::default()
                },
            )?;
            let name = plan.kernel_name(shapes[inputs[0].0])?;
            (Kernel::Conv(Box::new(plan)), Some(name))
        }
        Op::BatchNorm { bn, .. } => {
            let (scale, shift) = bn.scale_shift()?;
            (
                Kernel::Affine {
                    scale: ops::pad_channels(scale.iter().map(|&t| t as f32), lanes, 0.0),
                    shift: ops::pad_channels(shift.iter().map(|&s| s as f32), lanes, 0.0),
                },
                None,
            )
        }
        Op::Add { .. } => (Kernel::Add, None),
        Op::Relu { .. } => (Kernel::Relu, None),
        Op::SqueezeExcite { se, .. } => {
            let [hidden, channels, _, _] = se.down_weight.shape();
            let se = ops::SqueezeExcite {
                down: Dense::new(
                    se.down_weight.data(),
                    &se.down_bias,
                    channels,
                    pad(channels),
                ),
                up: Dense::new(se.up_weight.data(), &se.up_bias, hidden, hidden),
                pooled: vec![0.0; pad(channels)],
                hidden: vec![0.0; hidden],
                scale: vec![0.0; pad(channels)],
            };
            (Kernel::SqueezeExcite(Box::new(se)), None)
        }
        Op::GlobalAvgPool { .. } => (Kernel::GlobalAvgPool, None),
        Op::Linear { head, .. } => {
            let [_, features, _, _] = head.weight.shape();
            let dense = Dense::new(head.weight.data(), &head.bias, features, pad(features));
            (Kernel::Linear(dense), None)
        }
    };
    Ok(Step {
        info: StepInfo {
            label: node.label.clone(),
            op: node.op.to_string(),
            kind: node.op.kind(),
            algorithm,
        },
        inputs,
        output: node.output,
        kernel,
    })
}

impl Engine for Cpu {
    fn name(&self) -> String {
        format!("cpu-{}", self.isa.name())
    }

    fn steps(&self) -> Vec<StepInfo> {
        self.steps.iter().map(|s| s.info.clone()).collect()
    }

    fn run(&mut self, input: &Tensor) -> Result<&RunOutput, Error> {
        check_input_channels(&self.ends, input)?;
        self.ensure_layout(input.shape())?;
        let Self {
            steps,
            ends,
            pool,
            lanes,
            outputs,
            input_blocked,
            layout,
            output,
            profile,
            ..
        } = self;
        let layout = layout.as_mut().expect("planned above");
        let lanes = *lanes;
        pool.install(|| {
            if *input_blocked {
                let range = layout.ranges[0].clone();
                ops::nchw_to_blocked(input.data(), input.shape(), lanes, &mut layout.arena[range]);
            }
            for (k, step) in steps.iter_mut().enumerate() {
                let start = profile.is_some().then(Instant::now);
                run_step(step, input, layout, lanes)?;
                let v = step.output;
                let copy_to = |t: &mut Tensor| {
                    let range = layout.ranges[v.0].clone();
                    ops::blocked_to_nchw(
                        &layout.arena[range],
                        layout.shapes[v.0],
                        lanes,
                        t.data_mut(),
                    );
                };
                if v == ends.logits {
                    copy_to(&mut output.logits);
                }
                if v == ends.pooled
                    && let Some(p) = output.pooled.as_mut()
                {
                    copy_to(p);
                }
                if outputs.stages
                    && let Some(i) = ends.stage_outputs.iter().position(|&s| s == v)
                {
                    copy_to(&mut output.stages[i]);
                }
                if let (Some(t), Some(p)) = (start, profile.as_mut()) {
                    p[k] = t.elapsed();
                }
            }
            Ok::<(), Error>(())
        })?;
        Ok(&self.output)
    }
}

/// The input must have the graph's channel count, no empty axis and finite values.
fn check_input_channels(ends: &Ends, input: &Tensor) -> Result<(), Error> {
    check_input(ends.input_channels, input)
}

/// Runs one step on the arena.
fn run_step(
    step: &mut Step,
    input: &Tensor,
    layout: &mut Layout,
    lanes: usize,
) -> Result<(), Error> {
    let out_range = layout.ranges[step.output.0].clone();
    let out_shape = layout.shapes[step.output.0];
    let (left, rest) = layout.arena.split_at_mut(out_range.start);
    let (out, right) = rest.split_at_mut(out_range.len());
    let left: &[f32] = left;
    let right: &[f32] = right;
    let split_at = out_range.end;
    // An operand lies wholly before or wholly after the output (the arena plan keeps values
    // alive together disjoint).
    let operand = |v: ValueId| -> &[f32] {
        let r = layout.ranges[v.0].clone();
        if r.end <= out_range.start {
            &left[r]
        } else {
            &right[r.start - split_at..r.end - split_at]
        }
    };
    let x_shape = layout.shapes[step.inputs[0].0];
    let [_, _, h, w] = x_shape;
    let plane = h * w;
    match &mut step.kernel {
        Kernel::Conv(plan) => {
            let x = if step.inputs[0] == Graph::INPUT {
                ConvInput::Nchw(input)
            } else {
                ConvInput::Blocked(BlockedView::new(x_shape, lanes, operand(step.inputs[0]))?)
            };
            let y = BlockedViewMut::new(out_shape, lanes, out)?;
            plan.run(x, y, Some(&mut layout.scratch))?;
        }
        Kernel::Affine { scale, shift } => {
            ops::affine(operand(step.inputs[0]), out, scale, shift, plane, lanes);
        }
        Kernel::Add => ops::add(operand(step.inputs[0]), operand(step.inputs[1]), out),
        Kernel::Relu => ops::relu(operand(step.inputs[0]), out),
        Kernel::SqueezeExcite(se) => se.apply(operand(step.inputs[0]), out, plane, lanes),
        Kernel::GlobalAvgPool => ops::global_avg_pool(operand(step.inputs[0]), out, plane, lanes),
        Kernel::Linear(dense) => {
            let x = operand(step.inputs[0]);
            let row = dense.row;
            let out_row = out.len() / x_shape[0];
            for (xi, yi) in x.chunks_exact(row).zip(out.chunks_exact_mut(out_row)) {
                dense.apply(xi, yi, true);
                yi[dense.outputs()..].fill(0.0);
            }
        }
    }
    Ok(())
}
