//! Builds the C shim (variadic entry points Rust cannot define) into the
//! cdylib and exports exactly the interposed symbols listed in
//! `shim/exports.map`.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let shim = manifest.join("../../shim");
    let source = shim.join("ldguard_shim.c");
    let exports = shim.join("exports.map");
    println!("cargo:rerun-if-changed={}", source.display());
    println!("cargo:rerun-if-changed={}", exports.display());

    cc::Build::new()
        .file(&source)
        .flag_if_supported("-fno-stack-protector")
        .flag_if_supported("-fvisibility=hidden")
        .warnings(true)
        .extra_warnings(true)
        // Nothing in Rust references the shim's symbols, so without
        // whole-archive the linker would drop them.
        .link_lib_modifier("+whole-archive")
        .compile("ldguard_shim");

    // Lazy binding: calls into libc through the PLT are resolved on first
    // use instead of all at load (zig's linker defaults to `-z now`). Every
    // process of an instrumented image loads this library, so the loader's
    // work is paid on every exec. scripts/build-lib also builds with
    // `-C relro-level=partial` so that Rust code calls through the PLT.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,lazy");

    // rustc writes its own version script for a cdylib; some linkers (zig's)
    // keep only the last one, so ours names every exported hook itself.
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        exports.display()
    );
}
