// common/conv_vec4.wgsl — bindings and epilogue stores of the register-tiled convolutions
// (conv_direct, conv_gemm, conv_gemm_wide): 0 params (uniform ConvParams), 1 x (read, NHWC
// f32), 2 w (read, vec4 `[g][tap][ci][cog_pad/4]`), 3 bias (read, vec4 [g][cog_pad/4]), 4 y
// (read_write, NHWC f32).

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// Output channels j0 .. j0 + 4 of one group (those < cog) from y[base] on: relu?(v[l]).
fn store_lanes(base: u32, j0: u32, v: vec4<f32>) {
    for (var l = 0u; l < 4u; l++) {
        if (j0 + l < p.cog) {
            var r = v[l];
            if (p.relu != 0u) {
                r = max(r, 0.0);
            }
            y[base + l] = r;
        }
    }
}

// The GEMM epilogue: pixel m (of N·Ho·Wo; rows past the end are skipped), group g, channels
// j0 .. j0 + 4 of the group.
fn store_pixel(m: u32, g: u32, j0: u32, v: vec4<f32>) {
    let mm = p.batch * p.out_h * p.out_w;
    if (m >= mm) {
        return;
    }
    let base = p.out_base + m * p.out_cs + g * p.cog + j0;
    store_lanes(base, j0, v);
}
