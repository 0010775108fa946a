//! The subcommands, one module each: arguments (clap derive) and the function that runs them.

pub mod bench;
pub mod convert;
pub mod export;
pub mod fuse;
pub mod gpu;
pub mod info;
pub mod layers;
pub mod run;

use std::path::Path;
use std::time::Duration;

/// True when both paths name the same existing file.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `12.3 ms`, `4.56 s`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(Duration::from_micros(12_345)), "12.3 ms");
        assert_eq!(duration(Duration::from_millis(4_560)), "4.56 s");
    }

    #[test]
    fn same_files() {
        assert!(same_file(
            Path::new("Cargo.toml"),
            Path::new("./src/../Cargo.toml")
        ));
        assert!(!same_file(
            Path::new("Cargo.toml"),
            Path::new("src/main.rs")
        ));
        assert!(!same_file(
            Path::new("Cargo.toml"),
            Path::new("no-such-file")
        ));
    }
}
