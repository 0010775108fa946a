// winograd_f43_output.wgsl — Winograd F(4×4, 3×3) output transform with bias + ReLU fused.
//
// For every tile t = (n, ty, tx) and output channel o (= g·Cout/g + j):
//   Y = Aᵀ M A,   M[r][s] = m[(6·r + s)·P + t][o],  with (S = √2, H = √2/2; the matrices of
//   `reparam_tensor::winograd`)
//        | 1  1     1     1    1    0 |
//   Aᵀ = | 0  H    −H     S   −S    0 |
//        | 0  1/2   1/2   2    2    0 |
//        | 0  H/2  −H/2   2S  −2S   1 |
//   y[n, 4·ty + a, 4·tx + b, o] = relu?(Y[a][b] + bias[g][j])   (only inside the output)
// Lanes o ∈ [out_c, out_cs) are written as zero.
//
// Bindings (group 0): 0 params (uniform WinoParams), 1 m (read), 2 bias (read, [g][cog_pad]),
// 3 y (read_write, NHWC f32). Workgroup: 64; one invocation per (tile, output lane), lane
// fastest; grid folded into x·y.

const S: f32 = 1.4142135623730951;
const H: f32 = 0.7071067811865476;

// Aᵀ·q for one line q of 6 values, through the sums and differences of q1, q2 and q3, q4.
fn at(q: array<f32, 6>) -> vec4<f32> {
    let sum12 = q[1] + q[2];
    let diff12 = q[1] - q[2];
    let sum34 = q[3] + q[4];
    let diff34 = q[3] - q[4];
    return vec4<f32>(
        q[0] + sum12 + sum34,
        H * diff12 + S * diff34,
        0.5 * sum12 + 2.0 * sum34,
        0.5 * H * diff12 + 2.0 * S * diff34 + q[5],
    );
}

fn invocation(idx: u32) {
    let o = idx % p.out_cs;
    let t = idx / p.out_cs;
    let tile = tile_origin(t, 4u);
    let n = tile.n;
    let oy = tile.y;
    let ox = tile.x;
    if (o >= p.out_c) {
        for (var a = 0u; a < 4u; a++) {
            for (var b = 0u; b < 4u; b++) {
                put(n, oy + a, ox + b, o, 0.0);
            }
        }
        return;
    }
    let stride = p.tiles * p.out_c;
    let base = t * p.out_c + o;
    // Aᵀ along s for each row r: q[r] = Aᵀ·M[r].
    var q: array<vec4<f32>, 6>;
    for (var i = 0u; i < 6u; i++) {
        var row: array<f32, 6>;
        for (var j = 0u; j < 6u; j++) {
            row[j] = m[base + (6u * i + j) * stride];
        }
        q[i] = at(row);
    }
    // Then Aᵀ along r, column by column.
    let bv = bias[(o / p.cog) * p.cog_pad + o % p.cog];
    for (var b = 0u; b < 4u; b++) {
        let col = at(array<f32, 6>(q[0][b], q[1][b], q[2][b], q[3][b], q[4][b], q[5][b]));
        for (var a = 0u; a < 4u; a++) {
            put(n, oy + a, ox + b, o, col[a] + bv);
        }
    }
}
