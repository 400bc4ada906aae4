/*
 * root_escape: a new root reached through a symlink swapped while chroot
 * runs (swap.h swaps DIR/sw between PUB and DENIED). A chroot into DENIED
 * gives the files a rule protects below it other names, which the
 * library must refuse; into PUB it is free. Each attempt is a forked
 * child (a process cannot leave its new root), which reports where it
 * landed by the marker file each side holds.
 *
 *   race DIR PUB DENIED N   prints "denied-reached W ok K refused R"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "swap.h"

enum { PUB_ROOT = 10, DENIED_ROOT = 11, REFUSED = 12, FAILED = 13 };

static int attempt(const char *sw, int by_syscall) {
    pid_t pid = fork();
    if (pid == 0) {
        long r = by_syscall ? syscall(SYS_chroot, sw) : chroot(sw);
        if (r != 0)
            _exit(errno == EACCES ? REFUSED : FAILED);
        _exit(access("/denied-marker", F_OK) == 0 ? DENIED_ROOT : PUB_ROOT);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return FAILED;
    return WEXITSTATUS(status);
}

int main(int argc, char **argv) {
    if (argc != 7 || strcmp(argv[1], "race") != 0) {
        fprintf(stderr, "usage: root_escape race chroot|sys-chroot DIR PUB DENIED N\n");
        return 2;
    }
    int by_syscall = strcmp(argv[2], "sys-chroot") == 0;
    char sw[4096];
    snprintf(sw, sizeof sw, "%s/sw", argv[3]);
    swap_start(argv[3], argv[4], argv[5]);
    long n = atol(argv[6]), reached = 0, ok = 0, refused = 0, failed = 0;
    for (long i = 0; i < n; i++) {
        switch (attempt(sw, by_syscall)) {
        case DENIED_ROOT: reached++; break;
        case PUB_ROOT: ok++; break;
        case REFUSED: refused++; break;
        default: failed++;
        }
    }
    swap_end();
    printf("denied-reached %ld ok %ld refused %ld failed %ld\n", reached, ok, refused, failed);
    return 0;
}
