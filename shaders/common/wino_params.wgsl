// common/wino_params.wgsl — the uniform of the Winograd input transforms, the transform-domain
// GEMM and the output transforms; mirrors `WinoParams` in crates/wgsl/src/conv/mod.rs (the first
// eight fields there in `IoShape`).

struct WinoParams {
    batch: u32, in_h: u32, in_w: u32, in_cs: u32,
    out_h: u32, out_w: u32, out_cs: u32, out_c: u32,
    cin: u32, cig: u32, cog: u32, cog_pad: u32,
    groups: u32, tiles_h: u32, tiles_w: u32, tiles: u32,
    in_base: u32, out_base: u32, relu: u32, total: u32,
    m_tiles: u32, n_tiles: u32, positions: u32, pad1: u32,
}

// Tile t (numbered row-major per image) of an m×m-output tiling: its image n and the output
// pixel (y, x) = (m·ty, m·tx) of its top-left corner.
struct TileOrigin {
    n: u32,
    y: u32,
    x: u32,
}

fn tile_origin(t: u32, m: u32) -> TileOrigin {
    let r = t / p.tiles_w;
    return TileOrigin(r / p.tiles_h, m * (r % p.tiles_h), m * (t % p.tiles_w));
}
