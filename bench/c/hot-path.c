/* The calls whose library code scripts/hot-text-order profiles and places
 * together at the start of the library's text.
 *
 *   hot-path calls FILE       checked open, fopen, stat and UDP connect,
 *                             then one fork+exec and one posix_spawn of
 *                             /bin/true
 *   hot-path fork-exec FILE   the exec check in a forked child: an exec of
 *                             FILE, not executable, so the check runs, the
 *                             exec fails and the child exits (and a
 *                             profiler writes the child's profile)
 *
 * FILE: an existing regular file, absolute path. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void wait_child(pid_t pid) {
    int status;
    if (pid > 0) waitpid(pid, &status, 0);
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[1], "calls") && strcmp(argv[1], "fork-exec"))) {
        fprintf(stderr, "usage: hot-path calls|fork-exec FILE\n");
        return 2;
    }
    const char *file = argv[2];
    if (!strcmp(argv[1], "fork-exec")) {
        pid_t pid = fork();
        if (pid == 0) {
            char *args[] = {(char *)file, NULL};
            execve(file, args, environ);
            _exit(0);
        }
        wait_child(pid);
        return 0;
    }
    for (int i = 0; i < 3; i++) {
        int fd = open(file, O_RDONLY);
        if (fd >= 0) close(fd);
        FILE *f = fopen(file, "r");
        if (f) fclose(f);
        struct stat st;
        stat(file, &st);
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons(9)};
        peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (s >= 0) {
            connect(s, (struct sockaddr *)&peer, sizeof peer);
            close(s);
        }
    }
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {"/bin/true", NULL};
        execve("/bin/true", args, environ);
        _exit(127);
    }
    wait_child(pid);
    char *args[] = {"/bin/true", NULL};
    if (posix_spawn(&pid, "/bin/true", NULL, NULL, args, environ) == 0) wait_child(pid);
    return 0;
}
