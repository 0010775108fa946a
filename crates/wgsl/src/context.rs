//! [`GpuContext`]: adapter, device, queue, the pipeline cache and error capture.

use crate::error::GpuError;
use crate::shader::{Shader, Specialization};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// Environment variable: a comma-separated list of wgpu backends to consider (`vulkan`, `gl`,
/// `metal`, `dx12`); this build compiles the Vulkan backend only.
pub const ENV_BACKEND: &str = "REPARAM_GPU_BACKEND";
/// Environment variable: pick the first adapter whose name contains this text (case-insensitive).
pub const ENV_ADAPTER: &str = "REPARAM_GPU_ADAPTER";

/// A device limit this crate needs: its name, how to read it, and the minimum.
type RequiredLimit = (&'static str, fn(&wgpu::Limits) -> u64, u64);

/// Below these limits no kernel of this crate can run (WebGPU's defaults are above them all).
const REQUIRED_LIMITS: [RequiredLimit; 4] = [
    (
        "max_compute_invocations_per_workgroup",
        |l| l.max_compute_invocations_per_workgroup.into(),
        256,
    ),
    (
        "max_compute_workgroup_storage_size",
        |l| l.max_compute_workgroup_storage_size.into(),
        8192,
    ),
    (
        "max_storage_buffers_per_shader_stage",
        |l| l.max_storage_buffers_per_shader_stage.into(),
        5,
    ),
    (
        "max_storage_buffer_binding_size",
        |l| l.max_storage_buffer_binding_size,
        1 << 20,
    ),
];

/// How to choose the adapter and how much of it to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuContextOptions {
    /// Backends to consider.
    pub backends: wgpu::Backends,
    /// Use the first adapter whose name contains this (case-insensitive); `None`: wgpu's
    /// high-performance default.
    pub adapter_name: Option<String>,
    /// Cap on the storage binding size used when splitting large tensors (at most the device's
    /// `max_storage_buffer_binding_size`). Tests lower it to exercise the splitting on small
    /// tensors.
    pub max_binding_bytes: Option<u64>,
}

impl Default for GpuContextOptions {
    fn default() -> Self {
        Self {
            backends: wgpu::Backends::VULKAN,
            adapter_name: None,
            max_binding_bytes: None,
        }
    }
}

impl GpuContextOptions {
    /// The defaults, overridden by [`ENV_BACKEND`] and [`ENV_ADAPTER`] when set.
    pub fn from_env() -> Self {
        let mut options = Self::default();
        if let Ok(list) = std::env::var(ENV_BACKEND) {
            options.backends = wgpu::Backends::from_comma_list(&list);
        }
        if let Ok(name) = std::env::var(ENV_ADAPTER)
            && !name.is_empty()
        {
            options.adapter_name = Some(name);
        }
        options
    }
}

/// What the context runs on, for reports (`Display` prints one line per field; with the `serde`
/// feature it serializes as an object of the same field names, `subgroups` as `[min, max]`).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct AdapterSummary {
    /// Adapter name, e.g. `NVIDIA H100 80GB HBM3` or `llvmpipe (LLVM 15.0.6, 256 bits)`.
    pub name: String,
    /// Backend (`Vulkan`, ...).
    pub backend: String,
    /// `DiscreteGpu`, `Cpu`, ...
    pub device_type: String,
    /// Driver name and version.
    pub driver: String,
    /// Timestamp queries (pass boundaries) are available.
    pub timestamps: bool,
    /// Timestamps may also be written between dispatches inside one pass.
    pub timestamps_inside_passes: bool,
    /// `SHADER_F16` is available.
    pub shader_f16: bool,
    /// Subgroup operations are available, with this size range.
    pub subgroups: Option<(u32, u32)>,
    /// `max_storage_buffer_binding_size` of the device.
    pub max_storage_binding: u64,
    /// `max_buffer_size` of the device.
    pub max_buffer: u64,
    /// `max_compute_workgroup_storage_size` of the device.
    pub max_workgroup_storage: u32,
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "adapter:      {}", self.name)?;
        writeln!(f, "backend:      {} ({})", self.backend, self.device_type)?;
        writeln!(f, "driver:       {}", self.driver)?;
        writeln!(
            f,
            "timestamps:   {}{}",
            self.timestamps,
            if self.timestamps_inside_passes {
                " (inside passes too)"
            } else {
                ""
            }
        )?;
        writeln!(f, "shader-f16:   {}", self.shader_f16)?;
        match self.subgroups {
            Some((lo, hi)) => writeln!(f, "subgroups:    {lo}..={hi}")?,
            None => writeln!(f, "subgroups:    no")?,
        }
        writeln!(f, "max binding:  {} bytes", self.max_storage_binding)?;
        writeln!(f, "max buffer:   {} bytes", self.max_buffer)?;
        write!(f, "workgroup memory: {} bytes", self.max_workgroup_storage)
    }
}

type PipelineKey = (Shader, Specialization);

/// Adapter, device and queue, plus the compiled-pipeline cache. Build once and share.
///
/// Errors wgpu reports asynchronously (validation, out of memory, device loss) are captured
/// instead of panicking and returned by the next call that waits on the device.
pub struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    summary: AdapterSummary,
    features: wgpu::Features,
    max_binding: u64,
    storage_alignment: u64,
    max_workgroups_per_dim: u32,
    pipelines: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
    errors: Arc<Mutex<Vec<String>>>,
    lost: Arc<Mutex<Option<String>>>,
}

impl fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.summary.name)
            .field("max_binding", &self.max_binding)
            .finish_non_exhaustive()
    }
}

impl GpuContext {
    /// Finds an adapter per `options`, requests a device with the adapter's own limits and the
    /// optional features it has (timestamps, f16, subgroups), and installs error capture.
    pub async fn new(options: &GpuContextOptions) -> Result<Self, GpuError> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = options.backends;
        let instance = wgpu::Instance::new(desc);
        let adapter = match &options.adapter_name {
            None => instance
                .request_adapter(&wgpu::RequestAdapterOptions {
                    power_preference: wgpu::PowerPreference::HighPerformance,
                    ..Default::default()
                })
                .await
                .map_err(|e| GpuError::NoAdapter {
                    reason: e.to_string(),
                })?,
            Some(wanted) => {
                let adapters = instance.enumerate_adapters(options.backends).await;
                let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
                let needle = wanted.to_lowercase();
                adapters
                    .into_iter()
                    .find(|a| a.get_info().name.to_lowercase().contains(&needle))
                    .ok_or_else(|| GpuError::NoAdapter {
                        reason: format!("no adapter name contains `{wanted}`; found {names:?}"),
                    })?
            }
        };
        let info = adapter.get_info();
        let limits = adapter.limits();
        for (name, get, required) in REQUIRED_LIMITS {
            let actual = get(&limits);
            if actual < required {
                return Err(GpuError::LimitsTooSmall {
                    limit: name,
                    actual,
                    required,
                });
            }
        }
        let wanted = wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
            | wgpu::Features::SHADER_F16
            | wgpu::Features::SUBGROUP;
        let features = adapter.features() & wanted;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("reparam"),
                required_features: features,
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::RequestDevice {
                adapter: info.name.clone(),
                reason: e.to_string(),
            })?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&errors);
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(e.to_string());
        }));
        let lost = Arc::new(Mutex::new(None));
        let lost_sink = Arc::clone(&lost);
        device.set_device_lost_callback(move |reason, message| {
            if reason != wgpu::DeviceLostReason::Destroyed {
                *lost_sink.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(format!("{reason:?}: {message}"));
            }
        });
        let device_binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let max_binding = options
            .max_binding_bytes
            .map_or(device_binding, |cap| cap.min(device_binding))
            & !3;
        let subgroups = features
            .contains(wgpu::Features::SUBGROUP)
            .then_some((info.subgroup_min_size, info.subgroup_max_size));
        let summary = AdapterSummary {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info),
            timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            timestamps_inside_passes: features
                .contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES),
            shader_f16: features.contains(wgpu::Features::SHADER_F16),
            subgroups,
            max_storage_binding: limits.max_storage_buffer_binding_size,
            max_buffer: limits.max_buffer_size,
            max_workgroup_storage: limits.max_compute_workgroup_storage_size,
        };
        Ok(Self {
            device,
            queue,
            summary,
            features,
            max_binding,
            storage_alignment: limits.min_storage_buffer_offset_alignment.into(),
            max_workgroups_per_dim: limits.max_compute_workgroups_per_dimension,
            pipelines: Mutex::new(HashMap::new()),
            errors,
            lost,
        })
    }

    /// What the context runs on.
    pub fn summary(&self) -> &AdapterSummary {
        &self.summary
    }

    /// The wgpu device (for engines that encode their own work around ours).
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// The enabled optional features.
    pub fn features(&self) -> wgpu::Features {
        self.features
    }

    /// The largest storage binding this context uses, in bytes (a multiple of 4).
    pub fn max_binding_bytes(&self) -> u64 {
        self.max_binding
    }

    /// `min_storage_buffer_offset_alignment` of the device.
    pub(crate) fn storage_alignment(&self) -> u64 {
        self.storage_alignment
    }

    /// `max_compute_workgroups_per_dimension` of the device.
    pub(crate) fn max_workgroups_per_dim(&self) -> u32 {
        self.max_workgroups_per_dim
    }

    /// The compiled pipeline of `shader` with `spec`, compiled on first use and cached.
    pub(crate) fn pipeline(
        &self,
        shader: Shader,
        spec: &Specialization,
    ) -> Result<wgpu::ComputePipeline, GpuError> {
        let key = (shader, spec.clone());
        let mut cache = self
            .pipelines
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = cache.get(&key) {
            return Ok(p.clone());
        }
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(shader.name()),
                source: wgpu::ShaderSource::Wgsl(shader.source().into()),
            });
        let constants: Vec<(&str, f64)> = spec
            .constants()
            .iter()
            .map(|&(name, value)| (name, f64::from(value)))
            .collect();
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(shader.name()),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants,
                    // Every kernel writes its workgroup arrays before reading them.
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
        self.check()?;
        cache.insert(key, pipeline.clone());
        Ok(pipeline)
    }

    /// Returns the first captured asynchronous error (device loss first), clearing the list.
    pub fn check(&self) -> Result<(), GpuError> {
        if let Some(reason) = self
            .lost
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Err(GpuError::DeviceLost { reason });
        }
        let mut errors = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        if errors.is_empty() {
            Ok(())
        } else {
            let first = errors.remove(0);
            errors.clear();
            Err(GpuError::Wgpu(first))
        }
    }

    /// Blocks until `submission` has completed, then reports captured errors.
    pub(crate) fn wait(&self, submission: wgpu::SubmissionIndex) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(submission),
                timeout: None,
            })
            .map_err(|e| GpuError::Wgpu(format!("waiting for the queue: {e}")))?;
        self.check()
    }
}
