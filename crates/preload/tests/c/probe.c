/*
 * probe: calls one libc entry point as asked and prints "ok" or "err N".
 * Used by the preload integration tests to show every entry point is
 * interposed. Functions libc does not declare (or export) are looked up with
 * dlsym(RTLD_DEFAULT), which finds libldguard.so's definition first.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/fsuid.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

extern char **environ;
extern int __open_2(const char *, int);
extern int __open64_2(const char *, int);
extern int __openat_2(int, const char *, int);
extern int __openat64_2(int, const char *, int);

static int report(long r) {
    if (r < 0) {
        printf("err %d\n", errno);
    } else {
        printf("ok\n");
    }
    fflush(stdout);
    return 0;
}

static int report_ptr(void *p) { return report(p ? 0 : -1); }

static void *sym(const char *name) {
    void *p = dlsym(RTLD_DEFAULT, name);
    if (!p) {
        printf("missing %s\n", name);
        exit(3);
    }
    return p;
}

static int dir(const char *path) { return open(path, O_RDONLY | O_DIRECTORY); }

static struct sockaddr_in addr4(const char *ip, const char *port) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(port));
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: probe CALL ARGS...\n");
        return 2;
    }
    const char *c = argv[1];
    const char *a = argc > 2 ? argv[2] : "";
    const char *b = argc > 3 ? argv[3] : "";
    char *const exec_argv[] = {(char *)"probe-child", NULL};
#define IS(name) (strcmp(c, name) == 0)
    /* file */
    if (IS("open")) return report(open(a, strcmp(b, "w") == 0 ? O_WRONLY | O_CREAT : O_RDONLY, 0644));
    if (IS("open64")) return report(open64(a, O_RDONLY));
    if (IS("openat")) return report(openat(dir(a), b, O_RDONLY));
    if (IS("openat64")) return report(openat64(dir(a), b, O_RDONLY));
    if (IS("__open_2")) return report(__open_2(a, O_RDONLY));
    if (IS("__open64_2")) return report(__open64_2(a, O_RDONLY));
    if (IS("__openat_2")) return report(__openat_2(dir(a), b, O_RDONLY));
    if (IS("__openat64_2")) return report(__openat64_2(dir(a), b, O_RDONLY));
    if (IS("creat")) return report(creat(a, 0644));
    if (IS("creat64")) return report(creat64(a, 0644));
    if (IS("fopen")) return report_ptr(fopen(a, "r"));
    if (IS("fopen64")) return report_ptr(fopen64(a, "r"));
    if (IS("freopen")) return report_ptr(freopen(a, "r", stdin));
    if (IS("freopen64")) return report_ptr(freopen64(a, "r", stdin));
    if (IS("opendir")) return report_ptr(opendir(a));
    if (IS("truncate")) return report(truncate(a, 0));
    if (IS("truncate64")) return report(truncate64(a, 0));
    if (IS("unlink")) return report(unlink(a));
    if (IS("unlinkat")) return report(unlinkat(dir(a), b, 0));
    if (IS("rename")) return report(rename(a, b));
    if (IS("renameat")) return report(renameat(AT_FDCWD, a, AT_FDCWD, b));
    if (IS("renameat2")) return report(renameat2(AT_FDCWD, a, AT_FDCWD, b, 0));
    if (IS("mkdir")) return report(mkdir(a, 0755));
    if (IS("mkdirat")) return report(mkdirat(AT_FDCWD, a, 0755));
    if (IS("rmdir")) return report(rmdir(a));
    if (IS("link")) return report(link(a, b));
    if (IS("linkat")) return report(linkat(AT_FDCWD, a, AT_FDCWD, b, 0));
    if (IS("symlink")) return report(symlink(a, b));
    if (IS("symlinkat")) return report(symlinkat(a, AT_FDCWD, b));
    if (IS("chmod")) return report(chmod(a, 0600));
    if (IS("fchmodat")) return report(fchmodat(AT_FDCWD, a, 0600, 0));
    if (IS("chown")) return report(chown(a, getuid(), getgid()));
    if (IS("lchown")) return report(lchown(a, getuid(), getgid()));
    if (IS("fchownat")) return report(fchownat(AT_FDCWD, a, getuid(), getgid(), 0));
    if (IS("mknod")) return report(mknod(a, S_IFIFO | 0644, 0));
    if (IS("mknodat")) return report(mknodat(AT_FDCWD, a, S_IFIFO | 0644, 0));
    if (IS("__xmknod")) {
        dev_t dev = 0;
        int (*f)(int, const char *, mode_t, dev_t *) = sym("__xmknod");
        return report(f(1, a, S_IFIFO | 0644, &dev));
    }
    if (IS("__xmknodat")) {
        dev_t dev = 0;
        int (*f)(int, int, const char *, mode_t, dev_t *) = sym("__xmknodat");
        return report(f(1, AT_FDCWD, a, S_IFIFO | 0644, &dev));
    }
    if (IS("procfd")) { /* open DIR with O_PATH, then /proc/self/fd/N/REL */
        char path[4096];
        int fd = open(a, O_PATH | O_DIRECTORY);
        snprintf(path, sizeof path, "/proc/self/fd/%d/%s", fd, b);
        return report(open(path, O_RDONLY));
    }
    if (IS("openat-rel")) return report(openat(dir(a), b, O_RDONLY)); /* dirfd + ".." */
    if (IS("create")) return report(open(a, O_WRONLY | O_CREAT, 0644));
    /* exec: on success the child image prints nothing of ours */
    if (IS("execve")) return report(execve(a, exec_argv, environ));
    if (IS("execv")) return report(execv(a, exec_argv));
    if (IS("execvp")) return report(execvp(a, exec_argv));
    if (IS("execvpe")) return report(execvpe(a, exec_argv, environ));
    if (IS("execl")) return report(execl(a, "probe-child", (char *)NULL));
    if (IS("execlp")) return report(execlp(a, "probe-child", (char *)NULL));
    if (IS("execle")) return report(execle(a, "probe-child", (char *)NULL, environ));
    if (IS("fexecve")) return report(fexecve(open(a, O_RDONLY | O_CLOEXEC), exec_argv, environ));
    if (IS("execveat")) {
        int (*f)(int, const char *, char *const[], char *const[], int) = sym("execveat");
        return report(f(AT_FDCWD, a, exec_argv, environ, 0));
    }
    if (IS("posix_spawn") || IS("posix_spawnp")) {
        pid_t pid;
        int e = IS("posix_spawn") ? posix_spawn(&pid, a, NULL, NULL, exec_argv, environ)
                                  : posix_spawnp(&pid, a, NULL, NULL, exec_argv, environ);
        if (e != 0) {
            errno = e;
            return report(-1);
        }
        waitpid(pid, NULL, 0);
        return report(0);
    }
    if (IS("system")) {
        int r = system(a);
        return report(r == -1 ? -1 : 0);
    }
    if (IS("popen")) {
        FILE *f = popen(a, "r");
        if (f) pclose(f);
        return report_ptr(f);
    }
    /* network */
    if (IS("connect")) {
        struct sockaddr_in s = addr4(a, b);
        return report(connect(socket(AF_INET, SOCK_STREAM, 0), (struct sockaddr *)&s, sizeof s));
    }
    if (IS("bind") || IS("listen")) {
        struct sockaddr_in s = addr4(a, b);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (IS("bind")) return report(bind(fd, (struct sockaddr *)&s, sizeof s));
        if (bind(fd, (struct sockaddr *)&s, sizeof s) != 0) return report(-1);
        return report(listen(fd, 1));
    }
    if (IS("accept") || IS("accept4")) {
        struct sockaddr_in s = addr4("127.0.0.1", "0");
        socklen_t len = sizeof s;
        int srv = socket(AF_INET, SOCK_STREAM, 0);
        bind(srv, (struct sockaddr *)&s, sizeof s);
        listen(srv, 1);
        getsockname(srv, (struct sockaddr *)&s, &len);
        int cli = socket(AF_INET, SOCK_STREAM, 0);
        connect(cli, (struct sockaddr *)&s, sizeof s);
        return report(IS("accept") ? accept(srv, NULL, NULL) : accept4(srv, NULL, NULL, SOCK_CLOEXEC));
    }
    if (IS("sendto")) {
        struct sockaddr_in s = addr4(a, b);
        return report(sendto(socket(AF_INET, SOCK_DGRAM, 0), "x", 1, 0, (struct sockaddr *)&s, sizeof s));
    }
    if (IS("sendmsg")) {
        struct sockaddr_in s = addr4(a, b);
        struct iovec iov = {(void *)"x", 1};
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_name = &s;
        m.msg_namelen = sizeof s;
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        return report(sendmsg(socket(AF_INET, SOCK_DGRAM, 0), &m, 0));
    }
    if (IS("getaddrinfo")) {
        struct addrinfo *res = NULL;
        int r = getaddrinfo(a, NULL, NULL, &res);
        if (r == 0) freeaddrinfo(res);
        if (r == EAI_SYSTEM) return report(-1);
        printf(r == 0 ? "ok\n" : "gai %d\n", r);
        return 0;
    }
    /* syscall family: arguments chosen so an allowed call fails harmlessly */
    if (IS("ptrace")) return report(ptrace(PTRACE_PEEKDATA, 1, NULL, NULL));
    if (IS("mount")) return report(mount("none", "/nonexistent-ldguard", "tmpfs", 0, NULL));
    if (IS("umount2")) return report(umount2("/nonexistent-ldguard", 0));
    if (IS("chroot")) return report(chroot("/nonexistent-ldguard"));
    if (IS("pivot_root")) {
        int (*f)(const char *, const char *) = sym("pivot_root");
        return report(f("/nonexistent-ldguard", "/nonexistent-ldguard"));
    }
    if (IS("unshare")) return report(unshare(0));
    if (IS("setns")) return report(setns(-1, 0));
    if (IS("setuid")) return report(setuid(getuid()));
    if (IS("setgid")) return report(setgid(getgid()));
    if (IS("seteuid")) return report(seteuid(geteuid()));
    if (IS("setegid")) return report(setegid(getegid()));
    if (IS("setreuid")) return report(setreuid(-1, -1));
    if (IS("setregid")) return report(setregid(-1, -1));
    if (IS("setresuid")) return report(setresuid(-1, -1, -1));
    if (IS("setresgid")) return report(setresgid(-1, -1, -1));
    if (IS("setfsuid")) return report(setfsuid(-1));
    if (IS("setfsgid")) return report(setfsgid(-1));
    if (IS("setgroups")) return report(setgroups(0, NULL));
    if (IS("capset")) {
        int (*f)(void *, void *) = sym("capset");
        return report(f(NULL, NULL));
    }
    if (IS("memfd_create")) return report(memfd_create("probe", 0));
    if (IS("init_module")) {
        int (*f)(void *, unsigned long, const char *) = sym("init_module");
        return report(f(NULL, 0, ""));
    }
    if (IS("finit_module")) {
        int (*f)(int, const char *, int) = sym("finit_module");
        return report(f(-1, "", 0));
    }
    if (IS("bpf")) {
        int (*f)(int, void *, unsigned int) = sym("bpf");
        return report(f(-1, NULL, 0));
    }
    if (IS("keyctl")) {
        long (*f)(int, ...) = sym("keyctl");
        return report(f(0 /* KEYCTL_GET_KEYRING_ID */, -3L, 0L));
    }
    if (IS("personality")) return report(personality(0xffffffff));
    if (IS("syscall")) return report(syscall(SYS_unshare, 0));
    fprintf(stderr, "probe: unknown call %s\n", c);
    return 2;
}
