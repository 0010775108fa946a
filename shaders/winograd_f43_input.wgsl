// winograd_f43_input.wgsl — Winograd F(4×4, 3×3) input transform, stride 1, padding 1.
//
// For every 4×4 output tile t = (n, ty, tx) and input channel c, the 6×6 input patch
//   d[r][s] = x[n, 4·ty − 1 + r, 4·tx − 1 + s, c]   (zero outside the image)
// is transformed to V = Bᵀ d B with (interpolation points 0, ±√2, ±√2/2, ∞: the matrices of
// `reparam_tensor::winograd`, shared with the CPU crate; S = √2, H = √2/2)
//        | 1   0   −5/2   0   1  0 |
//        | 0  −S   −2     H   1  0 |
//   Bᵀ = | 0   S   −2    −H   1  0 |
//        | 0  −H   −1/2   S   1  0 |
//        | 0   H   −1/2  −S   1  0 |
//        | 0   1    0   −5/2  0  1 |
// and stored position-major: v[(pos·P + t)·C_in + c], pos = 6·r + s, P = tiles in the chunk,
// so each of the 36 positions is a row-major P × C_in matrix for the batched GEMM
// (winograd_gemm.wgsl with `positions` = 36).
//
// Bindings (group 0): 0 params (uniform WinoParams), 1 x (read, NHWC f32), 2 v (read_write).
// Workgroup: 64; one invocation per (tile, channel), channel fastest; grid folded into x·y.

const S: f32 = 1.4142135623730951;
const H: f32 = 0.7071067811865476;

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

// Bᵀ·d for one line d of 6 values; rows 1/2 and 3/4 share their even and odd halves:
// (d4 − 2·d2) ∓ (S·d1 − H·d3) and (d4 − d2/2) ∓ (H·d1 − S·d3).
fn bt(d: array<f32, 6>) -> array<f32, 6> {
    let even1 = d[4] - 2.0 * d[2];
    let odd1 = S * d[1] - H * d[3];
    let even2 = d[4] - 0.5 * d[2];
    let odd2 = H * d[1] - S * d[3];
    return array<f32, 6>(
        d[0] - 2.5 * d[2] + d[4],
        even1 - odd1,
        even1 + odd1,
        even2 - odd2,
        even2 + odd2,
        d[1] - 2.5 * d[3] + d[5],
    );
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
    let y0 = i32(4u * ty) - 1;
    let x0 = i32(4u * tx) - 1;

    // Bᵀ along s for every row of the patch: e[i] = Bᵀ·d[i].
    var e: array<array<f32, 6>, 6>;
    for (var i = 0u; i < 6u; i++) {
        var d: array<f32, 6>;
        for (var j = 0u; j < 6u; j++) {
            d[j] = load(n, y0 + i32(i), x0 + i32(j), c);
        }
        e[i] = bt(d);
    }
    // Then Bᵀ along r, column by column, stored position-major.
    let stride = p.tiles * p.cin;
    let base = t * p.cin + c;
    for (var s = 0u; s < 6u; s++) {
        let col = bt(array<f32, 6>(e[0][s], e[1][s], e[2][s], e[3][s], e[4][s], e[5][s]));
        for (var i = 0u; i < 6u; i++) {
            v[base + (6u * i + s) * stride] = col[i];
        }
    }
}
