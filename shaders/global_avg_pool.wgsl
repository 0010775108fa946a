// global_avg_pool.wgsl — y[n, 0, 0, ch] = (1 / (H·W)) · Σ_{y,x} x[n, y, x, ch] on NHWC activations.
//
// One invocation per (image, channel lane), channel fastest so neighbouring invocations read
// neighbouring addresses; each sums its H·W values in order (f32). Lanes ch ≥ c are zero.
//
// Bindings (group 0): 0 params (uniform PoolParams), 1 x (read), 2 y (read_write, [n][cs]).
// Workgroup: 64; grid folded into x·y.

struct PoolParams {
    batch: u32, hw: u32, cs: u32, c: u32,
    x_base: u32, y_base: u32, total: u32, pad0: u32,
}

@group(0) @binding(0) var<uniform> p: PoolParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn invocation(idx: u32) {
    let ch = idx % p.cs;
    let n = idx / p.cs;
    var sum = 0.0;
    if (ch < p.c) {
        let base = p.x_base + n * p.hw * p.cs + ch;
        for (var q = 0u; q < p.hw; q++) {
            sum += x[base + q * p.cs];
        }
        sum = sum / f32(p.hw);
    }
    y[p.y_base + idx] = sum;
}
