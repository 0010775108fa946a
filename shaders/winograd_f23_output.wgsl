// winograd_f23_output.wgsl — Winograd F(2×2, 3×3) output transform with bias + ReLU fused.
//
// For every tile t = (n, ty, tx) and output channel o (= g·Cout/g + j):
//   Y = Aᵀ M A,  Aᵀ = | 1  1  1  0 |     M[r][s] = m[(4·r + s)·P + t][o]
//                     | 0  1 −1  1 |     (the matrices of `reparam_tensor::winograd`)
//   y[n, 2·ty + a, 2·tx + b, o] = relu?(Y[a][b] + bias[g][j])   (only inside the output)
// Lanes o ∈ [out_c, out_cs) are written as zero.
//
// Bindings (group 0): 0 params (uniform WinoParams), 1 m (read), 2 bias (read, [g][cog_pad]),
// 3 y (read_write, NHWC f32). Workgroup: 64; one invocation per (tile, output lane), lane
// fastest; grid folded into x·y.

fn invocation(idx: u32) {
    let o = idx % p.out_cs;
    let t = idx / p.out_cs;
    let tile = tile_origin(t, 2u);
    let n = tile.n;
    let oy = tile.y;
    let ox = tile.x;
    if (o >= p.out_c) {
        put(n, oy, ox, o, 0.0);
        put(n, oy, ox + 1u, o, 0.0);
        put(n, oy + 1u, ox, o, 0.0);
        put(n, oy + 1u, ox + 1u, o, 0.0);
        return;
    }
    let stride = p.tiles * p.out_c;
    let base = t * p.out_c + o;
    // Aᵀ along s for each row r: q[r] = (M[r][0] + M[r][1] + M[r][2], M[r][1] − M[r][2] + M[r][3]).
    var q: array<vec2<f32>, 4>;
    for (var i = 0u; i < 4u; i++) {
        let m0 = m[base + (4u * i + 0u) * stride];
        let m1 = m[base + (4u * i + 1u) * stride];
        let m2 = m[base + (4u * i + 2u) * stride];
        let m3 = m[base + (4u * i + 3u) * stride];
        q[i] = vec2<f32>(m0 + m1 + m2, m1 - m2 + m3);
    }
    // Then Aᵀ along r.
    let b = bias[(o / p.cog) * p.cog_pad + o % p.cog];
    let top = q[0] + q[1] + q[2] + b;
    let bottom = q[1] - q[2] + q[3] + b;
    put(n, oy, ox, o, top.x);
    put(n, oy, ox + 1u, o, top.y);
    put(n, oy + 1u, ox, o, bottom.x);
    put(n, oy + 1u, ox + 1u, o, bottom.y);
}
