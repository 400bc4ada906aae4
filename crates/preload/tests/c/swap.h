/*
 * swap.h: the attacker's half of a race. A thread flips the symlink
 * DIR/sw between PUB and DENIED as fast as it can (a new link renamed over
 * the old one, so `sw` always exists), while the test makes its call
 * through `sw`. Set-up goes through libc's own syscall(), past any
 * interposed one, so none of it is checked.
 */
#ifndef LDGUARD_TEST_SWAP_H
#define LDGUARD_TEST_SWAP_H

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>

static long raw(long nr, long a, long b, long c, long d) {
    static long (*f)(long, ...);
    if (!f) {
        void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
        f = libc ? (long (*)(long, ...))dlsym(libc, "syscall") : NULL;
        if (!f) {
            fprintf(stderr, "swap: no libc syscall\n");
            exit(3);
        }
    }
    return f(nr, a, b, c, d);
}
#define L(x) ((long)(x))

static const char *swap_dir, *swap_pub, *swap_denied;
static volatile int swap_stop;
/* Set before swap_start: PUB and DENIED are files (in DIR's file system)
 * and DIR/sw is flipped between them by renaming a new hard link of each
 * over it (sw is always a regular file). */
static int swap_files;
static pthread_t swap_thread;

static void *swapper(void *arg) {
    (void)arg;
    char tmp_pub[4096], tmp_denied[4096], sw[4096];
    snprintf(tmp_pub, sizeof tmp_pub, "%s/sw.pub", swap_dir);
    snprintf(tmp_denied, sizeof tmp_denied, "%s/sw.denied", swap_dir);
    snprintf(sw, sizeof sw, "%s/sw", swap_dir);
    while (!swap_stop) {
        raw(SYS_unlinkat, AT_FDCWD, L(tmp_pub), 0, 0);
        if (swap_files)
            raw(SYS_link, L(swap_pub), L(tmp_pub), 0, 0);
        else
            raw(SYS_symlinkat, L(swap_pub), AT_FDCWD, L(tmp_pub), 0);
        raw(SYS_renameat, AT_FDCWD, L(tmp_pub), AT_FDCWD, L(sw));
        raw(SYS_unlinkat, AT_FDCWD, L(tmp_denied), 0, 0);
        if (swap_files)
            raw(SYS_link, L(swap_denied), L(tmp_denied), 0, 0);
        else
            raw(SYS_symlinkat, L(swap_denied), AT_FDCWD, L(tmp_denied), 0);
        raw(SYS_renameat, AT_FDCWD, L(tmp_denied), AT_FDCWD, L(sw));
    }
    return NULL;
}

/* DIR/sw -> PUB, then the swapping thread starts. */
static void swap_start(const char *dir, const char *pub, const char *denied) {
    swap_dir = dir;
    swap_pub = pub;
    swap_denied = denied;
    char sw[4096];
    snprintf(sw, sizeof sw, "%s/sw", dir);
    if (swap_files)
        raw(SYS_link, L(pub), L(sw), 0, 0);
    else
        raw(SYS_symlinkat, L(pub), AT_FDCWD, L(sw), 0);
    pthread_create(&swap_thread, NULL, swapper, NULL);
}

static void swap_end(void) {
    swap_stop = 1;
    pthread_join(swap_thread, NULL);
}

#endif
