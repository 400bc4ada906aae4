/*
 * libc functions the library's precompiled Rust standard library calls
 * through a GOT slot (`call *f@GOTPCREL(%rip)`): the loader fills each
 * slot at load time with a symbol lookup through the global scope, ~650
 * instructions in every process, whether or not the function is ever
 * called. The link (crates/preload/build.rs) sends those references to
 * `__wrap_f` here (`--wrap`), a jump through the PLT to libc's `f`
 * (`__real_f`), which glibc binds on the first call instead (lazy binding
 * is safe in signal handlers and forked children; the library is linked
 * `-z lazy`). Listed: functions a `disabled` process does not call at
 * start-up, none of them weak (a weak reference is tested for NULL first,
 * which a local stub would always pass) except in the glibc 2.34-baseline
 * build, where libc is known to define them. Those an enforce process calls at
 * start-up (calloc, clock_gettime, close, memcmp, posix_memalign, pread64,
 * pthread_key_create) cost it a lazy binding instead of a lookup at load,
 * measured ~300 instructions less each; its forked children inherit them
 * bound. Those every process calls (malloc, memcpy, getenv, ...) stay
 * bound at load.
 *
 * x86-64 glibc only: on AArch64 std calls libc through the PLT already,
 * and musl binds every symbol at load whatever the call form.
 */
#if defined(__x86_64__) /* built for x86-64 glibc only (crates/preload/build.rs) */
#define LAZY(name)                                                       \
    __asm__(".text\n"                                                    \
            ".globl __wrap_" #name "\n"                                  \
            ".hidden __wrap_" #name "\n"                                 \
            ".type __wrap_" #name ", @function\n"                        \
            "__wrap_" #name ":\n"                                        \
            "    jmp __real_" #name "@PLT\n"                             \
            ".size __wrap_" #name ", .-__wrap_" #name "\n");
#ifdef LDGUARD_GLIBC_2_34
#define LAZY_2_34(name) LAZY(name)
#else
#define LAZY_2_34(name)
#endif
#include "lazy_libc.h"
#endif
