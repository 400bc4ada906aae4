/*
 * routes: one way of reaching a file, a program, a peer or a capability,
 * as an attacker inside an instrumented process would try it. Prints "ok"
 * (and what was read, when something was) and exits 0, or prints
 * "error: <strerror>" and exits 1. Used by tests/scenarios.
 *
 *   routes sys[-hi] NAME ARGS...   syscall(SYS_NAME [| 1L<<32], ...)
 *   routes alias NAME ARGS...      a glibc alias found with dlsym
 *   routes NAME ARGS...            the libc function NAME
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <ftw.h>
#include <glob.h>
#include <grp.h>
#include <linux/openat2.h>
#include <mntent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sched.h>
#include <shadow.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <wordexp.h>

extern char **environ;

static int done(long r) {
    if (r < 0) {
        printf("error: %s\n", strerror(errno));
        return 1;
    }
    printf("ok\n");
    return 0;
}

/* Reads fd to stdout after "ok". */
static int done_fd(long fd) {
    if (fd < 0)
        return done(-1);
    printf("ok\n");
    char buf[256];
    ssize_t n;
    while ((n = read((int)fd, buf, sizeof buf)) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
    return 0;
}

static int done_file(FILE *f) {
    if (f == NULL)
        return done(-1);
    printf("ok\n");
    char buf[256];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, stdout);
    return 0;
}

static void *sym(const char *name) {
    void *p = dlsym(RTLD_DEFAULT, name);
    if (!p) {
        printf("missing %s\n", name);
        exit(3);
    }
    return p;
}

static socklen_t inet(const char *ip, const char *port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((unsigned short)atoi(port));
        return sizeof *a4;
    }
    if (inet_pton(AF_INET6, ip, &a6->sin6_addr) != 1) {
        fprintf(stderr, "bad address %s\n", ip);
        exit(2);
    }
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((unsigned short)atoi(port));
    return sizeof *a6;
}

static socklen_t unix_addr(const char *path, struct sockaddr_un *a) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    strncpy(a->sun_path, path, sizeof a->sun_path - 1);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1);
}

/* A TCP listener on ip:port (port 0: ephemeral); returns its port. */
static int listener(const char *ip, int *port) {
    struct sockaddr_storage ss;
    socklen_t len = inet(ip, "0", &ss);
    int s = socket(ss.ss_family, SOCK_STREAM, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&ss, len) < 0 || listen(s, 4) < 0) {
        perror("listener");
        exit(2);
    }
    getsockname(s, (struct sockaddr *)&ss, &len);
    *port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                          : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return s;
}

/* A UDP receiver on ip:0; returns its port. */
static int receiver(const char *ip, int *port) {
    struct sockaddr_storage ss;
    socklen_t len = inet(ip, "0", &ss);
    int s = socket(ss.ss_family, SOCK_DGRAM, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&ss, len) < 0) {
        perror("receiver");
        exit(2);
    }
    getsockname(s, (struct sockaddr *)&ss, &len);
    *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return s;
}

static long number(const char *name) {
    static const struct { const char *name; long nr; } table[] = {
        {"open", SYS_open}, {"openat", SYS_openat}, {"openat2", SYS_openat2},
        {"creat", SYS_creat}, {"execve", SYS_execve}, {"connect", SYS_connect},
        {"unshare", SYS_unshare}, {"ptrace", SYS_ptrace}, {"getppid", SYS_getppid},
        {"unlink", SYS_unlink}, {"clone", SYS_clone}, {"clone3", SYS_clone3},
        {"sendto", SYS_sendto}, {"utimensat", SYS_utimensat}, {"fchmod", SYS_fchmod},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].name, name) == 0)
            return table[i].nr;
    fprintf(stderr, "unknown system call %s\n", name);
    exit(2);
}

static int child_exit(void *arg) {
    (void)arg;
    return 0;
}

static int wait_child(long pid) {
    if (pid < 0)
        return done(-1);
    if (pid == 0)
        _exit(0);
    int st;
    waitpid((pid_t)pid, &st, __WALL);
    return done(0);
}

static int sys(int hi, int argc, char **argv) {
    long nr = number(argv[0]) | (hi ? (1L << 32) : 0);
    const char *a = argc > 1 ? argv[1] : "";
    const char *b = argc > 2 ? argv[2] : "0";
    const char *n = argv[0];
#define IS(x) (strcmp(n, x) == 0)
    if (IS("open"))
        return done_fd(syscall(nr, a, O_RDONLY));
    if (IS("openat"))
        return done_fd(syscall(nr, AT_FDCWD, a, O_RDONLY));
    if (IS("openat2")) {
        struct open_how how = {.flags = O_RDONLY};
        return done_fd(syscall(nr, AT_FDCWD, a, &how, sizeof how));
    }
    if (IS("creat"))
        return done(syscall(nr, a, 0600));
    if (IS("unlink"))
        return done(syscall(nr, a));
    if (IS("execve")) {
        char *args[] = {(char *)a, NULL};
        fflush(stdout);
        return done(syscall(nr, a, args, environ));
    }
    if (IS("connect")) {
        int port;
        listener(a, &port);
        char p[16];
        snprintf(p, sizeof p, "%d", port);
        struct sockaddr_storage ss;
        socklen_t len = inet(a, p, &ss);
        int s = socket(ss.ss_family, SOCK_STREAM, 0);
        return done(syscall(nr, s, &ss, len));
    }
    if (IS("unshare"))
        return done(syscall(nr, CLONE_NEWUTS));
    if (IS("ptrace")) {
        pid_t pid = fork();
        if (pid == 0) {
            long r = syscall(nr, PTRACE_TRACEME, 0, 0, 0);
            _exit(r < 0 ? errno : 0);
        }
        int st;
        waitpid(pid, &st, 0);
        errno = WEXITSTATUS(st);
        return done(errno ? -1 : 0);
    }
    if (IS("getppid"))
        return done(syscall(nr));
    if (IS("clone")) {
        fflush(stdout);
        return wait_child(syscall(nr, CLONE_NEWUTS | SIGCHLD, 0, 0, 0, 0));
    }
    if (IS("clone3")) {
        struct { uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls; } args;
        memset(&args, 0, sizeof args);
        args.flags = CLONE_NEWUTS;
        args.exit_signal = SIGCHLD;
        fflush(stdout);
        return wait_child(syscall(nr, &args, sizeof args));
    }
    if (IS("fchmod")) {
        int fd = open(a, O_RDONLY);
        return done(syscall(nr, fd, 0600));
    }
    fprintf(stderr, "no sys case %s\n", n);
    (void)b;
    return 2;
}

static int alias(int argc, char **argv) {
    const char *n = argv[0];
    const char *a = argc > 1 ? argv[1] : "";
    if (IS("__open") || IS("__open64") || IS("__open_nocancel")) {
        int (*f)(const char *, int, ...) = sym(n);
        return done_fd(f(a, O_RDONLY));
    }
    if (IS("_IO_fopen")) {
        FILE *(*f)(const char *, const char *) = sym(n);
        return done_file(f(a, "r"));
    }
    if (IS("__libc_system")) {
        int (*f)(const char *) = sym(n);
        fflush(stdout);
        int r = f(a);
        if (r < 0)
            return done(-1);
        return done(WEXITSTATUS(r) == 0 ? 0 : (errno = EINVAL, -1));
    }
    if (IS("_IO_popen")) {
        FILE *(*f)(const char *, const char *) = sym(n);
        fflush(stdout);
        FILE *p = f(a, "r");
        int r = done_file(p);
        if (p)
            pclose(p);
        return r;
    }
    if (IS("__connect")) {
        int (*f)(int, const struct sockaddr *, socklen_t) = sym(n);
        int port;
        listener(a, &port);
        char p[16];
        snprintf(p, sizeof p, "%d", port);
        struct sockaddr_storage ss;
        socklen_t len = inet(a, p, &ss);
        int s = socket(ss.ss_family, SOCK_STREAM, 0);
        return done(f(s, (struct sockaddr *)&ss, len));
    }
    fprintf(stderr, "no alias case %s\n", n);
    return 2;
}

static int compare(const void *x, const void *y) {
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Prints a walk's paths sorted, so runs compare equal. */
static char *seen[256];
static int nseen;
static int collect(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    if (nseen < 256)
        seen[nseen++] = strdup(path);
    return 0;
}
static int ftw_entry(const char *path, const struct stat *st, int flag) {
    return collect(path, st, flag, NULL);
}
static int print_seen(int r) {
    if (r < 0)
        return done(-1);
    qsort(seen, (size_t)nseen, sizeof seen[0], compare);
    printf("ok\n");
    for (int i = 0; i < nseen; i++)
        printf("%s\n", seen[i]);
    return 0;
}

static int call(int argc, char **argv) {
    const char *n = argv[0];
    const char *a = argc > 1 ? argv[1] : "";
    const char *b = argc > 2 ? argv[2] : "";
    if (IS("getspnam")) {
        struct spwd *sp = getspnam(a);
        if (!sp)
            return done(-1);
        printf("ok\n%s\n", sp->sp_pwdp);
        return 0;
    }
    if (IS("gethostbyname")) {
        struct hostent *h = gethostbyname(a);
        if (!h) {
            printf("error: %s\n", h_errno == NETDB_INTERNAL ? strerror(errno) : hstrerror(h_errno));
            return 1;
        }
        return done(0);
    }
    if (IS("gethostbyname2_r")) {
        struct hostent he, *res = NULL;
        char buf[1024];
        int herr;
        int r = gethostbyname2_r(a, AF_INET, &he, buf, sizeof buf, &res, &herr);
        if (r != 0 || res == NULL) {
            errno = r ? r : ENOENT;
            return done(-1);
        }
        return done(0);
    }
    if (IS("mkstemp")) {
        char t[4096];
        snprintf(t, sizeof t, "%s", a);
        return done(mkstemp(t));
    }
    if (IS("mkostemps")) {
        char t[4096];
        snprintf(t, sizeof t, "%s.txt", a);
        return done(mkostemps(t, 4, O_CLOEXEC));
    }
    if (IS("mkdtemp")) {
        char t[4096];
        snprintf(t, sizeof t, "%s", a);
        return done(mkdtemp(t) ? 0 : -1);
    }
    if (IS("mkfifo"))
        return done(mkfifo(a, 0600));
    if (IS("mkfifoat"))
        return done(mkfifoat(AT_FDCWD, a, 0600));
    if (IS("freopen-null")) {
        FILE *f = fopen(a, "r");
        if (!f)
            return done(-1);
        f = freopen(NULL, "r+", f);
        if (!f)
            return done(-1);
        fputs("overwritten", f);
        return done(fclose(f));
    }
    if (IS("setmntent"))
        return done_file(setmntent(a, "r"));
    if (IS("scandir")) {
        struct dirent **list;
        int k = scandir(a, &list, NULL, alphasort);
        if (k < 0)
            return done(-1);
        printf("ok\n");
        for (int i = 0; i < k; i++)
            printf("%s\n", list[i]->d_name);
        return 0;
    }
    if (IS("glob")) {
        glob_t g;
        int r = glob(a, GLOB_ERR, NULL, &g);
        if (r == GLOB_NOMATCH) {
            printf("no match\n");
            return 1;
        }
        if (r != 0)
            return done(-1);
        printf("ok\n");
        for (size_t i = 0; i < g.gl_pathc; i++)
            printf("%s\n", g.gl_pathv[i]);
        globfree(&g);
        return 0;
    }
    if (IS("nftw"))
        return print_seen(nftw(a, collect, 8, FTW_PHYS));
    if (IS("nftw-chdir"))
        return print_seen(nftw(a, collect, 8, FTW_PHYS | FTW_CHDIR));
    if (IS("ftw"))
        return print_seen(ftw(a, ftw_entry, 8));
    if (IS("fts")) {
        char *roots[] = {(char *)a, NULL};
        FTS *fts = fts_open(roots, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
        if (!fts)
            return done(-1);
        FTSENT *e;
        while ((e = fts_read(fts)) != NULL)
            if (e->fts_info != FTS_DP && nseen < 256)
                seen[nseen++] = strdup(e->fts_path);
        int err = errno;
        fts_close(fts);
        errno = err;
        return print_seen(0);
    }
    if (IS("wordexp")) {
        wordexp_t w;
        int r = wordexp(a, &w, 0);
        if (r != 0) {
            printf("error: wordexp %d: %s\n", r, strerror(errno));
            return 1;
        }
        printf("ok\n");
        for (size_t i = 0; i < w.we_wordc; i++)
            printf("%s\n", w.we_wordv[i]);
        return 0;
    }
    if (IS("fchmod")) {
        int fd = open(a, O_RDONLY);
        return done(fchmod(fd, 0600));
    }
    if (IS("fchown")) {
        int fd = open(a, O_RDONLY);
        return done(fchown(fd, getuid(), getgid()));
    }
    if (IS("futimens")) {
        int fd = open(a, O_RDONLY);
        return done(futimens(fd, NULL));
    }
    if (IS("utimes"))
        return done(utimes(a, NULL));
    if (IS("setxattr"))
        return done(setxattr(a, "user.ldguard", "x", 1, 0));
    if (IS("fsetxattr")) {
        int fd = open(a, O_RDONLY);
        return done(fsetxattr(fd, "user.ldguard", "x", 1, 0));
    }
    if (IS("removexattr"))
        return done(removexattr(a, "user.ldguard-none"));
    if (IS("bind-unix")) {
        struct sockaddr_un u;
        socklen_t len = unix_addr(a, &u);
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        return done(bind(s, (struct sockaddr *)&u, len));
    }
    if (IS("connect-unix") || IS("sendto-unix") || IS("sendmsg-unix")) {
        struct sockaddr_un u;
        socklen_t len = unix_addr(a, &u);
        int s = socket(AF_UNIX, IS("connect-unix") ? SOCK_STREAM : SOCK_DGRAM, 0);
        if (IS("connect-unix"))
            return done(connect(s, (struct sockaddr *)&u, len));
        if (IS("sendto-unix"))
            return done(sendto(s, "x", 1, 0, (struct sockaddr *)&u, len));
        struct iovec io = {.iov_base = "x", .iov_len = 1};
        struct msghdr m = {.msg_name = &u, .msg_namelen = len, .msg_iov = &io, .msg_iovlen = 1};
        return done(sendmsg(s, &m, 0));
    }
    if (IS("connect6-24")) {
        /* AF_INET6 with the RFC 2133 length (no scope id). */
        int port;
        listener("::1", &port);
        char p[16];
        snprintf(p, sizeof p, "%d", port);
        struct sockaddr_storage ss;
        inet(a, p, &ss);
        int s = socket(AF_INET6, SOCK_STREAM, 0);
        return done(connect(s, (struct sockaddr *)&ss, 24));
    }
    if (IS("connect-any")) {
        /* a = the unspecified address to connect to; the listener is on loopback. */
        int port;
        listener(strchr(a, ':') ? "::" : "127.0.0.1", &port);
        char p[16];
        snprintf(p, sizeof p, "%d", port);
        struct sockaddr_storage ss;
        socklen_t len = inet(a, p, &ss);
        int s = socket(ss.ss_family, SOCK_STREAM, 0);
        return done(connect(s, (struct sockaddr *)&ss, len));
    }
    if (IS("sendto-unspec") || IS("sendmmsg")) {
        int port;
        int r = receiver(a, &port);
        char p[16];
        snprintf(p, sizeof p, "%d", port);
        struct sockaddr_storage ss;
        socklen_t len = inet(a, p, &ss);
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        long sent;
        if (IS("sendto-unspec")) {
            ((struct sockaddr_in *)&ss)->sin_family = AF_UNSPEC;
            sent = sendto(s, "x", 1, 0, (struct sockaddr *)&ss, len);
        } else {
            struct iovec io = {.iov_base = "x", .iov_len = 1};
            struct mmsghdr m[1];
            memset(m, 0, sizeof m);
            for (int i = 0; i < 1; i++) {
                m[i].msg_hdr.msg_name = &ss;
                m[i].msg_hdr.msg_namelen = len;
                m[i].msg_hdr.msg_iov = &io;
                m[i].msg_hdr.msg_iovlen = 1;
            }
            sent = sendmmsg(s, m, 1, 0);
        }
        if (sent < 0)
            return done(-1);
        char c;
        return done(recv(r, &c, 1, MSG_DONTWAIT));
    }
    if (IS("clone")) {
        static char stack[65536];
        fflush(stdout);
        int pid = clone(child_exit, stack + sizeof stack, CLONE_NEWUTS | SIGCHLD, NULL);
        if (pid < 0)
            return done(-1);
        int st;
        waitpid(pid, &st, 0);
        return done(0);
    }
    if (IS("open_tree"))
        return done(open_tree(AT_FDCWD, a, OPEN_TREE_CLONE));
    if (IS("fsopen"))
        return done(fsopen("tmpfs", 0));
    if (IS("process_vm_readv")) {
        /* Reads this process's own memory through the remote interface. */
        char src[] = "secret", dst[7] = {0};
        struct iovec l = {dst, 6}, r = {src, 6};
        long k = process_vm_readv(getpid(), &l, 1, &r, 1, 0);
        return done(k == 6 ? 0 : -1);
    }
    if (IS("pidfd_getfd")) {
        int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
        return done(pidfd_getfd(pidfd, 1, 0));
    }
    if (IS("remove"))
        return done(remove(a));
    if (IS("tmpfile"))
        return done(tmpfile() ? 0 : -1);
    if (IS("shm_open")) {
        int fd = shm_open(a, O_RDWR | O_CREAT, 0600);
        if (fd >= 0)
            shm_unlink(a);
        return done(fd);
    }
    if (IS("getaddrinfo_a")) {
        struct gaicb req = {.ar_name = a};
        struct gaicb *list[] = {&req};
        int r = getaddrinfo_a(GAI_WAIT, list, 1, NULL);
        if (r == EAI_SYSTEM)
            return done(-1);
        if (r == 0)
            r = gai_error(&req);
        printf(r == 0 ? "ok\n" : "error: %s\n", gai_strerror(r));
        return r != 0;
    }
    if (IS("bindresvport")) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        return done(bindresvport(s, NULL));
    }
    if (IS("umount"))
        return done(umount(a));
    (void)b;
    fprintf(stderr, "no case %s\n", n);
    return 2;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: routes [sys|sys-hi|alias] NAME ARGS...\n");
        return 2;
    }
    if (strcmp(argv[1], "sys") == 0 || strcmp(argv[1], "sys-hi") == 0)
        return sys(strcmp(argv[1], "sys-hi") == 0, argc - 2, argv + 2);
    if (strcmp(argv[1], "alias") == 0)
        return alias(argc - 2, argv + 2);
    return call(argc - 1, argv + 1);
}
