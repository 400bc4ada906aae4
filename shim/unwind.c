/*
 * One unwinder per process: the library's `_Unwind_*` calls go to the
 * system's libgcc_s.so.1, the unwinder glibc itself loads to cancel a
 * thread (pthread_cancel, pthread_exit).
 *
 * Why: the shipped library is linked by zig, which would otherwise link a
 * private copy of LLVM's libunwind into it. A thread cancelled while in a
 * hook (a blocking open, connect, ...) is unwound by glibc through libgcc_s,
 * which calls the personality routine of every frame on the way, ours
 * included; Rust's personality routine then asked the private unwinder
 * about a context made by libgcc_s, and crashed the program. The link
 * (crates/preload/build.rs) sends every `_Unwind_X` reference of the
 * library's code to `__wrap__Unwind_X` here (`--wrap`), so both a Rust
 * panic (caught before it reaches the host) and a forced unwind through
 * our frames use libgcc_s; the private copy, if linked, is never called.
 *
 * The library resolves libgcc_s only when something unwinds: a cancellation
 * (glibc has loaded it by then, so only RTLD_NOLOAD's lookup is paid) or a
 * panic (a bug, caught at the hook). Without libgcc_s.so.1 in the image a
 * panic aborts instead of being caught, as glibc's own pthread_cancel does.
 */
#include <dlfcn.h>
#include <stdint.h>

#define UNWIND_FATAL_PHASE1_ERROR 3

struct ctx;
struct exc;
typedef int (*trace_fn)(struct ctx *, void *);

static struct {
    int (*raise)(struct exc *);
    void (*resume)(struct exc *);
    void (*delete_exception)(struct exc *);
    uintptr_t (*get_lsda)(struct ctx *);
    uintptr_t (*get_region_start)(struct ctx *);
    uintptr_t (*get_text_rel_base)(struct ctx *);
    uintptr_t (*get_data_rel_base)(struct ctx *);
    uintptr_t (*get_ip_info)(struct ctx *, int *);
    uintptr_t (*get_ip)(struct ctx *);
    void (*set_gr)(struct ctx *, int, uintptr_t);
    void (*set_ip)(struct ctx *, uintptr_t);
    int (*backtrace)(trace_fn, void *);
} gcc;

static int resolved; /* 0: not yet, 1: resolved, -1: no libgcc_s */

/* Idempotent: two threads racing here store the same pointers. */
static int resolve(void) {
    int known = __atomic_load_n(&resolved, __ATOMIC_ACQUIRE);
    if (known != 0)
        return known > 0;
    void *lib = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (!lib)
        lib = dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        __atomic_store_n(&resolved, -1, __ATOMIC_RELEASE);
        return 0;
    }
    *(void **)&gcc.raise = dlsym(lib, "_Unwind_RaiseException");
    *(void **)&gcc.resume = dlsym(lib, "_Unwind_Resume");
    *(void **)&gcc.delete_exception = dlsym(lib, "_Unwind_DeleteException");
    *(void **)&gcc.get_lsda = dlsym(lib, "_Unwind_GetLanguageSpecificData");
    *(void **)&gcc.get_region_start = dlsym(lib, "_Unwind_GetRegionStart");
    *(void **)&gcc.get_text_rel_base = dlsym(lib, "_Unwind_GetTextRelBase");
    *(void **)&gcc.get_data_rel_base = dlsym(lib, "_Unwind_GetDataRelBase");
    *(void **)&gcc.get_ip_info = dlsym(lib, "_Unwind_GetIPInfo");
    *(void **)&gcc.get_ip = dlsym(lib, "_Unwind_GetIP");
    *(void **)&gcc.set_gr = dlsym(lib, "_Unwind_SetGR");
    *(void **)&gcc.set_ip = dlsym(lib, "_Unwind_SetIP");
    *(void **)&gcc.backtrace = dlsym(lib, "_Unwind_Backtrace");
    int complete = gcc.raise && gcc.resume && gcc.delete_exception && gcc.get_lsda &&
                   gcc.get_region_start && gcc.get_text_rel_base && gcc.get_data_rel_base &&
                   gcc.get_ip_info && gcc.get_ip && gcc.set_gr && gcc.set_ip && gcc.backtrace;
    __atomic_store_n(&resolved, complete ? 1 : -1, __ATOMIC_RELEASE);
    return complete;
}

__attribute__((visibility("hidden"))) int __wrap__Unwind_RaiseException(struct exc *e) {
    return resolve() ? gcc.raise(e) : UNWIND_FATAL_PHASE1_ERROR;
}

/* Only called from a landing pad, that is after the unwinder that got
 * there called our personality routine through one of the functions
 * below: resolved by then. */
__attribute__((visibility("hidden"))) void __wrap__Unwind_Resume(struct exc *e) {
    if (!resolve())
        __builtin_trap();
    gcc.resume(e);
    __builtin_trap();
}

__attribute__((visibility("hidden"))) void __wrap__Unwind_DeleteException(struct exc *e) {
    if (resolve())
        gcc.delete_exception(e);
}

__attribute__((visibility("hidden"))) uintptr_t __wrap__Unwind_GetLanguageSpecificData(struct ctx *c) {
    return resolve() ? gcc.get_lsda(c) : 0;
}

__attribute__((visibility("hidden"))) uintptr_t __wrap__Unwind_GetRegionStart(struct ctx *c) {
    return resolve() ? gcc.get_region_start(c) : 0;
}

__attribute__((visibility("hidden"))) uintptr_t __wrap__Unwind_GetTextRelBase(struct ctx *c) {
    return resolve() ? gcc.get_text_rel_base(c) : 0;
}

__attribute__((visibility("hidden"))) uintptr_t __wrap__Unwind_GetDataRelBase(struct ctx *c) {
    return resolve() ? gcc.get_data_rel_base(c) : 0;
}

__attribute__((visibility("hidden"))) uintptr_t __wrap__Unwind_GetIPInfo(struct ctx *c, int *before) {
    return resolve() ? gcc.get_ip_info(c, before) : 0;
}

__attribute__((visibility("hidden"))) uintptr_t __wrap__Unwind_GetIP(struct ctx *c) {
    return resolve() ? gcc.get_ip(c) : 0;
}

__attribute__((visibility("hidden"))) void __wrap__Unwind_SetGR(struct ctx *c, int index, uintptr_t value) {
    if (resolve())
        gcc.set_gr(c, index, value);
}

__attribute__((visibility("hidden"))) void __wrap__Unwind_SetIP(struct ctx *c, uintptr_t ip) {
    if (resolve())
        gcc.set_ip(c, ip);
}

__attribute__((visibility("hidden"))) int __wrap__Unwind_Backtrace(trace_fn f, void *arg) {
    return resolve() ? gcc.backtrace(f, arg) : UNWIND_FATAL_PHASE1_ERROR;
}
