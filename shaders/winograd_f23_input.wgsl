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

fn invocation(idx: u32) {
    let c = idx % p.cin;
    let t = idx / p.cin;
    let tile = tile_origin(t, 2u);
    let n = tile.n;
    let y0 = i32(tile.y) - 1;
    let x0 = i32(tile.x) - 1;

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
