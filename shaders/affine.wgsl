// affine.wgsl — per-channel affine map, optional residual add, optional ReLU, on NHWC activations:
//   y[i] = relu?( x[i] · scale[ch] + shift[ch] + (other[i] if has_other) ),  ch = i mod cs,
// and 0 on lanes ch ≥ c. One kernel serves the multi-branch ops: inference batch norm
// (scale = γ/√(σ²+ε), shift = β − μ·scale), add (scale 1, shift 0, other = rhs) and ReLU.
//
// Bindings (group 0): 0 params (uniform AffineParams), 1 x (read), 2 other (read; bound to x when
// unused), 3 scale (read, [cs]), 4 shift (read, [cs]), 5 y (read_write).
// Workgroup: 64; one invocation per element; grid folded into x·y. Windows start on a pixel.

struct AffineParams {
    total: u32, cs: u32, c: u32, relu: u32,
    has_other: u32, x_base: u32, other_base: u32, y_base: u32,
}

@group(0) @binding(0) var<uniform> p: AffineParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> other: array<f32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read> shift: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

fn invocation(idx: u32) {
    let ch = idx % p.cs;
    var val = 0.0;
    if (ch < p.c) {
        val = x[p.x_base + idx] * scale[ch] + shift[ch];
        if (p.has_other != 0u) {
            val += other[p.other_base + idx];
        }
        if (p.relu != 0u) {
            val = max(val, 0.0);
        }
    }
    y[p.y_base + idx] = val;
}
