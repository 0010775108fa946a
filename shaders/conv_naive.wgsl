// conv_naive.wgsl — the GPU reference convolution: one output element per invocation.
//
//   y[n, oy, ox, o] = relu?( bias[g][j] + Σ_{ky,kx<K} Σ_{ci<Cin/g}
//                            w[g][ky·K+kx][ci][j] · x[n, oy·s+ky−p, ox·s+kx−p, g·Cin/g + ci] )
//   with o = g·(Cout/g) + j; positions outside the input read as zero.
//
// Layout: activations NHWC, f32, channel stride `in_cs` / `out_cs` (the channel count rounded up
// to 4); lanes o ∈ [out_c, out_cs) are written as zero. Weights `[g][tap][ci][cog_pad]`, bias
// `[g][cog_pad]`, both zero-padded (see `crates/wgsl/src/conv/pack.rs`).
// Bindings (group 0): 0 params (uniform ConvParams), 1 x (read), 2 w (read), 3 bias (read),
// 4 y (read_write). Workgroup: 64 invocations; the 1-D grid is folded into x·y.
// Override: KSIZE (1 or 3).

override KSIZE: u32 = 3u;

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn invocation(idx: u32) {
    let o = idx % p.out_cs;
    let pix = idx / p.out_cs;
    if (o >= p.out_c) {
        y[p.out_base + idx] = 0.0;
        return;
    }
    let ox = pix % p.out_w;
    let t = pix / p.out_w;
    let oy = t % p.out_h;
    let n = t / p.out_h;
    let g = o / p.cog;
    let j = o % p.cog;
    var acc = 0.0;
    for (var ky = 0u; ky < KSIZE; ky++) {
        let iy = i32(oy * p.stride + ky) - i32(p.pad);
        if (iy < 0 || iy >= i32(p.in_h)) {
            continue;
        }
        for (var kx = 0u; kx < KSIZE; kx++) {
            let ix = i32(ox * p.stride + kx) - i32(p.pad);
            if (ix < 0 || ix >= i32(p.in_w)) {
                continue;
            }
            let xb = p.in_base + ((n * p.in_h + u32(iy)) * p.in_w + u32(ix)) * p.in_cs + g * p.cig;
            let wb = ((g * KSIZE * KSIZE + ky * KSIZE + kx) * p.cig) * p.cog_pad + j;
            for (var ci = 0u; ci < p.cig; ci++) {
                acc += x[xb + ci] * w[wb + ci * p.cog_pad];
            }
        }
    }
    acc += bias[g * p.cog_pad + j];
    if (p.relu != 0u) {
        acc = max(acc, 0.0);
    }
    y[p.out_base + idx] = acc;
}
