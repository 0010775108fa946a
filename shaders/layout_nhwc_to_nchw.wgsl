// layout_nhwc_to_nchw.wgsl — the GPU activation layout (NHWC, channel stride cs) → NCHW f32:
//   dst[((n·C + ch)·H + y)·W + x] = src[((n·H + y)·W + x)·cs + ch].
//
// Bindings (group 0): 0 params (uniform LayoutParams), 1 src (read), 2 dst (read_write).
// Workgroup: 64; one invocation per destination element (x fastest); grid folded into x·y.

fn invocation(idx: u32) {
    let hw = p.h * p.w;
    let q = idx % hw;
    let t = idx / hw;
    let ch = t % p.c;
    let n = t / p.c;
    dst[p.dst_base + idx] = src[p.src_base + (n * hw + q) * p.cs + ch];
}
