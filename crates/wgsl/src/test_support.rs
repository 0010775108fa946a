//! Test and benchmark support (feature `test-support`, on in this crate's own tests): the one
//! GPU context a test binary shares, and a visible `SKIP` line where there is none.

use crate::{ENV_REQUIRE_GPU, GpuContext, GpuContextOptions};
use std::io::Write;

/// The one GPU context that a process's tests and benchmarks share, built on first use from
/// [`GpuContextOptions::from_env`] (its adapter is printed once). Without an adapter each call
/// prints `SKIP <test>: no adapter (<reason>)` straight to the process's stderr, past the test
/// harness's output capture, so a passing run shows what it skipped (`<test>` is the name of
/// the calling test's thread, which the harness names after the test) and returns `None` —
/// unless [`ENV_REQUIRE_GPU`] is `1`, when it panics with the reason, so a CI run cannot skip
/// the GPU tests.
pub fn shared_context() -> Option<&'static GpuContext> {
    static CONTEXT: std::sync::OnceLock<Result<GpuContext, String>> = std::sync::OnceLock::new();
    let ctx = CONTEXT.get_or_init(|| {
        let ctx = pollster::block_on(GpuContext::new(&GpuContextOptions::from_env()))
            .map_err(|e| e.to_string());
        if let Ok(ctx) = &ctx {
            let _ = writeln!(std::io::stderr(), "GPU tests run on:\n{}", ctx.summary());
        }
        ctx
    });
    match ctx {
        Ok(ctx) => Some(ctx),
        Err(e) => {
            assert!(
                std::env::var(ENV_REQUIRE_GPU).as_deref() != Ok("1"),
                "{ENV_REQUIRE_GPU}=1 but no GPU context: {e}"
            );
            let thread = std::thread::current();
            let test = thread.name().unwrap_or("<unnamed>");
            let _ = writeln!(
                std::io::stderr(),
                "SKIP {test}: no adapter ({e}; set {ENV_REQUIRE_GPU}=1 to fail instead)"
            );
            None
        }
    }
}
