// layout_nchw_to_nhwc.wgsl — NCHW f32 → the GPU activation layout (NHWC, channel stride cs ≥ c,
// a multiple of 4, lanes ≥ c zero):  dst[((n·H + y)·W + x)·cs + ch] = src[((n·C + ch)·H + y)·W + x].
//
// Bindings (group 0): 0 params (uniform LayoutParams), 1 src (read), 2 dst (read_write).
// Workgroup: 64; one invocation per destination element; grid folded into x·y.

fn invocation(idx: u32) {
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
