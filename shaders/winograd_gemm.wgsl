// winograd_gemm.wgsl — the batched GEMM of Winograd F(2×2, 3×3) and F(4×4, 3×3) in the transform
// domain.
//
// For each of the `positions` transform positions pos (16 for F(2,3), 36 for F(4,3)) and each
// group g:
//   M[pos][t][g·Cout/g + j] = Σ_{ci<Cin/g} V[pos][t][g·Cin/g + ci] · U[g][pos][ci][j]
// V: row-major P × C_in per position (from winograd_f{23,43}_input.wgsl); U = G w Gᵀ packed on the
// host as vec4 `[g][pos][ci][cog_pad/4]`; M: row-major P × C_out per position.
// Same tiling as conv_gemm.wgsl: 16×16 invocations, 64×64 tile, 4×4 per invocation, K slices
// of 16 staged in workgroup memory.
//
// Bindings (group 0): 0 params (uniform WinoParams), 1 v (read), 2 u (read, vec4), 3 m
// (read_write). Workgroup: (16, 16). Grid: one workgroup per (row tile, column tile, group,
// position), flattened and folded into x·y.

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

@group(0) @binding(0) var<uniform> p: WinoParams;
@group(0) @binding(1) var<storage, read> v: array<f32>;
@group(0) @binding(2) var<storage, read> u: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;

var<workgroup> a_tile: array<vec4<f32>, 256>;
var<workgroup> b_tile: array<vec4<f32>, 256>;

fn store(row: u32, col0: u32, base: u32, val: vec4<f32>) {
    if (row >= p.tiles) {
        return;
    }
    for (var l = 0u; l < 4u; l++) {
        if (col0 + l < p.cog) {
            m[base + row * p.out_c + col0 + l] = val[l];
        }
    }
}

fn tile_invocation(tile: u32, li: u32) {
    let mt = tile % p.m_tiles;
    var rest = tile / p.m_tiles;
    let nt = rest % p.n_tiles;
    rest = rest / p.n_tiles;
    let g = rest % p.groups;
    let pos = rest / p.groups;
    let ncb = p.cog_pad / 4u;
    let v_base = pos * p.tiles * p.cin + g * p.cig;
    let u_base = (g * p.positions + pos) * p.cig * ncb;

    let a_kk = li % BK;
    let a_mq = li / BK;
    let b_kk = li / 16u;
    let b_col = nt * (BN / 4u) + li % 16u;
    let tx = li % 16u;
    let ty = li / 16u;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);

    for (var k0 = 0u; k0 < p.cig; k0 += BK) {
        let k = k0 + a_kk;
        var a = vec4<f32>(0.0);
        if (k < p.cig) {
            for (var i = 0u; i < 4u; i++) {
                let row = mt * BM + a_mq * 4u + i;
                if (row < p.tiles) {
                    a[i] = v[v_base + row * p.cin + k];
                }
            }
        }
        a_tile[a_kk * 16u + a_mq] = a;
        let kb = k0 + b_kk;
        var b = vec4<f32>(0.0);
        if (kb < p.cig && b_col < ncb) {
            b = u[u_base + kb * ncb + b_col];
        }
        b_tile[li] = b;
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let av = a_tile[kk * 16u + ty];
            let bv = b_tile[kk * 16u + tx];
            acc0 += av.x * bv;
            acc1 += av.y * bv;
            acc2 += av.z * bv;
            acc3 += av.w * bv;
        }
        workgroupBarrier();
    }

    let col = nt * (BN / 4u) + tx;
    if (col < ncb) {
        let base = pos * p.tiles * p.out_c + g * p.cog;
        let r0 = mt * BM + ty * 4u;
        store(r0, col * 4u, base, acc0);
        store(r0 + 1u, col * 4u, base, acc1);
        store(r0 + 2u, col * 4u, base, acc2);
        store(r0 + 3u, col * 4u, base, acc3);
    }
}
