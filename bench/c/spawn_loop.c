/* Starts PROGRAM N times with posix_spawn and waits for each: the parent's
 * side of an exec (where the library checks it, drift included), for
 * bench/drift-exec-callgrind. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s N PROGRAM [ARG...]\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]);
    for (int i = 0; i < n; i++) {
        pid_t pid;
        int rc = posix_spawn(&pid, argv[2], NULL, NULL, argv + 2, environ);
        if (rc != 0) {
            fprintf(stderr, "posix_spawn %s: error %d\n", argv[2], rc);
            return 1;
        }
        int status;
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status)) {
            return 1;
        }
    }
    return 0;
}
