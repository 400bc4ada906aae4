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
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

extern char **environ;

#include "swap.h"

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
static int race(const char *dir, const char *pub, const char *secret, long n) {
    char sw[4096];
    snprintf(sw, sizeof sw, "%s/sw", dir);
    swap_start(dir, pub, secret);
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
    swap_end();
    printf("secret %ld opened %ld\n", leaked, opened);
    return 0;
}

/* A file made, filled or removed by raw system calls (unchecked set-up). */
static void put_file(const char *path, const char *text) {
    long fd = raw(SYS_openat, AT_FDCWD, L(path), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        perror("put_file");
        exit(3);
    }
    raw(SYS_write, fd, L(text), (long)strlen(text), 0);
    raw(SYS_close, fd, 0, 0, 0);
    raw(SYS_fchmodat, AT_FDCWD, L(path), 0644, 0);
}

static int raw_stat(const char *path, struct stat *st) {
    return (int)raw(SYS_newfstatat, AT_FDCWD, L(path), L(st), AT_SYMLINK_NOFOLLOW);
}

/* race-call CALL DIR PUB DENIED N: DIR/sw is swapped in a thread between a
 * symlink to PUB and one to DENIED (directories, each holding a file `f`
 * and a directory `d`, and DIR/PUB/out free to write) while the main
 * thread makes CALL on a path through DIR/sw N times. A win is the call
 * reaching DENIED's object (checked and repaired with raw system calls
 * after every call that succeeded). Prints "wins W ok K". */
static int race_call(const char *call, const char *dir, const char *pub, const char *denied,
                     long n) {
    char sw[4096], f[4096], d[4096], pub_f[4096], pub_d[4096], den_f[4096], den_d[4096],
        out[4096], node[4096], pub_node[4096], den_node[4096];
    snprintf(sw, sizeof sw, "%s/sw", dir);
    snprintf(f, sizeof f, "%s/sw/f", dir);
    snprintf(d, sizeof d, "%s/sw/d", dir);
    snprintf(pub_f, sizeof pub_f, "%s/f", pub);
    snprintf(pub_d, sizeof pub_d, "%s/d", pub);
    snprintf(den_f, sizeof den_f, "%s/f", denied);
    snprintf(den_d, sizeof den_d, "%s/d", denied);
    snprintf(out, sizeof out, "%s/out", pub);
    /* a name made by mknod, on neither side before the call */
    snprintf(node, sizeof node, "%s/sw/n", dir);
    snprintf(pub_node, sizeof pub_node, "%s/n", pub);
    snprintf(den_node, sizeof den_node, "%s/n", denied);
    struct stat den0;
    if (raw_stat(den_f, &den0) != 0) {
        perror("race-call: denied file");
        return 3;
    }
    swap_start(dir, pub, denied);
    long wins = 0, ok = 0;
    const struct timespec epoch[2] = {{0, 0}, {0, 0}};
    const struct timeval epoch_tv[2] = {{0, 0}, {0, 0}};
    /* "sys-CALL": the same call made through libc's syscall(). */
    const int via_syscall = strncmp(call, "sys-", 4) == 0;
    if (via_syscall)
        call += 4;
#define CALL(name) (strcmp(call, name) == 0)
    for (long i = 0; i < n; i++) {
        long r;
        if (via_syscall && CALL("truncate")) {
            r = syscall(SYS_truncate, f, 0);
        } else if (via_syscall && CALL("unlink")) {
            r = syscall(SYS_unlinkat, AT_FDCWD, f, 0);
        } else if (via_syscall && CALL("rename")) {
            r = syscall(SYS_renameat2, AT_FDCWD, f, AT_FDCWD, out, 0);
        } else if (via_syscall && CALL("chmod")) {
            r = syscall(SYS_fchmodat, AT_FDCWD, f, 0600);
        } else if (via_syscall && CALL("link")) {
            r = syscall(SYS_linkat, AT_FDCWD, f, AT_FDCWD, out, 0);
#ifdef SYS_mknod /* x86_64's old calls; aarch64 has only the *at forms */
        } else if (via_syscall && CALL("mknod")) {
            r = syscall(SYS_mknod, node, S_IFREG | 0644, 0);
        } else if (via_syscall && CALL("utimes")) {
            r = syscall(SYS_utimes, f, epoch_tv);
        } else if (via_syscall && CALL("futimesat")) {
            r = syscall(SYS_futimesat, AT_FDCWD, f, epoch_tv);
#endif
        } else if (via_syscall && CALL("mknodat")) {
            r = syscall(SYS_mknodat, AT_FDCWD, node, S_IFREG | 0644, 0);
        } else if (via_syscall && CALL("fchmodat2")) {
            r = syscall(452 /* SYS_fchmodat2 */, AT_FDCWD, f, 0600, 0);
        } else if (via_syscall) {
            fprintf(stderr, "race-call: no syscall form of %s\n", call);
            return 2;
        } else if (CALL("truncate")) {
            r = truncate(f, 0);
        } else if (CALL("freopen")) {
            /* "w" truncates the file the stream is reopened on */
            static FILE *stream;
            if (!stream)
                stream = fopen("/dev/null", "r");
            stream = freopen(f, "w", stream);
            r = stream ? 0 : -1;
        } else if (CALL("chmod")) {
            r = chmod(f, 0600);
        } else if (CALL("chown")) {
            r = chown(f, getuid(), getgid());
        } else if (CALL("utimensat")) {
            r = utimensat(AT_FDCWD, f, epoch, 0);
        } else if (CALL("setxattr")) {
            r = setxattr(f, "user.ldguard", "x", 1, 0);
        } else if (CALL("unlink")) {
            r = unlink(f);
        } else if (CALL("rmdir")) {
            r = rmdir(d);
        } else if (CALL("rename")) {
            r = rename(f, out);
        } else if (CALL("link")) {
            r = link(f, out);
        } else {
            fprintf(stderr, "race-call: unknown call %s\n", call);
            return 2;
        }
        if (r != 0)
            continue;
        ok++;
        struct stat st;
        int gone = raw_stat(den_f, &st) != 0;
        int won = 0;
        if (CALL("truncate") || CALL("freopen")) {
            won = st.st_size == 0;
        } else if (CALL("mknod") || CALL("mknodat")) {
            won = raw_stat(den_node, &st) == 0;
            raw(SYS_unlinkat, AT_FDCWD, L(den_node), 0, 0);
            raw(SYS_unlinkat, AT_FDCWD, L(pub_node), 0, 0);
        } else if (CALL("chmod") || CALL("fchmodat2")) {
            won = (st.st_mode & 07777) != 0644;
        } else if (CALL("chown")) {
            won = st.st_ctim.tv_sec != den0.st_ctim.tv_sec ||
                  st.st_ctim.tv_nsec != den0.st_ctim.tv_nsec;
        } else if (CALL("utimensat") || CALL("utimes") || CALL("futimesat")) {
            won = st.st_mtim.tv_sec == 0;
        } else if (CALL("setxattr")) {
            char v[4];
            won = raw(SYS_getxattr, L(den_f), L("user.ldguard"), L(v), sizeof v) > 0;
            if (won)
                raw(SYS_removexattr, L(den_f), L("user.ldguard"), 0, 0);
        } else if (CALL("rmdir")) {
            won = raw_stat(den_d, &st) != 0;
            if (won)
                raw(SYS_mkdirat, AT_FDCWD, L(den_d), 0755, 0);
            raw(SYS_mkdirat, AT_FDCWD, L(pub_d), 0755, 0);
        } else if (CALL("link")) {
            struct stat o;
            won = raw_stat(out, &o) == 0 && o.st_ino == den0.st_ino;
            raw(SYS_unlinkat, AT_FDCWD, L(out), 0, 0);
        } else {
            won = gone;
        }
        if (won) {
            wins++;
            if (!CALL("rmdir") && !CALL("link") && !CALL("setxattr") && !CALL("mknod") &&
                !CALL("mknodat")) {
                put_file(den_f, "original\n");
                raw_stat(den_f, &den0);
            }
        }
        if (CALL("unlink") || CALL("rename")) {
            if (raw_stat(pub_f, &st) != 0)
                put_file(pub_f, "public\n");
            raw(SYS_unlinkat, AT_FDCWD, L(out), 0, 0);
        }
    }
#undef CALL
    swap_end();
    printf("wins %ld ok %ld\n", wins, ok);
    return 0;
}

/* race-exec MODE DIR ALLOWED DENIED N: DIR/sw is swapped between symlinks
 * to two programs while DIR/sw is run N times, each in a new process:
 * MODE execv (fork, then execv), execvp (fork, then execvp("sw") with
 * PATH=DIR), sys-execve (fork, then syscall(SYS_execve)), execveat and
 * sys-execveat (fork, then execveat(AT_FDCWD, path) from libc or by
 * syscall()), spawn
 * (posix_spawn), spawnp (posix_spawnp("sw") with
 * PATH=DIR); with "-dir" after MODE, ALLOWED and DENIED are directories
 * and DIR/sw/true is run; with "-here", DIR/sw is run from DIR as "sw";
 * "-closefrom" (spawn): file actions close descriptors 3 and up; "-atfd"
 * (execveat): "sw" relative to a descriptor of DIR; "-nofollow"
 * (execveat): with AT_SYMLINK_NOFOLLOW; "-via": DIR/via.sh is run, whose #!
 * line names DIR/sw; "-renamed": ALLOWED and DENIED are files and DIR/sw
 * is flipped between them by renames (always a regular file), and
 * DIR/lnk, a link to sw beside it, is run. The allowed program exits 0
 * and the denied one (false) 1;
 * 127 is a refused exec; any other end is counted as "other" (a script's
 * interpreter that read the denied program as its script: it ran no
 * program). Prints "allowed A denied D refused R other O". */
static int race_exec(const char *mode, const char *dir, const char *allowed, const char *denied,
                     long n) {
    char sw[4096], run[4104];
    snprintf(sw, sizeof sw, "%s/sw", dir);
    snprintf(run, sizeof run, "%s%s", sw, strstr(mode, "-dir") ? "/true" : "");
    /* "-here": from DIR, by the bare name "sw" (no slash). */
    if (strstr(mode, "-here")) {
        if (chdir(dir) != 0) {
            perror("chdir");
            return 3;
        }
        snprintf(run, sizeof run, "sw");
    }
    int by_path = strcmp(mode, "execvp") == 0 || strcmp(mode, "spawnp") == 0;
    if (by_path) setenv("PATH", dir, 1);
    /* "-closefrom": the spawn's file actions close every descriptor from 3
     * up in the child before its exec. */
    posix_spawn_file_actions_t closing, *actions = NULL;
    if (strstr(mode, "-closefrom")) {
        posix_spawn_file_actions_init(&closing);
        posix_spawn_file_actions_addclosefrom_np(&closing, 3);
        actions = &closing;
    }
    /* "-renamed": sw is a file flipped by renames; DIR/lnk -> sw is run. */
    if (strstr(mode, "-renamed")) {
        swap_files = 1;
        char lnk[4104];
        snprintf(lnk, sizeof lnk, "%s/lnk", dir);
        raw(SYS_unlinkat, AT_FDCWD, L(lnk), 0, 0);
        raw(SYS_symlinkat, L("sw"), AT_FDCWD, L(lnk), 0);
        snprintf(run, sizeof run, "%s", lnk);
    }
    /* "-via": DIR/via.sh is run, a script whose #! line names DIR/sw. */
    if (strstr(mode, "-via"))
        snprintf(run, sizeof run, "%s/via.sh", dir);
    /* "-atfd": execveat relative to a descriptor of DIR, by the name "sw"
     * ("sw/true" with "-dir"). */
    int dirfd = AT_FDCWD;
    if (strstr(mode, "-atfd")) {
        dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0) {
            perror("open dir");
            return 3;
        }
        snprintf(run, sizeof run, "sw%s", strstr(mode, "-dir") ? "/true" : "");
    }
    /* "-nofollow": execveat with AT_SYMLINK_NOFOLLOW (links on the way
     * are followed; only a last name that is a link is refused). */
    int at_flags = strstr(mode, "-nofollow") ? AT_SYMLINK_NOFOLLOW : 0;
    swap_start(dir, allowed, denied);
    long ok = 0, won = 0, refused = 0, other = 0;
    fflush(stdout);
    char *const argv[] = {by_path ? (char *)"sw" : run, NULL};
    for (long i = 0; i < n; i++) {
        pid_t pid = -1;
        if (strncmp(mode, "spawn", 5) == 0) {
            int e = by_path ? posix_spawnp(&pid, "sw", actions, NULL, argv, environ)
                            : posix_spawn(&pid, run, actions, NULL, argv, environ);
            if (e != 0) {
                refused++;
                continue;
            }
        } else {
            pid = fork();
            if (pid == 0) {
                if (by_path)
                    execvp("sw", argv);
                else if (strncmp(mode, "sys-execve", 10) == 0)
                    syscall(SYS_execve, run, argv, environ);
                else if (strncmp(mode, "sys-execveat", 12) == 0)
                    syscall(SYS_execveat, dirfd, run, argv, environ, at_flags);
                else if (strncmp(mode, "execveat", 8) == 0)
                    execveat(dirfd, run, argv, environ, at_flags);
                else
                    execv(run, argv);
                _exit(127);
            }
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status))
            other++;
        else if (WEXITSTATUS(status) == 0)
            ok++;
        else if (WEXITSTATUS(status) == 1)
            won++;
        else if (WEXITSTATUS(status) == 127)
            refused++;
        else
            other++;
    }
    swap_end();
    printf("allowed %ld denied %ld refused %ld other %ld\n", ok, won, refused, other);
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
    if (IS("race-call") && argc == 7)
        return race_call(a, argv[3], argv[4], argv[5], atol(argv[6]));
    if (IS("race-exec") && argc == 7)
        return race_exec(a, argv[3], argv[4], argv[5], atol(argv[6]));
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
