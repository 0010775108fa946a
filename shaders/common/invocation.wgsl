// common/invocation.wgsl — the entry point of the kernels that run one invocation per element.
//
// Workgroups of 64 invocations; the grid is folded into x·y (rows of `num_workgroups.x`
// workgroups) because one dimension holds at most 65535, so invocation `li` of workgroup `wg`
// handles element idx = (wg.y·nwg.x + wg.x)·64 + li. Elements idx ≥ p.total return at once.
// The kernel defines its uniform `p` (with a `total` field) and `fn invocation(idx: u32)`.

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
    invocation(idx);
}
