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

struct WinoParams {
    batch: u32, in_h: u32, in_w: u32, in_cs: u32,
    out_h: u32, out_w: u32, out_cs: u32, out_c: u32,
    cin: u32, cig: u32, cog: u32, cog_pad: u32,
    groups: u32, tiles_h: u32, tiles_w: u32, tiles: u32,
    in_base: u32, out_base: u32, relu: u32, total: u32,
    m_tiles: u32, n_tiles: u32, positions: u32, pad1: u32,
}

@group(0) @binding(0) var<uniform> p: WinoParams;
@group(0) @binding(1) var<storage, read> m: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

fn put(n: u32, oy: u32, ox: u32, o: u32, val: f32) {
    if (oy < p.out_h && ox < p.out_w) {
        var r = val;
        if (p.relu != 0u) {
            r = max(r, 0.0);
        }
        y[p.out_base + ((n * p.out_h + oy) * p.out_w + ox) * p.out_cs + o] = r;
    }
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
    let o = idx % p.out_cs;
    let t = idx / p.out_cs;
    let tx = t % p.tiles_w;
    let r = t / p.tiles_w;
    let ty = r % p.tiles_h;
    let n = r / p.tiles_h;
    let oy = 2u * ty;
    let ox = 2u * tx;
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
