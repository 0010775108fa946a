// common/layout_params.wgsl — the uniform and bindings of the NCHW <-> NHWC layout kernels:
// 0 params (uniform LayoutParams, mirrored by `LayoutParams` in crates/wgsl/src/tensor.rs),
// 1 src (read), 2 dst (read_write).

struct LayoutParams {
    batch: u32, c: u32, h: u32, w: u32,
    cs: u32, src_base: u32, dst_base: u32, total: u32,
}

@group(0) @binding(0) var<uniform> p: LayoutParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
