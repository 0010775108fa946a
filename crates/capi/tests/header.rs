//! `include/reparam.h` is what cbindgen generates from this crate with `cbindgen.toml`.
//!
//! Regenerate it after changing the C API with
//! `REPARAM_BLESS=1 cargo test -p reparam-capi --test header`.

use std::path::Path;

/// The header cbindgen generates now.
fn generate() -> String {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml parses");
    // `with_src` parses lib.rs and the modules it declares, without running `cargo metadata`.
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut bytes = Vec::new();
    bindings.write(&mut bytes);
    String::from_utf8(bytes).expect("the header is UTF-8")
}

#[test]
fn the_checked_in_header_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../include/reparam.h");
    let generated = generate();
    if std::env::var_os("REPARAM_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write include/reparam.h");
        println!("wrote {}", path.display());
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if checked_in != generated {
        let (line, old, new) = checked_in
            .lines()
            .chain(std::iter::repeat(""))
            .zip(generated.lines().chain(std::iter::repeat("")))
            .take(checked_in.lines().count().max(generated.lines().count()))
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| (i + 1, a, b))
            // Every line equal: the files differ in line endings or the final newline.
            .unwrap_or((0, "(line endings)", "(line endings)"));
        panic!(
            "{} is not what cbindgen generates from crates/capi (first difference at line \
             {line}:\n  checked in: {old}\n  generated:  {new}\n); regenerate it with\n  \
             REPARAM_BLESS=1 cargo test -p reparam-capi --test header",
            path.display()
        );
    }
    // The declarations the C test and the crate docs rely on.
    for item in [
        "REPARAM_STATUS_OK = 0",
        "REPARAM_STATUS_PANIC",
        "typedef struct ReparamModel ReparamModel;",
        "typedef struct ReparamConvDesc {",
        "const char *reparam_last_error(void);",
        "ReparamStatus reparam_model_run(",
        "void reparam_conv3x3_free(struct ReparamConv3x3 *conv);",
    ] {
        assert!(generated.contains(item), "the header lacks `{item}`");
    }
}
