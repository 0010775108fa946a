//! `reparam gpu info`: the adapter a [`GpuContext`] picks (the environment variables
//! `REPARAM_GPU_ADAPTER` and `REPARAM_GPU_BACKEND` steer it) and what it offers. The GPU layer
//! sweep is `reparam layers --backend gpu`.

use crate::error::CliError;
use clap::{Args, Subcommand};
use reparam_wgsl::{GpuContext, GpuContextOptions};
use std::io::Write;

/// Arguments of `reparam gpu`.
#[derive(Debug, Args)]
pub struct GpuArgs {
    /// What to do on the GPU.
    #[command(subcommand)]
    pub command: GpuCommand,
}

/// The subcommands of `reparam gpu`.
#[derive(Debug, Subcommand)]
pub enum GpuCommand {
    /// Print the adapter the GPU context uses: name, backend, driver, timestamps, limits.
    Info(GpuInfoArgs),
}

/// Arguments of `reparam gpu info`.
#[derive(Debug, Args)]
#[command(
    after_help = "Environment: REPARAM_GPU_ADAPTER=<text> picks the first adapter whose \
    name contains the text; REPARAM_GPU_BACKEND=vulkan (the only backend of this build).\n\n\
    Examples:\n  reparam gpu info\n  reparam gpu info --json"
)]
pub struct GpuInfoArgs {
    /// Print a JSON object instead of the text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `reparam gpu`.
pub fn gpu(args: &GpuArgs, out: &mut dyn Write) -> Result<(), CliError> {
    match &args.command {
        GpuCommand::Info(args) => info(args, out),
    }
}

/// A GPU context per the environment, or an error that says what to do.
pub(crate) fn context() -> Result<GpuContext, CliError> {
    pollster::block_on(GpuContext::new(&GpuContextOptions::from_env()))
        .map_err(|e| CliError::from_gpu("cannot start the GPU", &e))
}

/// `AdapterSummary::device_type` of a software rasterizer (lavapipe, llvmpipe).
pub(crate) const SOFTWARE_DEVICE_TYPE: &str = "Cpu";

/// Runs `reparam gpu info`.
pub fn info(args: &GpuInfoArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let ctx = context()?;
    let summary = ctx.summary();
    if args.json {
        let json = serde_json::to_string_pretty(summary)
            .expect("the summary serializes: plain numbers and strings");
        writeln!(out, "{json}")?;
    } else {
        writeln!(out, "{summary}")?;
        if summary.device_type == SOFTWARE_DEVICE_TYPE {
            writeln!(
                out,
                "note:         a software adapter (runs on the CPU); its timings say nothing \
                 about a GPU"
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reparam_wgsl::GpuError;

    #[test]
    fn no_adapter_error_says_what_to_do() {
        let e = CliError::from_gpu(
            "cannot start the GPU",
            &GpuError::NoAdapter {
                reason: "no Vulkan ICD".into(),
            },
        )
        .to_string();
        assert!(
            e.starts_with("error: cannot start the GPU: no GPU adapter found"),
            "{e}"
        );
        if std::env::var(reparam_wgsl::context::ENV_ADAPTER).is_err() {
            assert!(e.contains("apt-get install mesa-vulkan-drivers"), "{e}");
            assert!(e.contains("machine with a GPU"), "{e}");
        }
    }

    #[test]
    fn info_json_has_every_field() {
        let Some(ctx) = reparam_wgsl::test_support::shared_context() else {
            return;
        };
        let json = serde_json::to_value(ctx.summary()).unwrap();
        for key in [
            "name",
            "backend",
            "device_type",
            "driver",
            "timestamps",
            "timestamps_inside_passes",
            "shader_f16",
            "subgroups",
            "max_storage_binding",
            "max_buffer",
            "max_workgroup_storage",
        ] {
            assert!(json.get(key).is_some(), "missing `{key}` in {json}");
        }
        assert_eq!(json["name"], ctx.summary().name);
    }
}
