// conv_gemm.wgsl — workgroup-tiled implicit GEMM convolution (the workhorse for 16–2560 channels).
//
// Per group g the convolution is a GEMM  Y[m][j] = Σ_k A[m][k] · B[k][j]  with
//   m = (n, oy, ox) an output pixel            (M = N·Ho·Wo rows),
//   j an output channel of the group           (N = Cout/g columns),
//   k = tap·(Cin/g) + ci, tap = ky·K + kx      (K = K²·Cin/g),
//   A[m][k] = x[n, oy·s+ky−p, ox·s+kx−p, g·Cin/g + ci]  (gathered on the fly, zero outside),
//   B[k][j] = w[g][tap][ci][j]                 (packed once on the host).
// A workgroup of 16×16 invocations computes a 64×64 tile of Y; every invocation a 4×4 register
// block (4 pixels × 4 channels, four vec4 accumulators). The K loop stages a 16-deep slice of A
// (64 pixels) and of B (64 channels) in workgroup memory (2 × 4 KiB), two barriers per slice.
// A loads run along ci (contiguous in NHWC) across neighbouring invocations; B loads are vec4.
// Epilogue: + bias, ReLU, store; lanes ≥ out_c of each pixel are zeroed by column tile 0 of group 0.
//
// Bindings (group 0): 0 params, 1 x (read), 2 w (read, vec4 [g][K][cog_pad/4]), 3 bias (read,
// vec4 [g][cog_pad/4]), 4 y (read_write). Workgroup: (16, 16). Grid: one workgroup per
// (row tile, column tile, group), flattened and folded into x·y. Override: KSIZE (1 or 3).

override KSIZE: u32 = 3u;

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

// a_tile[kk·16 + mq] = A[m0 + 4·mq .. +4][k0 + kk]; b_tile[kk·16 + nq] = B[k0 + kk][n0 + 4·nq .. +4].
var<workgroup> a_tile: array<vec4<f32>, 256>;
var<workgroup> b_tile: array<vec4<f32>, 256>;

fn tile_invocation(tile: u32, li: u32) {
    let mt = tile % p.m_tiles;
    let rest = tile / p.m_tiles;
    let nt = rest % p.n_tiles;
    let g = rest / p.n_tiles;
    let mm = p.batch * p.out_h * p.out_w;
    let kk_len = KSIZE * KSIZE * p.cig;
    let ncb = p.cog_pad / 4u;

    // The A loader: invocation li fills a_tile[kk·16 + mq] for kk = li % 16, mq = li / 16,
    // i.e. 4 pixels m0 + 4·mq + i at one reduction index. Their input origins are fixed.
    let a_kk = li % BK;
    let a_mq = li / BK;
    var row_n: array<u32, 4>;
    var row_y: array<i32, 4>;
    var row_x: array<i32, 4>;
    var row_ok: array<bool, 4>;
    for (var i = 0u; i < 4u; i++) {
        let m = mt * BM + a_mq * 4u + i;
        let ox = m % p.out_w;
        let t = m / p.out_w;
        row_ok[i] = m < mm;
        row_n[i] = t / p.out_h;
        row_y[i] = i32((t % p.out_h) * p.stride) - i32(p.pad);
        row_x[i] = i32(ox * p.stride) - i32(p.pad);
    }
    // The B loader: invocation li fills b_tile[li] = B[k0 + li / 16][n0 + 4·(li % 16) ..].
    let b_kk = li / 16u;
    let b_nq = li % 16u;
    let b_col = nt * (BN / 4u) + b_nq;

    let tx = li % 16u;
    let ty = li / 16u;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);

    for (var k0 = 0u; k0 < kk_len; k0 += BK) {
        let k = k0 + a_kk;
        var a = vec4<f32>(0.0);
        if (k < kk_len) {
            let tap = k / p.cig;
            let ci = k % p.cig;
            let ky = i32(tap / KSIZE);
            let kx = i32(tap % KSIZE);
            for (var i = 0u; i < 4u; i++) {
                let iy = row_y[i] + ky;
                let ix = row_x[i] + kx;
                if (row_ok[i] && iy >= 0 && iy < i32(p.in_h) && ix >= 0 && ix < i32(p.in_w)) {
                    let off = ((row_n[i] * p.in_h + u32(iy)) * p.in_w + u32(ix)) * p.in_cs;
                    a[i] = x[p.in_base + off + g * p.cig + ci];
                }
            }
        }
        a_tile[a_kk * 16u + a_mq] = a;
        let kb = k0 + b_kk;
        var b = vec4<f32>(0.0);
        if (kb < kk_len && b_col < ncb) {
            b = w[(g * kk_len + kb) * ncb + b_col];
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
    let m0 = mt * BM + ty * 4u;
    if (col < ncb) {
        let bv = bias[g * ncb + col];
        store_pixel(m0, g, col * 4u, acc0 + bv);
        store_pixel(m0 + 1u, g, col * 4u, acc1 + bv);
        store_pixel(m0 + 2u, g, col * 4u, acc2 + bv);
        store_pixel(m0 + 3u, g, col * 4u, acc3 + bv);
    }
    if (g == 0u && nt == 0u && tx == 0u) {
        for (var i = 0u; i < 4u; i++) {
            if (m0 + i < mm) {
                for (var c = p.out_c; c < p.out_cs; c++) {
                    y[p.out_base + (m0 + i) * p.out_cs + c] = 0.0;
                }
            }
        }
    }
}
