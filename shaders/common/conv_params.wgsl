// common/conv_params.wgsl — the uniform of the direct and implicit-GEMM convolutions
// (conv_naive, conv_direct, conv_gemm, conv_gemm_wide); mirrors `ConvParams` in
// crates/wgsl/src/conv/mod.rs field for field (the first eight there in `IoShape`).

struct ConvParams {
    batch: u32, in_h: u32, in_w: u32, in_cs: u32,
    out_h: u32, out_w: u32, out_cs: u32, out_c: u32,
    cig: u32, cog: u32, cog_pad: u32, groups: u32,
    stride: u32, pad: u32, relu: u32, in_base: u32,
    out_base: u32, m_tiles: u32, n_tiles: u32, total: u32,
}
