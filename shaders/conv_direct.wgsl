// conv_direct.wgsl — register-tiled direct convolution, no workgroup memory.
//
// Each invocation computes a 4 × 4 register block: 4 neighbouring output pixels of one row
// (ox = 4·qx + i) × 4 output channels of one group (j = 4·c4 + l), as four vec4 accumulators:
//   acc[i] += x[n, iy, ix_i, g·Cin/g + ci] · w4[g][tap][ci][c4]        (one vec4 FMA)
// so each weight vec4 load feeds 4 FMAs and each input load feeds a 4-channel FMA.
// The channel block is the fastest-varying index of the grid, so neighbouring invocations read
// the same input pixels (cache broadcast) and consecutive weight vec4s.
//
// Layout: as conv_naive.wgsl (NHWC f32, channel strides padded to 4, lanes ≥ out_c zeroed by the
// invocations with channel block 0 of group 0). Weights `[g][tap][ci][cog_pad]` read as vec4.
// Bindings (group 0): 0 params, 1 x (read), 2 w (read, vec4), 3 bias (read, vec4 [g][cog_pad/4]),
// 4 y (read_write). Workgroup: 64; 1-D grid over (pixel quad, group, channel block) folded into
// x·y. Override: KSIZE (1 or 3).

override KSIZE: u32 = 3u;

fn store(pix: u32, valid: bool, o0: u32, j0: u32, v: vec4<f32>) {
    if (!valid) {
        return;
    }
    let base = p.out_base + pix * p.out_cs + o0;
    store_lanes(base, j0, v);
}

fn zero_pad_lanes(pix: u32, valid: bool) {
    if (!valid) {
        return;
    }
    for (var c = p.out_c; c < p.out_cs; c++) {
        y[p.out_base + pix * p.out_cs + c] = 0.0;
    }
}

fn invocation(idx: u32) {
    let ncb = p.cog_pad / 4u;
    let blocks = p.groups * ncb;
    let cb = idx % blocks;
    let g = cb / ncb;
    let c4 = cb % ncb;
    let quads = (p.out_w + 3u) / 4u;
    let q = idx / blocks;
    let qx = q % quads;
    let row = q / quads;
    let oy = row % p.out_h;
    let n = row / p.out_h;
    let ox0 = qx * 4u;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var ky = 0u; ky < KSIZE; ky++) {
        let iy = i32(oy * p.stride + ky) - i32(p.pad);
        if (iy < 0 || iy >= i32(p.in_h)) {
            continue;
        }
        let row_base = p.in_base + (n * p.in_h + u32(iy)) * p.in_w;
        for (var kx = 0u; kx < KSIZE; kx++) {
            // Input columns of the four pixels; a column outside [0, in_w) reads zero.
            let ix0 = i32((ox0 + 0u) * p.stride + kx) - i32(p.pad);
            let ix1 = i32((ox0 + 1u) * p.stride + kx) - i32(p.pad);
            let ix2 = i32((ox0 + 2u) * p.stride + kx) - i32(p.pad);
            let ix3 = i32((ox0 + 3u) * p.stride + kx) - i32(p.pad);
            let v0 = ix0 >= 0 && ix0 < i32(p.in_w);
            let v1 = ix1 >= 0 && ix1 < i32(p.in_w);
            let v2 = ix2 >= 0 && ix2 < i32(p.in_w);
            let v3 = ix3 >= 0 && ix3 < i32(p.in_w);
            let xb0 = (row_base + select(0u, u32(ix0), v0)) * p.in_cs + g * p.cig;
            let xb1 = (row_base + select(0u, u32(ix1), v1)) * p.in_cs + g * p.cig;
            let xb2 = (row_base + select(0u, u32(ix2), v2)) * p.in_cs + g * p.cig;
            let xb3 = (row_base + select(0u, u32(ix3), v3)) * p.in_cs + g * p.cig;
            let wb = ((g * KSIZE * KSIZE + ky * KSIZE + kx) * p.cig) * ncb + c4;
            for (var ci = 0u; ci < p.cig; ci++) {
                let wv = w[wb + ci * ncb];
                acc0 += select(0.0, x[xb0 + ci], v0) * wv;
                acc1 += select(0.0, x[xb1 + ci], v1) * wv;
                acc2 += select(0.0, x[xb2 + ci], v2) * wv;
                acc3 += select(0.0, x[xb3 + ci], v3) * wv;
            }
        }
    }
    let b = bias[g * ncb + c4];
    let o0 = g * p.cog + c4 * 4u;
    let j0 = c4 * 4u;
    let pix0 = (n * p.out_h + oy) * p.out_w + ox0;
    store(pix0, ox0 < p.out_w, o0, j0, acc0 + b);
    store(pix0 + 1u, ox0 + 1u < p.out_w, o0, j0, acc1 + b);
    store(pix0 + 2u, ox0 + 2u < p.out_w, o0, j0, acc2 + b);
    store(pix0 + 3u, ox0 + 3u < p.out_w, o0, j0, acc3 + b);
    if (cb == 0u) {
        zero_pad_lanes(pix0, ox0 < p.out_w);
        zero_pad_lanes(pix0 + 1u, ox0 + 1u < p.out_w);
        zero_pad_lanes(pix0 + 2u, ox0 + 2u < p.out_w);
        zero_pad_lanes(pix0 + 3u, ox0 + 3u < p.out_w);
    }
}
