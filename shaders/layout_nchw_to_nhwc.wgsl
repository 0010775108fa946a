// layout_nchw_to_nhwc.wgsl — NCHW f32 → the GPU activation layout (NHWC, channel stride cs ≥ c,
// a multiple of 4, lanes ≥ c zero):  dst[((n·H + y)·W + x)·cs + ch] = src[((n·C + ch)·H + y)·W + x].
//
// Bindings (group 0): 0 params (uniform LayoutParams), 1 src (read), 2 dst (read_write).
// Workgroup: 64; one invocation per destination element; grid folded into x·y.

struct LayoutParams {
    batch: u32, c: u32, h: u32, w: u32,
    cs: u32, src_base: u32, dst_base: u32, total: u32,
}

@group(0) @binding(0) var<uniform> p: LayoutParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let idx = (wg.y * nwg.x + wg.x) * 64u + li;
    if (idx >= p.total) {
        return;
    }
    let ch = idx % p.cs;
    let pix = idx / p.cs;
    var val = 0.0;
    if (ch < p.c) {
        let hw = p.h * p.w;
        let n = pix / hw;
        let q = pix % hw;
        val = src[p.src_base + (n * p.c + ch) * hw + q];
    }
    dst[p.dst_base + idx] = val;
}
