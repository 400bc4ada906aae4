/*
 * Variadic libc entry points, which stable Rust cannot define. Each one
 * collects its arguments the way libc does and forwards to an `ldguard_*`
 * function in the Rust library, which decides and calls the real function.
 * Nothing here allocates or takes a lock.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

#define EXPORT __attribute__((visibility("default")))

/* Which entry point a forwarded open-family call came through. */
enum { LDG_OPEN = 0, LDG_OPEN64 = 1, LDG_OPENAT = 2, LDG_OPENAT64 = 3 };
/* Which execl-family entry point. */
enum { LDG_EXECL = 0, LDG_EXECLP = 1, LDG_EXECLE = 2 };

extern int ldguard_open(int which, int dirfd, const char *path, int flags, unsigned int mode);
extern int ldguard_execl(int which, const char *path, char *const argv[], char *const envp[]);
extern long ldguard_syscall(long nr, long a1, long a2, long a3, long a4, long a5, long a6);
extern long ldguard_ptrace(int request, pid_t pid, void *addr, void *data);
extern long ldguard_keyctl(int op, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5);
extern void *ldguard_clone_gate(int flags);

extern char **environ;

/* The mode argument exists only when the flags create a file (open(2)). */
static int takes_mode(int flags) {
#ifdef O_TMPFILE
    if ((flags & O_TMPFILE) == O_TMPFILE)
        return 1;
#endif
    return (flags & O_CREAT) != 0;
}

#define MODE_ARG(flags, last, mode)              \
    do {                                         \
        if (takes_mode(flags)) {                 \
            va_list ap;                          \
            va_start(ap, last);                  \
            mode = va_arg(ap, unsigned int);     \
            va_end(ap);                          \
        }                                        \
    } while (0)

/*
 * open, open64, openat, openat64: the calls every program makes most. On
 * x86-64 and AArch64 Linux a variadic argument travels in the same register
 * as a named one, so these are register moves and a jump (a C variadic
 * function spills every argument register first): the optional mode is
 * whatever the register holds, and ldguard_open, like libc, reads it only
 * when the flags create a file.
 */
#if defined(__x86_64__)
#define OPEN_STUB(name, which)                                           \
    __asm__(".text\n"                                                    \
            ".globl " #name "\n"                                         \
            ".type " #name ", @function\n" #name ":\n"                   \
            "    mov %edx, %r8d\n"  /* mode */                           \
            "    mov %esi, %ecx\n"  /* flags */                          \
            "    mov %rdi, %rdx\n"  /* path */                           \
            "    mov $-100, %esi\n" /* AT_FDCWD */                       \
            "    mov $" #which ", %edi\n"                                \
            "    jmp ldguard_open@PLT\n"                                 \
            ".size " #name ", .-" #name "\n")
#define OPENAT_STUB(name, which)                                         \
    __asm__(".text\n"                                                    \
            ".globl " #name "\n"                                         \
            ".type " #name ", @function\n" #name ":\n"                   \
            "    mov %ecx, %r8d\n" /* mode */                            \
            "    mov %edx, %ecx\n" /* flags */                           \
            "    mov %rsi, %rdx\n" /* path */                            \
            "    mov %edi, %esi\n" /* dirfd */                           \
            "    mov $" #which ", %edi\n"                                \
            "    jmp ldguard_open@PLT\n"                                 \
            ".size " #name ", .-" #name "\n")
#elif defined(__aarch64__)
#define OPEN_STUB(name, which)                                           \
    __asm__(".text\n"                                                    \
            ".globl " #name "\n"                                         \
            ".type " #name ", %function\n" #name ":\n"                   \
            "    mov w4, w2\n"                                           \
            "    mov w3, w1\n"                                           \
            "    mov x2, x0\n"                                           \
            "    mov w1, #-100\n"                                        \
            "    mov w0, #" #which "\n"                                  \
            "    b ldguard_open\n"                                       \
            ".size " #name ", .-" #name "\n")
#define OPENAT_STUB(name, which)                                         \
    __asm__(".text\n"                                                    \
            ".globl " #name "\n"                                         \
            ".type " #name ", %function\n" #name ":\n"                   \
            "    mov w4, w3\n"                                           \
            "    mov w3, w2\n"                                           \
            "    mov x2, x1\n"                                           \
            "    mov w1, w0\n"                                           \
            "    mov w0, #" #which "\n"                                  \
            "    b ldguard_open\n"                                       \
            ".size " #name ", .-" #name "\n")
#endif

#ifdef OPEN_STUB
/* The numbers are LDG_OPEN, LDG_OPEN64, LDG_OPENAT, LDG_OPENAT64. */
_Static_assert(LDG_OPEN == 0 && LDG_OPEN64 == 1 && LDG_OPENAT == 2 && LDG_OPENAT64 == 3,
               "the open stubs pass these numbers");
_Static_assert(AT_FDCWD == -100, "the open stubs pass AT_FDCWD as -100");
OPEN_STUB(open, 0);
OPEN_STUB(open64, 1);
OPENAT_STUB(openat, 2);
OPENAT_STUB(openat64, 3);
#else
EXPORT int open(const char *path, int flags, ...) {
    unsigned int mode = 0;
    MODE_ARG(flags, flags, mode);
    return ldguard_open(LDG_OPEN, AT_FDCWD, path, flags, mode);
}

EXPORT int open64(const char *path, int flags, ...) {
    unsigned int mode = 0;
    MODE_ARG(flags, flags, mode);
    return ldguard_open(LDG_OPEN64, AT_FDCWD, path, flags, mode);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...) {
    unsigned int mode = 0;
    MODE_ARG(flags, flags, mode);
    return ldguard_open(LDG_OPENAT, dirfd, path, flags, mode);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...) {
    unsigned int mode = 0;
    MODE_ARG(flags, flags, mode);
    return ldguard_open(LDG_OPENAT64, dirfd, path, flags, mode);
}
#endif

/*
 * glibc's public aliases of open/open64 (ordinary dynamic symbols that
 * reach the same system call): checked and performed as open/open64.
 */
EXPORT int __open(const char *path, int flags, ...) {
    unsigned int mode = 0;
    MODE_ARG(flags, flags, mode);
    return ldguard_open(LDG_OPEN, AT_FDCWD, path, flags, mode);
}

EXPORT int __open64(const char *path, int flags, ...) {
    unsigned int mode = 0;
    MODE_ARG(flags, flags, mode);
    return ldguard_open(LDG_OPEN64, AT_FDCWD, path, flags, mode);
}

EXPORT int __open_nocancel(const char *path, int flags, ...) {
    unsigned int mode = 0;
    MODE_ARG(flags, flags, mode);
    return ldguard_open(LDG_OPEN, AT_FDCWD, path, flags, mode);
}

EXPORT int __open64_nocancel(const char *path, int flags, ...) {
    unsigned int mode = 0;
    MODE_ARG(flags, flags, mode);
    return ldguard_open(LDG_OPEN64, AT_FDCWD, path, flags, mode);
}

/*
 * execl*: the argument list ends with a NULL (and, for execle, is followed by
 * envp). Count first, then copy into a stack array, as glibc does.
 */
static int count_args(const char *arg, va_list ap) {
    int n = 1;
    while (arg != NULL) {
        arg = va_arg(ap, const char *);
        n++;
    }
    return n; /* including the terminating NULL */
}

#define COLLECT_ARGV(arg, argv, envp, want_envp)                   \
    va_list ap;                                                    \
    va_start(ap, arg);                                             \
    int argc_ = count_args(arg, ap);                               \
    va_end(ap);                                                    \
    const char *argv[argc_];                                       \
    argv[0] = arg;                                                 \
    va_start(ap, arg);                                             \
    for (int i_ = 1; i_ < argc_; i_++)                             \
        argv[i_] = va_arg(ap, const char *);                       \
    if (want_envp)                                                 \
        envp = va_arg(ap, char *const *);                          \
    va_end(ap)

EXPORT int execl(const char *path, const char *arg, ...) {
    char *const *envp = environ;
    COLLECT_ARGV(arg, argv, envp, 0);
    return ldguard_execl(LDG_EXECL, path, (char *const *)argv, envp);
}

EXPORT int execlp(const char *file, const char *arg, ...) {
    char *const *envp = environ;
    COLLECT_ARGV(arg, argv, envp, 0);
    return ldguard_execl(LDG_EXECLP, file, (char *const *)argv, envp);
}

EXPORT int execle(const char *path, const char *arg, ...) {
    char *const *envp = NULL;
    COLLECT_ARGV(arg, argv, envp, 1);
    return ldguard_execl(LDG_EXECLE, path, (char *const *)argv, envp);
}

/* syscall(2): the kernel takes at most six arguments; libc reads six too. */
EXPORT long syscall(long nr, ...) {
    va_list ap;
    va_start(ap, nr);
    long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
    long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
    va_end(ap);
    return ldguard_syscall(nr, a1, a2, a3, a4, a5, a6);
}

/* glibc declares ptrace(enum __ptrace_request, ...) and reads three more. */
EXPORT long ptrace(int request, ...) {
    va_list ap;
    va_start(ap, request);
    pid_t pid = va_arg(ap, pid_t);
    void *addr = va_arg(ap, void *);
    void *data = va_arg(ap, void *);
    va_end(ap);
    return ldguard_ptrace(request, pid, addr, data);
}

/* libkeyutils: long keyctl(int operation, ...), up to four more words. */
EXPORT long keyctl(int op, ...) {
    va_list ap;
    va_start(ap, op);
    unsigned long a2 = va_arg(ap, unsigned long), a3 = va_arg(ap, unsigned long);
    unsigned long a4 = va_arg(ap, unsigned long), a5 = va_arg(ap, unsigned long);
    va_end(ap);
    return ldguard_keyctl(op, a2, a3, a4, a5);
}

/*
 * clone(fn, stack, flags, arg, ...): up to three more (parent_tid, tls,
 * child_tid), read as glibc's assembly does. Namespace flags need what
 * unshare needs; the gate returns the next clone or NULL (errno set).
 */
typedef int (*clone_fn)(int (*)(void *), void *, int, void *, ...);

static int checked_clone(int (*fn)(void *), void *stack, int flags, void *arg, va_list ap) {
    pid_t *ptid = va_arg(ap, pid_t *);
    void *tls = va_arg(ap, void *);
    pid_t *ctid = va_arg(ap, pid_t *);
    clone_fn real = (clone_fn)ldguard_clone_gate(flags);
    if (real == NULL)
        return -1;
    return real(fn, stack, flags, arg, ptid, tls, ctid);
}

EXPORT int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...) {
    va_list ap;
    va_start(ap, arg);
    int r = checked_clone(fn, stack, flags, arg, ap);
    va_end(ap);
    return r;
}

EXPORT int __clone(int (*fn)(void *), void *stack, int flags, void *arg, ...) {
    va_list ap;
    va_start(ap, arg);
    int r = checked_clone(fn, stack, flags, arg, ap);
    va_end(ap);
    return r;
}

/*
 * dlopen: the loader searches relative to its caller (DT_RPATH, DT_RUNPATH,
 * $ORIGIN), which it finds from dlopen's return address. So the check runs
 * first and the real dlopen is entered with a jump, not a call: it sees the
 * program's return address, exactly as without the library. The check
 * returns the file name to load: the caller's, or, when drift denies it, a
 * name that cannot exist, so that dlopen fails with an ordinary dlerror().
 */
extern const char *ldguard_dlopen_check(const char *file, int mode);
extern void *ldguard_dlopen_next(void);

#if defined(__x86_64__)
__asm__(".text\n"
        ".globl dlopen\n"
        ".type dlopen, @function\n"
        "dlopen:\n"
        "    push %rsi\n"                       /* mode; rsp is 16-aligned + 8 */
        "    sub $16, %rsp\n"                   /* slot for the file; aligned */
        "    call ldguard_dlopen_check@PLT\n"
        "    mov %rax, (%rsp)\n"
        "    call ldguard_dlopen_next@PLT\n"
        "    mov (%rsp), %rdi\n"
        "    add $16, %rsp\n"
        "    pop %rsi\n"
        "    test %rax, %rax\n"
        "    jz 1f\n"
        "    jmp *%rax\n"
        "1:  xor %eax, %eax\n"
        "    ret\n"
        ".size dlopen, .-dlopen\n");
#elif defined(__aarch64__)
__asm__(".text\n"
        ".globl dlopen\n"
        ".type dlopen, %function\n"
        "dlopen:\n"
        "    stp x29, x30, [sp, #-32]!\n"
        "    mov x29, sp\n"
        "    str x1, [sp, #16]\n"
        "    bl ldguard_dlopen_check\n"
        "    str x0, [sp, #24]\n"
        "    bl ldguard_dlopen_next\n"
        "    mov x16, x0\n"
        "    ldr x0, [sp, #24]\n"
        "    ldr x1, [sp, #16]\n"
        "    ldp x29, x30, [sp], #32\n"
        "    cbz x16, 1f\n"
        "    br x16\n"
        "1:  mov x0, #0\n"
        "    ret\n"
        ".size dlopen, .-dlopen\n");
#else
/* Elsewhere the real dlopen sees this function as its caller. */
EXPORT void *dlopen(const char *file, int mode) {
    const char *use = ldguard_dlopen_check(file, mode);
    void *(*next)(const char *, int) = (void *(*)(const char *, int))ldguard_dlopen_next();
    return next ? next(use, mode) : NULL;
}
#endif
