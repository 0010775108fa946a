//! [`ReparamModel`]: a deployed (plain) RepVGG network and the CPU engine that runs it.

use crate::check;
use crate::status::ApiError;
use reparam_tensor::Tensor;
use repvgg::checkpoint::{self, Checkpoint, LoadOptions};
use repvgg::{Config, Cpu, CpuOptions, Engine, Graph, PlainNet, TrainNet, fuse};
use std::path::Path;

/// A RepVGG network in its deployed form (one 3x3 conv + bias + ReLU per block), run by
/// [`repvgg::Cpu`].
///
/// The engine chooses each conv's algorithm for an input size, so it is built on the first run
/// and rebuilt when a run's `H` or `W` differs from the previous one (a change of batch size
/// only re-plans the activation arena).
#[derive(Debug)]
pub struct ReparamModel {
    graph: Graph,
    config: Config,
    /// Threads of the engine's pool; `None`: one per core.
    threads: Option<usize>,
    /// The engine and the `(H, W)` it was built for.
    engine: Option<((usize, usize), Cpu)>,
    /// The logits of the last run.
    logits: Vec<f32>,
}

impl ReparamModel {
    /// Loads a checkpoint with [`repvgg::checkpoint::load_file`] (the architecture is inferred
    /// from the tensors); a training-time network is re-parameterized with [`repvgg::fuse`], a
    /// deployed one runs as it is. `threads` 0 means one per core.
    pub fn load(path: &Path, threads: usize) -> Result<Self, ApiError> {
        let loaded = checkpoint::load_file(path, &LoadOptions::default()).map_err(|e| {
            let mut error = ApiError::from_checkpoint(e);
            // An I/O error names the file already; a format error names only the key.
            if error.status != crate::ReparamStatus::Io {
                error.message = format!("`{}`: {}", path.display(), error.message);
            }
            error
        })?;
        let plain = match loaded.net {
            Checkpoint::Train(net) => fuse(&net).map_err(|e| {
                ApiError::new(
                    crate::ReparamStatus::Checkpoint,
                    format!("cannot re-parameterize `{}`: {e}", path.display()),
                )
            })?,
            Checkpoint::Deploy(net) => net,
        };
        Self::from_plain(&plain, threads)
    }

    /// The official architecture `name` ([`repvgg::Config::official`]: `A0`, `RepVGG-B1g4`,
    /// ...) with the deterministic weights of [`repvgg::TrainNet::random`]`(config, seed)`,
    /// fused. `threads` 0 means one per core.
    pub fn synthetic(name: &str, seed: u64, threads: usize) -> Result<Self, ApiError> {
        let config = Config::official(name)?;
        let plain = fuse(&TrainNet::random(&config, seed))?;
        Self::from_plain(&plain, threads)
    }

    /// A model running `net`.
    pub fn from_plain(net: &PlainNet, threads: usize) -> Result<Self, ApiError> {
        Ok(Self {
            graph: Graph::plain(net)?,
            config: net.config.clone(),
            threads: (threads > 0).then_some(threads),
            engine: None,
            logits: Vec::new(),
        })
    }

    /// Classes of the head: the length of one image's logits.
    pub fn num_classes(&self) -> usize {
        self.config.num_classes
    }

    /// Channels of the input image (3 for every official model).
    pub fn in_channels(&self) -> usize {
        self.config.in_channels
    }

    /// The options the engine for inputs of `(h, w)` is built with.
    pub fn engine_options(&self, hw: (usize, usize)) -> CpuOptions {
        CpuOptions {
            threads: self.threads,
            input_hw: hw,
            ..CpuOptions::default()
        }
    }

    /// Runs `input` (NCHW, `shape = [n, c, h, w]`, `input.len()` its product) and returns the
    /// `n × num_classes` logits, after checking that a caller buffer of `logits_len` floats
    /// holds them.
    pub fn run(
        &mut self,
        shape: [usize; 4],
        input: &[f32],
        logits_len: usize,
    ) -> Result<&[f32], ApiError> {
        let [n, c, h, w] = shape;
        let len = check::buffer_len(&[("n", n), ("c", c), ("h", h), ("w", w)])?;
        if c != self.in_channels() {
            return Err(ApiError::invalid(format!(
                "`c` is {c} but the model takes {} input channels",
                self.in_channels()
            )));
        }
        if input.len() != len {
            return Err(ApiError::invalid(format!(
                "`input` holds {} floats, not n·c·h·w = {len}",
                input.len()
            )));
        }
        let needed = n
            .checked_mul(self.num_classes())
            .ok_or_else(|| ApiError::invalid(format!("`n` = {n} is too large")))?;
        check::room("logits", logits_len, needed)?;
        let x = Tensor::new(shape, input.to_vec())?;
        // Taken out while it runs: a panic drops it, and the next run builds a fresh one.
        let mut engine = match self.engine.take() {
            Some((hw, engine)) if hw == (h, w) => engine,
            _ => Cpu::new(&self.graph, &self.engine_options((h, w)))?,
        };
        let logits = &mut self.logits;
        let result = engine.run(&x).map(|out| {
            logits.clear();
            logits.extend_from_slice(out.logits.data());
        });
        self.engine = Some(((h, w), engine));
        result?;
        Ok(&self.logits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReparamStatus;
    use repvgg::StageConfig;
    use repvgg::checkpoint::{Naming, write_plain_file, write_train_file};

    fn small() -> TrainNet {
        let config = Config::custom(
            8,
            vec![StageConfig::dense(8, 2), StageConfig::dense(16, 1)],
            5,
            None,
        )
        .unwrap();
        TrainNet::random(&config, 3)
    }

    fn image(shape: [usize; 4]) -> Vec<f32> {
        (0..shape.iter().product::<usize>())
            .map(|i| ((i * 37) % 101) as f32 / 64.0 - 0.75)
            .collect()
    }

    /// The logits of `Cpu` with the model's options, built directly.
    fn expected(net: &PlainNet, shape: [usize; 4], threads: usize) -> Vec<f32> {
        let model = ReparamModel::from_plain(net, threads).unwrap();
        let graph = Graph::plain(net).unwrap();
        let mut cpu = Cpu::new(&graph, &model.engine_options((shape[2], shape[3]))).unwrap();
        let x = Tensor::new(shape, image(shape)).unwrap();
        cpu.run(&x).unwrap().logits.data().to_vec()
    }

    #[test]
    fn training_and_deployed_files_run_like_the_engine() {
        let net = small();
        let plain = fuse(&net).unwrap();
        let dir = std::env::temp_dir().join(format!("reparam-capi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let train_path = dir.join("train.safetensors");
        let plain_path = dir.join("plain.safetensors");
        write_train_file(&train_path, &net, Naming::Official).unwrap();
        write_plain_file(&plain_path, &plain, Naming::Timm).unwrap();
        let shape = [2, 3, 20, 18];
        let want = expected(&plain, shape, 2);
        for path in [&train_path, &plain_path] {
            let mut model = ReparamModel::load(path, 2).unwrap();
            assert_eq!(model.num_classes(), 5);
            let logits = model.run(shape, &image(shape), 11).unwrap();
            assert_eq!(logits, want, "{}", path.display());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_new_size_rebuilds_the_engine_and_matches() {
        let plain = fuse(&small()).unwrap();
        let mut model = ReparamModel::from_plain(&plain, 1).unwrap();
        for shape in [[1, 3, 16, 16], [1, 3, 33, 9], [3, 3, 33, 9], [1, 3, 16, 16]] {
            let logits = model.run(shape, &image(shape), shape[0] * 5).unwrap();
            assert_eq!(logits, expected(&plain, shape, 1), "{shape:?}");
        }
    }

    #[test]
    fn bad_arguments_are_named() {
        let plain = fuse(&small()).unwrap();
        let mut model = ReparamModel::from_plain(&plain, 1).unwrap();
        let shape = [2, 3, 8, 8];
        let x = image(shape);
        let message = |r: Result<&[f32], ApiError>| {
            let e = r.unwrap_err();
            assert_eq!(e.status, ReparamStatus::InvalidArgument);
            e.message
        };
        let short = message(model.run(shape, &x, 9));
        assert!(short.contains("`logits` holds 9"), "{short}");
        let channels = message(model.run([2, 4, 8, 8], &image([2, 4, 8, 8]), 10));
        assert!(channels.contains("`c` is 4"), "{channels}");
        let zero = message(model.run([0, 3, 8, 8], &[], 10));
        assert!(zero.contains("`n`"), "{zero}");
        let mut nan = x.clone();
        nan[5] = f32::NAN;
        let finite = message(model.run(shape, &nan, 10));
        assert!(finite.contains("not finite"), "{finite}");
        // The engine survives a refused run.
        assert!(model.run(shape, &x, 10).is_ok());
    }

    #[test]
    fn load_errors_name_the_file() {
        let missing = Path::new("/nonexistent/reparam-capi/a0.safetensors");
        let e = ReparamModel::load(missing, 1).unwrap_err();
        assert_eq!(e.status, ReparamStatus::Io);
        assert!(e.message.contains("a0.safetensors"), "{}", e.message);
        let junk = std::env::temp_dir().join(format!("reparam-capi-junk-{}", std::process::id()));
        std::fs::write(&junk, b"not a checkpoint").unwrap();
        let e = ReparamModel::load(&junk, 1).unwrap_err();
        std::fs::remove_file(&junk).unwrap();
        assert_eq!(e.status, ReparamStatus::Checkpoint, "{}", e.message);
        assert!(e.message.contains("reparam-capi-junk"), "{}", e.message);
        let e = ReparamModel::synthetic("RepVGG-Z9", 1, 1).unwrap_err();
        assert_eq!(e.status, ReparamStatus::InvalidArgument);
        assert!(e.message.contains("RepVGG-Z9"), "{}", e.message);
    }
}
