/*
 * cancel_calls: every hooked libc function that is a cancellation point
 * acts on a pending cancellation as libc's does, and a cancelled thread is
 * unwound through the library's frames without harm (the shipped build
 * once crashed here: two unwinders in one process), leaving no descriptor
 * of its own open (the call's own socket stays, as the program leaks it).
 * Two lines per call, compared with a run without the library. argv[1] is
 * an empty scratch directory.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char file[4096];
static struct sockaddr_in tcp_peer, udp_peer;
/* Unix sockets reached by path: the library holds the socket file for the
 * call when a rule looks at socket paths. */
static struct sockaddr_un unix_stream_peer, unix_dgram_peer;

static void say(const char *s) {
    if (write(1, s, strlen(s)) < 0) _exit(3);
}

static void on_cancel(void *what) {
    say((const char *)what);
    say(": cancelled\n");
}

static void call(const char *what) {
    if (!strcmp(what, "open")) {
        int fd = open(file, O_RDONLY);
        if (fd >= 0) close(fd);
    } else if (!strcmp(what, "openat")) {
        int fd = openat(AT_FDCWD, file, O_RDONLY);
        if (fd >= 0) close(fd);
    } else if (!strcmp(what, "creat")) {
        int fd = creat(file, 0644);
        if (fd >= 0) close(fd);
    } else if (!strcmp(what, "fopen")) {
        FILE *f = fopen(file, "r");
        if (f) fclose(f);
    } else if (!strcmp(what, "connect")) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        connect(s, (struct sockaddr *)&tcp_peer, sizeof tcp_peer);
        close(s);
    } else if (!strcmp(what, "sendto")) {
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        sendto(s, "x", 1, 0, (struct sockaddr *)&udp_peer, sizeof udp_peer);
        close(s);
    } else if (!strcmp(what, "connect-unix")) {
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        connect(s, (struct sockaddr *)&unix_stream_peer, sizeof unix_stream_peer);
        close(s);
    } else if (!strcmp(what, "sendto-unix")) {
        int s = socket(AF_UNIX, SOCK_DGRAM, 0);
        sendto(s, "x", 1, 0, (struct sockaddr *)&unix_dgram_peer, sizeof unix_dgram_peer);
        close(s);
    } else if (!strcmp(what, "sendmsg-unix")) {
        int s = socket(AF_UNIX, SOCK_DGRAM, 0);
        struct iovec iov = {(void *)"x", 1};
        struct msghdr m = {.msg_name = &unix_dgram_peer,
                           .msg_namelen = sizeof unix_dgram_peer,
                           .msg_iov = &iov,
                           .msg_iovlen = 1};
        sendmsg(s, &m, 0);
        close(s);
    }
}

static void *pending(void *arg) {
    const char *what = arg;
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    pthread_cancel(pthread_self());
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
    pthread_cleanup_push(on_cancel, arg);
    call(what);
    say(what);
    say(": returned\n");
    pthread_cleanup_pop(0);
    return NULL;
}

/* Descriptors open in this process. */
static int open_descriptors(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        perror("opendir");
        _exit(2);
    }
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own */
}

static void listen_on(int type, struct sockaddr_in *a) {
    int s = socket(AF_INET, type, 0);
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof *a;
    if (s < 0 || bind(s, (struct sockaddr *)a, len) != 0 ||
        (type == SOCK_STREAM && listen(s, 8) != 0) ||
        getsockname(s, (struct sockaddr *)a, &len) != 0) {
        perror("setup");
        _exit(2);
    }
}

static void listen_unix(int type, struct sockaddr_un *a, const char *dir, const char *name) {
    int s = socket(AF_UNIX, type, 0);
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    snprintf(a->sun_path, sizeof a->sun_path, "%s/%s", dir, name);
    if (s < 0 || bind(s, (struct sockaddr *)a, sizeof *a) != 0 ||
        (type == SOCK_STREAM && listen(s, 8) != 0)) {
        perror("setup");
        _exit(2);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: cancel_calls EMPTY-DIR\n");
        return 2;
    }
    snprintf(file, sizeof file, "%s/file", argv[1]);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || close(fd) != 0) {
        perror("setup");
        return 2;
    }
    listen_on(SOCK_STREAM, &tcp_peer);
    listen_on(SOCK_DGRAM, &udp_peer);
    /* Relative to the cwd (a path under the scratch directory can be
     * longer than a socket address holds). */
    if (chdir(argv[1]) != 0) {
        perror("setup");
        return 2;
    }
    listen_unix(SOCK_STREAM, &unix_stream_peer, ".", "stream");
    listen_unix(SOCK_DGRAM, &unix_dgram_peer, ".", "dgram");
    const char *calls[] = {"open",         "openat",      "creat",       "fopen", "connect",
                           "sendto",       "connect-unix", "sendto-unix", "sendmsg-unix"};
    for (size_t i = 0; i < sizeof calls / sizeof *calls; i++) {
        pthread_t t;
        void *res;
        int before = open_descriptors();
        pthread_create(&t, NULL, pending, (void *)calls[i]);
        pthread_join(t, &res);
        say(calls[i]);
        say(res == PTHREAD_CANCELED ? ": joined, cancelled" : ": joined, not cancelled");
        char left[64];
        snprintf(left, sizeof left, ", %+d descriptors\n", open_descriptors() - before);
        say(left);
    }
    return 0;
}
