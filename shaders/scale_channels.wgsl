// scale_channels.wgsl — the last step of squeeze-excitation on NHWC activations:
//   y[n, y, x, ch] = x[n, y, x, ch] · s[n][ch]   (s from linear.wgsl with sigmoid),
// 0 on lanes ch ≥ c.
//
// Bindings (group 0): 0 params (uniform ScaleParams), 1 x (read), 2 s (read, [n][cs]),
// 3 y (read_write). Workgroup: 64; one invocation per element; grid folded into x·y.
// Windows start on an image boundary; `n0` is the first image of the window.

struct ScaleParams {
    total: u32, hw: u32, cs: u32, c: u32,
    x_base: u32, y_base: u32, n0: u32, pad0: u32,
}

@group(0) @binding(0) var<uniform> p: ScaleParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> s: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

fn invocation(idx: u32) {
    let ch = idx % p.cs;
    var val = 0.0;
    if (ch < p.c) {
        let n = p.n0 + idx / (p.hw * p.cs);
        val = x[p.x_base + idx] * s[n * p.cs + ch];
    }
    y[p.y_base + idx] = val;
}
