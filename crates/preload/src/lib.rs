//! libldguard.so: interposes libc entry points in every process it is
//! preloaded into, decides each call against the policy, enforces or only
//! reports the decision, and ships events. See docs/preload.md.
//!
//! Never break the program: no panic crosses the FFI boundary (every check
//! runs under `catch_unwind`, and the release profile unwinds), errno is
//! preserved on allowed paths, calls made from inside the library are not
//! checked, and the hot path takes no lock and allocates nothing.

pub mod decide;
mod events;
mod hooks;
pub mod load;
mod os;
pub mod process;

pub use process::active::{install, Active};

/// Our own constructor initialises eagerly, so a program's `main` starts
/// with the policy in place. Other libraries' constructors may run first and
/// already call hooks; those initialise lazily through the same path.
#[used]
#[link_section = ".init_array"]
static CONSTRUCTOR: extern "C" fn() = constructor;

extern "C" fn constructor() {
    // No std printing here (Rust >= 1.81 can abort on it before main); a
    // panic inside is caught and leaves the library pass-through.
    let _ = std::panic::catch_unwind(|| {
        // Panic messages would go to the program's stderr; this library's
        // std (separate from the program's in the cdylib) stays silent
        // instead. Unit tests link the rlib into the test binary and need
        // their own panic messages.
        #[cfg(not(test))]
        std::panic::set_hook(Box::new(|_| {}));
        process::script_comm::restore();
        load::state::initialise();
    });
}
