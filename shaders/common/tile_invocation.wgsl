// common/tile_invocation.wgsl — the entry point of the workgroup-tiled GEMM kernels.
//
// Workgroups of 16×16 invocations, one workgroup per output tile; the grid is folded into x·y
// (rows of `num_workgroups.x` workgroups), so workgroup `wg` computes tile
// (wg.y·nwg.x + wg.x). Tiles ≥ p.total return at once (the whole workgroup together, so the
// kernel's barriers stay in uniform control flow). The kernel defines its uniform `p` (with a
// `total` field) and `fn tile_invocation(tile: u32, li: u32)`, li the local invocation index.

@compute @workgroup_size(16, 16)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let tile = wg.y * nwg.x + wg.x;
    if (tile >= p.total) {
        return;
    }
    tile_invocation(tile, li);
}
