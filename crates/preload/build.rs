//! Builds the C shim (variadic entry points Rust cannot define) into the
//! cdylib and exports exactly the interposed symbols listed in
//! `shim/exports.map`.

use std::path::PathBuf;

/// The unwinder functions Rust's runtime calls, sent to shim/unwind.c.
const UNWIND_FUNCTIONS: [&str; 12] = [
    "_Unwind_RaiseException",
    "_Unwind_Resume",
    "_Unwind_DeleteException",
    "_Unwind_GetLanguageSpecificData",
    "_Unwind_GetRegionStart",
    "_Unwind_GetTextRelBase",
    "_Unwind_GetDataRelBase",
    "_Unwind_GetIPInfo",
    "_Unwind_GetIP",
    "_Unwind_SetGR",
    "_Unwind_SetIP",
    "_Unwind_Backtrace",
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let shim = manifest.join("../../shim");
    let source = shim.join("ldguard_shim.c");
    let unwind = shim.join("unwind.c");
    let exports = shim.join("exports.map");
    println!("cargo:rerun-if-changed={}", source.display());
    println!("cargo:rerun-if-changed={}", unwind.display());
    println!("cargo:rerun-if-changed={}", exports.display());

    let mut build = cc::Build::new();
    // glibc unwinds cancelled threads with libgcc_s: the library's frames
    // must meet the same unwinder (shim/unwind.c). musl cancels without
    // unwinding, and Rust's musl target brings its own unwinder.
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu") {
        build.file(&unwind);
        for name in UNWIND_FUNCTIONS {
            println!("cargo:rustc-cdylib-link-arg=-Wl,--wrap={name}");
        }
    }
    // libc functions std calls through GOT slots, bound on first use
    // instead of at load (shim/lazy_libc.c says which and why).
    let lazy = shim.join("lazy_libc.c");
    let lazy_list = shim.join("lazy_libc.h");
    println!("cargo:rerun-if-changed={}", lazy.display());
    println!("cargo:rerun-if-changed={}", lazy_list.display());
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu")
        && std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64")
    {
        // scripts/build-lib names the glibc baseline it builds for.
        println!("cargo:rerun-if-env-changed=LDGUARD_GLIBC_BASELINE");
        let glibc_2_34 = std::env::var("LDGUARD_GLIBC_BASELINE").as_deref() == Ok("2.34");
        build.file(&lazy).include(&shim);
        if glibc_2_34 {
            build.define("LDGUARD_GLIBC_2_34", None);
        }
        let list = std::fs::read_to_string(&lazy_list).unwrap();
        for line in list.lines() {
            let name = match (line.strip_prefix("LAZY("), line.strip_prefix("LAZY_2_34(")) {
                (Some(rest), _) => rest,
                (None, Some(rest)) if glibc_2_34 => rest,
                _ => continue,
            };
            let name = name
                .strip_suffix(')')
                .expect("lazy_libc.h: LAZY(name) per line");
            println!("cargo:rustc-cdylib-link-arg=-Wl,--wrap={name}");
        }
    }
    build
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

    // The functions every process runs at start-up and on its first checks
    // placed together at the start of the text, so that a process (and a
    // forked child) faults in a few pages of the library's code instead of
    // a dozen scattered ones. Generated from a profile by
    // scripts/hot-text-order; optimised builds only (the shipped library).
    let hot_text = manifest.join("hot-text.ld");
    println!("cargo:rerun-if-changed={}", hot_text.display());
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-T,{}", hot_text.display());
    }

    // rustc writes its own version script for a cdylib; some linkers (zig's)
    // keep only the last one, so ours names every exported hook itself.
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        exports.display()
    );
}
