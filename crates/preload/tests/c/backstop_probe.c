/* What the hooks cannot see, for the kernel backstop tests. Built both
 * dynamically and with `gcc -static` (then no preloaded library runs in it
 * at all). Prints "ok" or "denied <errno name>" and exits 0 or 1.
 *
 *   read PATH      open(2)+read through libc
 *   raw-read PATH  openat through an inline `syscall` instruction
 *   exec PATH      execv
 *   uring PATH     IORING_OP_OPENAT through io_uring (liburing, which
 *                  makes its system calls with inline instructions)
 *   uring-libc PATH  the same on a ring made with libc's syscall()
 *                  (as libuv makes its rings): the hooks see the setup
 *   clone-newuser  clone(CLONE_NEWUSER) as a raw syscall instruction
 *                  (libc's syscall() is interposed, so the hooks would see it)
 *   x32-unshare    unshare(CLONE_NEWUSER) with the x32 bit set, raw
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int report(long rc, int err) {
    if (rc >= 0) {
        printf("ok\n");
        return 0;
    }
    printf("denied %s\n", strerrorname_np(err));
    return 1;
}

static long raw_openat(const char *path) {
    long rc;
    register long r10 __asm__("r10") = 0;
    __asm__ volatile("syscall"
                     : "=a"(rc)
                     : "a"((long)SYS_openat), "D"((long)AT_FDCWD), "S"(path), "d"((long)O_RDONLY),
                       "r"(r10)
                     : "rcx", "r11", "memory");
    return rc;
}

static long raw_clone(unsigned long flags) {
    long rc;
    register long r10 __asm__("r10") = 0;
    register long r8 __asm__("r8") = 0;
    __asm__ volatile("syscall"
                     : "=a"(rc)
                     : "a"((long)SYS_clone), "D"(flags), "S"(0L), "d"(0L), "r"(r10), "r"(r8)
                     : "rcx", "r11", "memory");
    return rc;
}

static int uring_open(const char *path, int through_libc) {
    struct io_uring ring;
    int rc;
    if (through_libc) {
        struct io_uring_params params;
        memset(&params, 0, sizeof params);
        int fd = (int)syscall(SYS_io_uring_setup, 4, &params);
        if (fd < 0)
            return report(-1, errno);
        rc = io_uring_queue_mmap(fd, &params, &ring);
    } else {
        rc = io_uring_queue_init(4, &ring, 0);
    }
    if (rc < 0)
        return report(-1, -rc);
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    io_uring_prep_openat(sqe, AT_FDCWD, path, O_RDONLY, 0);
    io_uring_submit(&ring);
    struct io_uring_cqe *cqe;
    io_uring_wait_cqe(&ring, &cqe);
    int res = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    io_uring_queue_exit(&ring);
    return report(res, -res);
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    const char *mode = argv[1], *path = argc > 2 ? argv[2] : "";
    if (!strcmp(mode, "read")) {
        int fd = open(path, O_RDONLY);
        char buf[64];
        if (fd >= 0 && read(fd, buf, sizeof buf) < 0)
            return report(-1, errno);
        return report(fd, errno);
    }
    if (!strcmp(mode, "raw-read")) {
        long rc = raw_openat(path);
        return report(rc, (int)-rc);
    }
    if (!strcmp(mode, "exec")) {
        char *args[] = {(char *)path, NULL};
        execv(path, args);
        return report(-1, errno);
    }
    if (!strcmp(mode, "uring"))
        return uring_open(path, 0);
    if (!strcmp(mode, "uring-libc"))
        return uring_open(path, 1);
    if (!strcmp(mode, "clone-newuser")) {
        long pid = raw_clone(CLONE_NEWUSER | SIGCHLD);
        if (pid == 0)
            _exit(0);
        int err = pid < 0 ? (int)-pid : 0;
        if (pid > 0)
            waitpid((pid_t)pid, NULL, 0);
        return report(pid, err);
    }
    if (!strcmp(mode, "x32-unshare")) {
        long rc;
        __asm__ volatile("syscall"
                         : "=a"(rc)
                         : "a"(0x40000000L | SYS_unshare), "D"((long)CLONE_NEWUSER)
                         : "rcx", "r11", "memory");
        return report(rc, (int)-rc);
    }
    return 2;
}
