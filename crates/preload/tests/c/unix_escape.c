/*
 * unix_escape: reaches a denied unix socket the ways an attacker would when
 * the library decides on a spelling of the socket's path instead of the
 * socket file the kernel connects to. Two servers listen, at PUB/s and at
 * DENIED/s (each answers to its own name through getpeername); the client
 * connects or sends through a symlink (swap.h swaps it).
 *
 *   race CALL DIR PUB DENIED N   DIR/sw flips between PUB and DENIED in a
 *                                thread while CALL (connect, sendto,
 *                                sendmsg, sendmmsg, and sys-connect and
 *                                sys-sendto through syscall()) goes
 *                                through DIR/sw/s N times;
 *                                prints "denied-reached W ok K"
 *   full CALL DIR LINK           CALL through LINK/s with the descriptor
 *                                table full; prints "ok" or "err N"
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "swap.h"

static socklen_t address(struct sockaddr_un *a, const char *path) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof a->sun_path) {
        fprintf(stderr, "unix_escape: path too long: %s\n", path);
        exit(3);
    }
    strcpy(a->sun_path, path);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
}

/* A server of TYPE bound at DIR/s. */
static int serve(const char *dir, int type) {
    char path[108];
    snprintf(path, sizeof path, "%s/s", dir);
    unlink(path);
    struct sockaddr_un a;
    socklen_t len = address(&a, path);
    int s = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&a, len) != 0 ||
        (type == SOCK_STREAM && listen(s, 4096) != 0)) {
        perror("unix_escape: server");
        exit(3);
    }
    return s;
}

static int g_listen[2];
static const char *g_denied;

/* Accepts and drops every connection, so the backlogs never fill. */
static void *acceptor(void *arg) {
    (void)arg;
    struct pollfd p[2] = {{g_listen[0], POLLIN, 0}, {g_listen[1], POLLIN, 0}};
    while (!swap_stop) {
        if (poll(p, 2, 50) <= 0)
            continue;
        for (int i = 0; i < 2; i++)
            if (p[i].revents & POLLIN) {
                int c = accept4(g_listen[i], NULL, NULL, SOCK_CLOEXEC);
                if (c >= 0)
                    close(c);
            }
    }
    return NULL;
}

/* Sends one datagram naming the receiver's path: 0 or -1 with errno. */
static int send_to(const char *call, int s, const char *path) {
    struct sockaddr_un a;
    socklen_t len = address(&a, path);
    char byte = 'x';
    if (strcmp(call, "sendto") == 0)
        return sendto(s, &byte, 1, 0, (struct sockaddr *)&a, len) == 1 ? 0 : -1;
    if (strcmp(call, "sys-sendto") == 0)
        return syscall(SYS_sendto, s, &byte, 1, 0, &a, len) == 1 ? 0 : -1;
    struct iovec iov = {&byte, 1};
    struct msghdr m = {.msg_name = &a, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1};
    if (strcmp(call, "sendmmsg") == 0) {
        struct mmsghdr mm = {.msg_hdr = m};
        return sendmmsg(s, &mm, 1, 0) == 1 && mm.msg_len == 1 ? 0 : -1;
    }
    return sendmsg(s, &m, 0) == 1 ? 0 : -1;
}

/* Which server took the datagram (each counts what it received). */
static long received(int s) {
    long n = 0;
    char byte;
    while (recv(s, &byte, 1, MSG_DONTWAIT) == 1)
        n++;
    return n;
}

static int type_of(const char *call) {
    return strstr(call, "connect") ? SOCK_STREAM : SOCK_DGRAM;
}

/* One CALL through PATH; 1 when it reached the denied server, 0 when the
 * free one, -1 when refused (errno set). */
static int attempt(const char *call, const char *path, int denied_dgram) {
    if (type_of(call) == SOCK_STREAM) {
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un a;
        socklen_t len = address(&a, path);
        int r = strcmp(call, "sys-connect") == 0 ? (int)syscall(SYS_connect, s, &a, len)
                                                  : connect(s, (struct sockaddr *)&a, len);
        if (r != 0) {
            int e = errno;
            close(s);
            errno = e;
            return -1;
        }
        struct sockaddr_un peer;
        socklen_t plen = sizeof peer;
        memset(&peer, 0, sizeof peer);
        getpeername(s, (struct sockaddr *)&peer, &plen);
        close(s);
        return strncmp(peer.sun_path, g_denied, strlen(g_denied)) == 0;
    }
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int r = send_to(call, s, path);
    int e = errno;
    close(s);
    if (r != 0) {
        errno = e;
        return -1;
    }
    return received(denied_dgram) > 0;
}

static int race(const char *call, const char *dir, const char *pub, const char *denied, long n) {
    g_denied = denied;
    int type = type_of(call);
    g_listen[0] = serve(pub, type);
    g_listen[1] = serve(denied, type);
    char path[4096];
    snprintf(path, sizeof path, "%s/sw/s", dir);
    pthread_t acc;
    swap_start(dir, pub, denied);
    if (type == SOCK_STREAM)
        pthread_create(&acc, NULL, acceptor, NULL);
    long reached = 0, ok = 0;
    for (long i = 0; i < n; i++) {
        int r = attempt(call, path, g_listen[1]);
        if (r == 1)
            reached++;
        else if (r == 0)
            ok++;
        if (type == SOCK_DGRAM)
            received(g_listen[0]);
    }
    swap_end();
    if (type == SOCK_STREAM)
        pthread_join(acc, NULL);
    printf("denied-reached %ld ok %ld\n", reached, ok);
    return 0;
}

/* CALL through LINK/s (LINK a symlink to the denied server's directory)
 * once the descriptor table is full: the library has no descriptor to
 * resolve the link with. */
static int full(const char *call, const char *denied, const char *link) {
    g_denied = denied;
    int server = serve(denied, type_of(call));
    int s = socket(AF_UNIX, type_of(call) | SOCK_CLOEXEC, 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/s", link);
    struct sockaddr_un a;
    socklen_t len = address(&a, path);
    struct rlimit rl = {64, 64};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        perror("setrlimit");
        return 3;
    }
    while (fcntl(0, F_DUPFD_CLOEXEC, 0) >= 0) {
    }
    if (errno != EMFILE) {
        perror("fill");
        return 3;
    }
    int r;
    char byte = 'x';
    if (strcmp(call, "connect") == 0)
        r = connect(s, (struct sockaddr *)&a, len);
    else
        r = sendto(s, &byte, 1, 0, (struct sockaddr *)&a, len) == 1 ? 0 : -1;
    if (r != 0) {
        printf("err %d\n", errno);
    } else {
        printf("ok\n");
    }
    (void)server;
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 7 && strcmp(argv[1], "race") == 0)
        return race(argv[2], argv[3], argv[4], argv[5], atol(argv[6]));
    if (argc == 5 && strcmp(argv[1], "full") == 0)
        return full(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: unix_escape race CALL DIR PUB DENIED N | full CALL DENIED LINK\n");
    return 2;
}
