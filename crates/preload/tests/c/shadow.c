/* A program's own LD_PRELOAD library placed before ldguard's: its open
 * functions go straight to the kernel, so ldguard's hooks never run. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The syscall instruction itself: libc's syscall() is interposed too. */
static int raw(int dirfd, const char *path, int flags, va_list ap) {
    mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
    long rc;
    register long r10 __asm__("r10") = (long)mode;
    __asm__ volatile("syscall"
                     : "=a"(rc)
                     : "a"((long)SYS_openat), "D"((long)dirfd), "S"(path), "d"((long)flags),
                       "r"(r10)
                     : "rcx", "r11", "memory");
    if (rc < 0) {
        errno = (int)-rc;
        return -1;
    }
    return (int)rc;
}

int open(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    int fd = raw(AT_FDCWD, path, flags, ap);
    va_end(ap);
    return fd;
}

int open64(const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    int fd = raw(AT_FDCWD, path, flags, ap);
    va_end(ap);
    return fd;
}

int openat(int dirfd, const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    int fd = raw(dirfd, path, flags, ap);
    va_end(ap);
    return fd;
}

int openat64(int dirfd, const char *path, int flags, ...) {
    va_list ap;
    va_start(ap, flags);
    int fd = raw(dirfd, path, flags, ap);
    va_end(ap);
    return fd;
}
