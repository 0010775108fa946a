// winograd_f23_input.wgsl — Winograd F(2×2, 3×3) input transform, stride 1, padding 1.
//
// For every 2×2 output tile t = (n, ty, tx) and input channel c, the 4×4 input patch
//   d[r][s] = x[n, 2·ty − 1 + r, 2·tx − 1 + s, c]   (zero outside the image)
// is transformed to V = Bᵀ d B with (interpolation points 0, 1, −1; the matrices of
// `reparam_tensor::winograd`, shared with the CPU crate)
//        | 1  0 −1  0 |
//   Bᵀ = | 0  1  1  0 |
//        | 0 −1  1  0 |
//        | 0 −1  0  1 |
// and stored position-major: v[(pos·P + t)·C_in + c], pos = 4·r + s, P = tiles in the chunk,
// so each of the 16 positions is a row-major P × C_in matrix for the batched GEMM.
//
// Bindings (group 0): 0 params (uniform WinoParams), 1 x (read, NHWC f32), 2 v (read_write).
// Workgroup: 64; one invocation per (tile, channel), channel fastest; grid folded into x·y.

struct WinoParams {
    batch: u32, in_h: u32, in_w: u32, in_cs: u32,
    out_h: u32, out_w: u32, out_cs: u32, out_c: u32,
    cin: u32, cig: u32, cog: u32, cog_pad: u32,
    groups: u32, tiles_h: u32, tiles_w: u32, tiles: u32,
    in_base: u32, out_base: u32, relu: u32, total: u32,
    m_tiles: u32, n_tiles: u32, positions: u32, pad1: u32,
}

@group(0) @binding(0) var<uniform> p: WinoParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;

fn load(n: u32, iy: i32, ix: i32, c: u32) -> f32 {
    if (iy < 0 || iy >= i32(p.in_h) || ix < 0 || ix >= i32(p.in_w)) {
        return 0.0;
    }
    return x[p.in_base + ((n * p.in_h + u32(iy)) * p.in_w + u32(ix)) * p.in_cs + c];
}

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
    let c = idx % p.cin;
    let t = idx / p.cin;
    let tx = t % p.tiles_w;
    let r = t / p.tiles_w;
    let ty = r % p.tiles_h;
    let n = r / p.tiles_h;
    let y0 = i32(2u * ty) - 1;
    let x0 = i32(2u * tx) - 1;

    // Columns first: e[r][s] = (d Bᵀᵀ)… i.e. for each row r, e = Bᵀ applied along s.
    var e: array<vec4<f32>, 4>;
    for (var i = 0u; i < 4u; i++) {
        let d0 = load(n, y0 + i32(i), x0, c);
        let d1 = load(n, y0 + i32(i), x0 + 1, c);
        let d2 = load(n, y0 + i32(i), x0 + 2, c);
        let d3 = load(n, y0 + i32(i), x0 + 3, c);
        e[i] = vec4<f32>(d0 - d2, d1 + d2, d2 - d1, d3 - d1);
    }
    // Then Bᵀ along r, on whole rows of e.
    let v0 = e[0] - e[2];
    let v1 = e[1] + e[2];
    let v2 = e[2] - e[1];
    let v3 = e[3] - e[1];
    let stride = p.tiles * p.cin;
    let base = t * p.cin + c;
    for (var s = 0u; s < 4u; s++) {
        v[base + (0u + s) * stride] = v0[s];
        v[base + (4u + s) * stride] = v1[s];
        v[base + (8u + s) * stride] = v2[s];
        v[base + (12u + s) * stride] = v3[s];
    }
}
