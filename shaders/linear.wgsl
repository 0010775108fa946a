// linear.wgsl — a fully connected layer on pooled features (the classifier head, and the two
// 1x1 convolutions of squeeze-excitation, which act on a 1x1 map):
//   y[n][o] = act( b[o] + Σ_{f<F} W[o][f] · x[n][f] ),  act ∈ {identity, ReLU, sigmoid},
// and 0 on lanes o ≥ out_f. x is `[n][in_cs]`, y `[n][out_cs]` (NHWC with H = W = 1).
//
// Bindings (group 0): 0 params (uniform LinearParams), 1 x (read), 2 w (read, [out_f][in_f]),
// 3 b (read, [out_f]), 4 y (read_write). Workgroup: 64; one invocation per (image, output
// lane); grid folded into x·y.

struct LinearParams {
    batch: u32, in_f: u32, in_cs: u32, out_f: u32,
    out_cs: u32, act: u32, total: u32, pad0: u32,
}

@group(0) @binding(0) var<uniform> p: LinearParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn invocation(idx: u32) {
    let o = idx % p.out_cs;
    let n = idx / p.out_cs;
    var val = 0.0;
    if (o < p.out_f) {
        var acc = b[o];
        for (var f = 0u; f < p.in_f; f++) {
            acc += w[o * p.in_f + f] * x[n * p.in_cs + f];
        }
        if (p.act == 1u) {
            acc = max(acc, 0.0);
        } else if (p.act == 2u) {
            acc = 1.0 / (1.0 + exp(-acc));
        }
        val = acc;
    }
    y[idx] = val;
}
