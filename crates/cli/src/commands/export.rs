//! `reparam export IN OUT`: write the deployed (plain) network as an ONNX model.

use crate::args::parse_bn_eps;
use crate::commands::same_file;
use crate::error::CliError;
use crate::source;
use clap::Args;
use repvgg::Checkpoint;
use repvgg::onnx::{OPSET_VERSION, to_model};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Arguments of `reparam export`.
#[derive(Debug, Args)]
#[command(
    override_usage = "reparam export [OPTIONS] <IN> <OUT>\n       \
        reparam export --model <NAME> [--seed <S>] <OUT>",
    after_help = "The model is the deployed (re-parameterized) form: per block Conv 3x3 + bias \
    [→ squeeze-excitation] → Relu, then GlobalAveragePool → Flatten → Gemm; ONNX opset 17, IR \
    version 8. Input `input` f32 [batch, 3, height, width] (symbolic batch and size), output \
    `logits` f32 [batch, classes]. A training-time checkpoint is fused first.\n\n\
    Examples:\n  reparam export repvgg_a0_deploy.safetensors repvgg_a0.onnx\n  \
    reparam export repvgg_a0_train.safetensors repvgg_a0.onnx\n  \
    reparam export --model d2se --seed 1 d2se.onnx"
)]
pub struct ExportArgs {
    /// Official model to export with synthetic weights (seeded by --seed) instead of IN.
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Seed of the synthetic weights of --model.
    #[arg(long, value_name = "S", default_value_t = 0, requires = "model")]
    pub seed: u64,
    /// Batch-norm ε used when fusing a training-time checkpoint.
    #[arg(long, value_name = "E", default_value = "1e-5", value_parser = parse_bn_eps)]
    pub bn_eps: f64,
    /// IN OUT: the safetensors checkpoint (training-time or deployed; official or timm names)
    /// and the .onnx file to write; only OUT with --model.
    #[arg(value_name = "PATH", num_args = 1..=2, required = true)]
    pub paths: Vec<PathBuf>,
}

impl ExportArgs {
    /// The checkpoint to read (`None` with `--model`) and the file to write.
    fn resolve(&self) -> Result<(Option<&Path>, &Path), CliError> {
        match (self.model.is_some(), self.paths.as_slice()) {
            (false, [input, output]) => Ok((Some(input), output)),
            (true, [output]) => Ok((None, output)),
            (false, _) => Err(CliError::new("missing OUT: the .onnx file to write").hint(
                "reparam export IN.safetensors OUT.onnx, or reparam export --model a0 OUT.onnx",
            )),
            (true, _) => Err(CliError::new(
                "--model exports synthetic weights and takes no checkpoint; give only OUT",
            )
            .hint("reparam export --model a0 OUT.onnx, or reparam export IN.safetensors OUT.onnx")),
        }
    }
}

/// Runs `reparam export`.
pub fn export(args: &ExportArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let (input, output) = args.resolve()?;
    if let Some(input) = input
        && same_file(input, output)
    {
        return Err(CliError::new(format!(
            "OUT `{}` is the input checkpoint; refusing to overwrite it",
            output.display()
        ))
        .hint("write the ONNX model to a different path, e.g. model.onnx"));
    }
    let (net, origin) = source::load_net(args.model.as_deref(), input, args.seed, args.bn_eps)?;
    let what = input.map_or_else(
        || format!("--model {}", args.model.as_deref().unwrap_or("a0")),
        |p| format!("`{}`", p.display()),
    );
    let plain = match net {
        Checkpoint::Deploy(plain) => plain,
        Checkpoint::Train(train) => repvgg::fuse(&train).map_err(|e| {
            CliError::new(format!("cannot fuse {what}: {e}"))
                .hint("check that the checkpoint's batch-norm statistics are valid (σ² + ε > 0)")
        })?,
    };
    let model = to_model(&plain).map_err(|e| {
        CliError::new(format!("cannot export {what}: {e}")).hint(
            "the network is malformed; check that the checkpoint is a complete RepVGG state dict",
        )
    })?;
    let bytes = model.to_bytes();
    std::fs::write(output, &bytes).map_err(|e| CliError::write(output, &e))?;
    let (nodes, initializers) = model
        .graph
        .as_ref()
        .map_or((0, 0), |g| (g.node.len(), g.initializer.len()));
    writeln!(
        out,
        "wrote  {}: {} ({origin}), ONNX opset {OPSET_VERSION}, {nodes} nodes, {initializers} \
         initializers, {} bytes",
        output.display(),
        plain.config.name,
        bytes.len()
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use repvgg::onnx::proto::ModelProto;
    use repvgg::{Config, Naming, StageConfig, TrainNet};

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        export: ExportArgs,
    }

    fn parse(args: &[&str]) -> Result<ExportArgs, clap::Error> {
        Wrapper::try_parse_from(["export"].iter().chain(args)).map(|w| w.export)
    }

    /// A fresh directory under the system temp dir for `test`.
    fn workdir(test: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("reparam-export-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn paths_resolve_with_and_without_model() {
        let a = parse(&["in.safetensors", "out.onnx"]).unwrap();
        let (input, output) = a.resolve().unwrap();
        assert_eq!(input, Some(Path::new("in.safetensors")));
        assert_eq!(output, Path::new("out.onnx"));
        let a = parse(&["--model", "a0", "--seed", "3", "out.onnx"]).unwrap();
        assert_eq!(a.resolve().unwrap(), (None, Path::new("out.onnx")));
        assert_eq!(a.seed, 3);

        let e = parse(&["in.safetensors"]).unwrap().resolve().unwrap_err();
        assert!(e.to_string().contains("missing OUT"), "{e}");
        let e = parse(&["--model", "a0", "in.safetensors", "out.onnx"])
            .unwrap()
            .resolve()
            .unwrap_err();
        assert!(e.to_string().contains("takes no checkpoint"), "{e}");
        for bad in [
            &[][..],
            &["a", "b", "c"],
            &["--seed", "1", "in", "out"],
            &["--bn-eps", "0", "in", "out"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refuses_to_overwrite_the_input() {
        let args = parse(&["Cargo.toml", "./Cargo.toml"]).unwrap();
        let e = export(&args, &mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains("refusing to overwrite"), "{e}");
    }

    #[test]
    fn missing_input_and_unknown_model_are_errors() {
        let args = parse(&["/no/such/train.safetensors", "/no/such/out.onnx"]).unwrap();
        let e = export(&args, &mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains("no such file"), "{e}");
        let args = parse(&["--model", "vgg16", "/no/such/out.onnx"]).unwrap();
        let e = export(&args, &mut Vec::new()).unwrap_err().to_string();
        assert!(e.contains("unknown model `vgg16`"), "{e}");
    }

    #[test]
    fn exports_training_time_and_deployed_checkpoints_alike() {
        let dir = workdir("forms");
        let config = Config::custom(
            8,
            vec![StageConfig::dense(8, 2), StageConfig::dense(16, 1)],
            4,
            Some(4),
        )
        .unwrap();
        let train = TrainNet::random(&config, 7);
        let plain = repvgg::fuse(&train).unwrap();
        let train_path = dir.join("train.safetensors");
        let deploy_path = dir.join("deploy.safetensors");
        std::fs::write(
            &train_path,
            repvgg::checkpoint::train_to_bytes(&train, Naming::Timm).unwrap(),
        )
        .unwrap();
        std::fs::write(
            &deploy_path,
            repvgg::checkpoint::plain_to_bytes(&plain, Naming::Official).unwrap(),
        )
        .unwrap();

        let mut models = Vec::new();
        for (input, name) in [(&train_path, "train.onnx"), (&deploy_path, "deploy.onnx")] {
            let output = dir.join(name);
            let args = parse(&[input.to_str().unwrap(), output.to_str().unwrap()]).unwrap();
            let mut stdout = Vec::new();
            export(&args, &mut stdout).unwrap();
            let bytes = std::fs::read(&output).unwrap();
            let line = String::from_utf8(stdout).unwrap();
            // 4 blocks (stem, 2, 1) with SE: 8 nodes each, then pool, flatten and gemm; 6
            // initializers each, then the classifier's weight and bias.
            let summary = format!("35 nodes, 26 initializers, {} bytes\n", bytes.len());
            assert!(line.ends_with(&summary), "{line}");
            assert_eq!(line.lines().count(), 1, "{line}");
            models.push(ModelProto::from_bytes(&bytes).unwrap());
        }
        // The fold of the training file is the deployed file's content.
        assert_eq!(models[0], models[1]);
        assert_eq!(models[0], to_model(&plain).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
