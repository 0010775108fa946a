// common/winograd_input.wgsl — bindings and the patch loader of the Winograd input transforms
// (winograd_f23_input, winograd_f43_input): 0 params (uniform WinoParams), 1 x (read, NHWC f32
// from element in_base on), 2 v (read_write, the transformed input).

@group(0) @binding(0) var<uniform> p: WinoParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;

// x[n, iy, ix, c], or 0 outside the image (the zero padding of the convolution).
fn load(n: u32, iy: i32, ix: i32, c: u32) -> f32 {
    if (iy < 0 || iy >= i32(p.in_h) || ix < 0 || ix >= i32(p.in_w)) {
        return 0.0;
    }
    return x[p.in_base + ((n * p.in_h + u32(iy)) * p.in_w + u32(ix)) * p.in_cs + c];
}
