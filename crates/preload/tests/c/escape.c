/*
 * escape: attempts to reach a denied file or program the ways an attacker
 * would when the library decides on a spelling of a path instead of the
 * object the kernel uses. Prints "ok", "err N" or a count, like probe.c.
 * Set-up steps that must not themselves be checked (building a directory
 * deeper than PATH_MAX, swapping a symlink) use raw system calls.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* libc's own syscall(), past any interposed one, so set-up is unchecked. */
static long raw(long nr, long a, long b, long c, long d) {
    static long (*f)(long, ...);
    if (!f) {
        void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
        f = libc ? (long (*)(long, ...))dlsym(libc, "syscall") : NULL;
        if (!f) {
            fprintf(stderr, "escape: no libc syscall\n");
            exit(3);
        }
    }
    return f(nr, a, b, c, d);
}
#define L(x) ((long)(x))

static int report(long r) {
    if (r < 0) {
        printf("err %d\n", errno);
    } else {
        printf("ok\n");
    }
    fflush(stdout);
    return 0;
}

/* Fills the descriptor table (close-on-exec fillers, so an exec'd program
 * starts normally): every later call that needs a descriptor gets EMFILE. */
static void fill_descriptors(void) {
    struct rlimit rl = {64, 64};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        perror("setrlimit");
        exit(3);
    }
    while (fcntl(0, F_DUPFD_CLOEXEC, 0) >= 0) {
    }
    if (errno != EMFILE) {
        perror("fill");
        exit(3);
    }
}

/* race: SW swaps between a symlink to PUB and one to SECRET in a thread
 * while the main thread opens SW N times; prints how many opens read the
 * secret and how many succeeded at all. */
static const char *g_dir, *g_pub, *g_secret;
static volatile int g_stop;

static void *swapper(void *arg) {
    (void)arg;
    char tmp_pub[4096], tmp_secret[4096], sw[4096];
    snprintf(tmp_pub, sizeof tmp_pub, "%s/sw.pub", g_dir);
    snprintf(tmp_secret, sizeof tmp_secret, "%s/sw.secret", g_dir);
    snprintf(sw, sizeof sw, "%s/sw", g_dir);
    while (!g_stop) {
        raw(SYS_unlinkat, AT_FDCWD, L(tmp_pub), 0, 0);
        raw(SYS_symlinkat, L(g_pub), AT_FDCWD, L(tmp_pub), 0);
        raw(SYS_renameat, AT_FDCWD, L(tmp_pub), AT_FDCWD, L(sw));
        raw(SYS_unlinkat, AT_FDCWD, L(tmp_secret), 0, 0);
        raw(SYS_symlinkat, L(g_secret), AT_FDCWD, L(tmp_secret), 0);
        raw(SYS_renameat, AT_FDCWD, L(tmp_secret), AT_FDCWD, L(sw));
    }
    return NULL;
}

static int race(const char *dir, const char *pub, const char *secret, long n) {
    g_dir = dir;
    g_pub = pub;
    g_secret = secret;
    char sw[4096];
    snprintf(sw, sizeof sw, "%s/sw", dir);
    raw(SYS_symlinkat, L(pub), AT_FDCWD, L(sw), 0);
    pthread_t t;
    pthread_create(&t, NULL, swapper, NULL);
    long leaked = 0, opened = 0;
    for (long i = 0; i < n; i++) {
        int fd = open(sw, O_RDONLY);
        if (fd < 0)
            continue;
        opened++;
        char buf[16] = {0};
        if (read(fd, buf, sizeof buf - 1) > 0 && strncmp(buf, "secret", 6) == 0)
            leaked++;
        close(fd);
    }
    g_stop = 1;
    pthread_join(t, NULL);
    printf("secret %ld opened %ld\n", leaked, opened);
    return 0;
}

/* deep: builds a directory chain deeper than PATH_MAX below the cwd,
 * enters it, makes LINK -> TARGET there and opens LINK for reading. */
static int deep(const char *target) {
    char name[201];
    memset(name, 'd', 200);
    name[200] = 0;
    for (int i = 0; i < 25; i++) {
        if (raw(SYS_mkdirat, AT_FDCWD, L(name), 0755, 0) != 0 && errno != EEXIST) {
            perror("mkdir");
            return 3;
        }
        if (raw(SYS_chdir, L(name), 0, 0, 0) != 0) {
            perror("chdir");
            return 3;
        }
    }
    char cwd[64];
    if (getcwd(cwd, sizeof cwd) != NULL || (errno != ENAMETOOLONG && errno != ERANGE)) {
        fprintf(stderr, "deep: the cwd is not too deep\n");
        return 3;
    }
    raw(SYS_unlinkat, AT_FDCWD, L("link"), 0, 0);
    if (raw(SYS_symlinkat, L(target), AT_FDCWD, L("link"), 0) != 0) {
        perror("symlink");
        return 3;
    }
    return report(open("link", O_RDONLY));
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: escape CALL ARGS...\n");
        return 2;
    }
    const char *c = argv[1];
    const char *a = argv[2];
    char *const exec_argv[] = {(char *)"escape-child", NULL};
#define IS(name) (strcmp(c, name) == 0)
    if (IS("race") && argc == 6) return race(a, argv[3], argv[4], atol(argv[5]));
    if (IS("deep")) return deep(a);
    if (IS("full-execv")) {
        fill_descriptors();
        return report(execv(a, exec_argv));
    }
    if (IS("full-chmod")) {
        fill_descriptors();
        return report(chmod(a, 0600));
    }
    if (IS("full-truncate")) {
        fill_descriptors();
        return report(truncate(a, 0));
    }
    if (IS("full-unlink")) {
        fill_descriptors();
        return report(unlink(a));
    }
    fprintf(stderr, "escape: unknown call %s\n", c);
    return 2;
}
