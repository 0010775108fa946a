// common/winograd_output.wgsl — bindings and the store of the Winograd output transforms
// (winograd_f23_output, winograd_f43_output): 0 params (uniform WinoParams), 1 m (read, the
// transform-domain products), 2 bias (read, [g][cog_pad]), 3 y (read_write, NHWC f32).

@group(0) @binding(0) var<uniform> p: WinoParams;
@group(0) @binding(1) var<storage, read> m: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// y[n, oy, ox, o] = relu?(val), only inside the output.
fn put(n: u32, oy: u32, ox: u32, o: u32, val: f32) {
    if (oy < p.out_h && ox < p.out_w) {
        var r = val;
        if (p.relu != 0u) {
            r = max(r, 0.0);
        }
        y[p.out_base + ((n * p.out_h + oy) * p.out_w + ox) * p.out_cs + o] = r;
    }
}
