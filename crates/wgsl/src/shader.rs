//! The shader table: every WGSL kernel of the top-level `shaders/` folder (with the parts it
//! shares from `shaders/common/`), compiled into the crate with `include_str!`, one kernel per
//! file, each with a header comment giving its bindings, workgroup size and layout.

/// The kernel table: for every [`Shader`] its file in `shaders/` and the shared parts from
/// `shaders/common/` it is compiled with (uniform structs, the entry point). WGSL has no
/// includes and its module-scope declarations may come in any order, so a shader's source is its
/// file followed by its parts, concatenated at compile time.
macro_rules! shader_table {
    ($($shader:ident => $file:literal [$($part:literal),*],)*) => {
        impl Shader {
            /// The file name in `shaders/`, without `.wgsl`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Shader::$shader => $file,)*
                }
            }

            /// The shared parts (files in `shaders/common/`, without `.wgsl`) appended to the
            /// shader's file, in order.
            pub fn parts(self) -> &'static [&'static str] {
                match self {
                    $(Shader::$shader => &[$($part),*],)*
                }
            }

            /// The WGSL source: the shader's file, then its [`parts`](Self::parts).
            pub fn source(self) -> &'static str {
                match self {
                    $(Shader::$shader => concat!(
                        include_str!(concat!(
                            env!("CARGO_MANIFEST_DIR"), "/../../shaders/", $file, ".wgsl"
                        )),
                        $(include_str!(concat!(
                            env!("CARGO_MANIFEST_DIR"), "/../../shaders/common/", $part, ".wgsl"
                        )),)*
                    ),)*
                }
            }
        }
    };
}

shader_table! {
    ConvNaive => "conv_naive" ["conv_params", "invocation"],
    ConvDirect => "conv_direct" ["conv_params", "conv_vec4", "invocation"],
    ConvGemm => "conv_gemm" ["conv_params", "conv_vec4", "tile_invocation"],
    ConvGemmWide => "conv_gemm_wide" ["conv_params", "conv_vec4", "tile_invocation"],
    WinogradF23Input => "winograd_f23_input" ["wino_params", "winograd_input", "invocation"],
    WinogradGemm => "winograd_gemm" ["wino_params", "tile_invocation"],
    WinogradF23Output => "winograd_f23_output" ["wino_params", "winograd_output", "invocation"],
    WinogradF43Input => "winograd_f43_input" ["wino_params", "winograd_input", "invocation"],
    WinogradF43Output => "winograd_f43_output" ["wino_params", "winograd_output", "invocation"],
    NchwToNhwc => "layout_nchw_to_nhwc" ["layout_params", "invocation"],
    NhwcToNchw => "layout_nhwc_to_nchw" ["layout_params", "invocation"],
    Affine => "affine" ["invocation"],
    GlobalAvgPool => "global_avg_pool" ["invocation"],
    Linear => "linear" ["invocation"],
    ScaleChannels => "scale_channels" ["invocation"],
}

/// One WGSL kernel (one file in `shaders/`, entry point `main`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shader {
    /// `conv_naive.wgsl`: one output element per invocation (the GPU reference).
    ConvNaive,
    /// `conv_direct.wgsl`: register-tiled direct conv, 4 pixels × 4 channels per invocation.
    ConvDirect,
    /// `conv_gemm.wgsl`: implicit GEMM with 64×64 tiles staged in workgroup memory.
    ConvGemm,
    /// `conv_gemm_wide.wgsl`: implicit GEMM with 128×64 tiles, 8×4 per invocation.
    ConvGemmWide,
    /// `winograd_f23_input.wgsl`: F(2×2,3×3) input transform `V = Bᵀ d B`.
    WinogradF23Input,
    /// `winograd_gemm.wgsl`: the batched transform-domain GEMMs of F(2×2,3×3) (16) and
    /// F(4×4,3×3) (36).
    WinogradGemm,
    /// `winograd_f23_output.wgsl`: F(2×2,3×3) output transform `Y = Aᵀ M A` + bias + ReLU.
    WinogradF23Output,
    /// `winograd_f43_input.wgsl`: F(4×4,3×3) input transform `V = Bᵀ d B`.
    WinogradF43Input,
    /// `winograd_f43_output.wgsl`: F(4×4,3×3) output transform `Y = Aᵀ M A` + bias + ReLU.
    WinogradF43Output,
    /// `layout_nchw_to_nhwc.wgsl`: NCHW → NHWC (channel stride padded to 4).
    NchwToNhwc,
    /// `layout_nhwc_to_nchw.wgsl`: NHWC → NCHW.
    NhwcToNchw,
    /// `affine.wgsl`: per-channel affine (batch norm), optional add, optional ReLU.
    Affine,
    /// `global_avg_pool.wgsl`: mean over H·W.
    GlobalAvgPool,
    /// `linear.wgsl`: fully connected layer with identity / ReLU / sigmoid.
    Linear,
    /// `scale_channels.wgsl`: per-image, per-channel scaling (squeeze-excitation).
    ScaleChannels,
}

impl Shader {
    /// Every shader, in table order.
    pub const ALL: [Shader; 15] = [
        Shader::ConvNaive,
        Shader::ConvDirect,
        Shader::ConvGemm,
        Shader::ConvGemmWide,
        Shader::WinogradF23Input,
        Shader::WinogradGemm,
        Shader::WinogradF23Output,
        Shader::WinogradF43Input,
        Shader::WinogradF43Output,
        Shader::NchwToNhwc,
        Shader::NhwcToNchw,
        Shader::Affine,
        Shader::GlobalAvgPool,
        Shader::Linear,
        Shader::ScaleChannels,
    ];

    /// Pipeline-overridable constants the shader declares (`override NAME: u32`), each of which
    /// must be given a value in [`Specialization`].
    pub fn overrides(self) -> &'static [&'static str] {
        match self {
            Shader::ConvNaive | Shader::ConvDirect | Shader::ConvGemm | Shader::ConvGemmWide => {
                &["KSIZE"]
            }
            _ => &[],
        }
    }
}

/// Values of a shader's `override` constants: the second half of the pipeline cache key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Specialization {
    constants: Vec<(&'static str, u32)>,
}

impl Specialization {
    /// No overrides.
    pub fn none() -> Self {
        Self::default()
    }

    /// Adds (or replaces) `name = value`; kept sorted so equal sets compare equal.
    pub fn with(mut self, name: &'static str, value: u32) -> Self {
        self.constants.retain(|(n, _)| *n != name);
        self.constants.push((name, value));
        self.constants.sort();
        self
    }

    /// The constants as `(name, value)` pairs.
    pub fn constants(&self) -> &[(&'static str, u32)] {
        &self.constants
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses and validates every shader with naga (no GPU needed), and checks that every
    /// `override` the shader declares is listed in [`Shader::overrides`] and vice versa.
    #[test]
    fn every_shader_parses_and_validates() {
        for shader in Shader::ALL {
            let module = naga::front::wgsl::parse_str(shader.source()).unwrap_or_else(|e| {
                panic!(
                    "{}.wgsl: {}",
                    shader.name(),
                    e.emit_to_string(shader.source())
                )
            });
            let mut validator = naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::default(),
            );
            validator
                .validate(&module)
                .unwrap_or_else(|e| panic!("{}.wgsl: {e:?}", shader.name()));
            assert!(
                module.entry_points.iter().any(|ep| ep.name == "main"),
                "{}.wgsl has no entry point `main`",
                shader.name()
            );
            let mut declared: Vec<&str> = module
                .overrides
                .iter()
                .filter_map(|(_, o)| o.name.as_deref())
                .collect();
            declared.sort();
            let mut listed = shader.overrides().to_vec();
            listed.sort();
            assert_eq!(declared, listed, "{}.wgsl overrides", shader.name());
        }
    }

    /// The `.wgsl` files of `shaders/<sub>` (names without the suffix), sorted.
    fn wgsl_files(sub: &str) -> Vec<String> {
        let dir = format!("{}/../../shaders/{sub}", env!("CARGO_MANIFEST_DIR"));
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(".wgsl").map(str::to_owned)
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn every_shader_file_is_in_the_table() {
        let mut table: Vec<String> = Shader::ALL.iter().map(|s| s.name().to_owned()).collect();
        table.sort();
        assert_eq!(wgsl_files(""), table);
    }

    #[test]
    fn every_common_part_is_used() {
        let mut used: Vec<String> = Shader::ALL
            .iter()
            .flat_map(|s| s.parts())
            .map(|p| (*p).to_owned())
            .collect();
        used.sort();
        used.dedup();
        assert_eq!(wgsl_files("common"), used);
    }

    #[test]
    fn specialization_is_order_independent() {
        let a = Specialization::none().with("A", 1).with("B", 2);
        let b = Specialization::none().with("B", 2).with("A", 1);
        assert_eq!(a, b);
        assert_eq!(a.clone().with("A", 3).constants(), &[("A", 3), ("B", 2)]);
    }
}
