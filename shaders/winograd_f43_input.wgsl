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

fn invocation(idx: u32) {
    let c = idx % p.cin;
    let t = idx / p.cin;
    let tile = tile_origin(t, 4u);
    let n = tile.n;
    let y0 = i32(tile.y) - 1;
    let x0 = i32(tile.x) - 1;

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
