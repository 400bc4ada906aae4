/* exec_ab: what one part of an instrumented fork+exec+wait of /bin/true
 * costs, measured as a difference inside one process: two variants
 * alternate iteration by iteration, so the machine's drift (which on a
 * shared VM moves whole runs by tens of percent) falls on both alike.
 *
 *   exec_ab N env VAR=A VAR=B   the child's environment with VAR=A, then
 *                               with VAR=B (replaced or added): what the
 *                               new process's start-up costs under each
 *   exec_ab N hook              the exec by a raw system call, then by
 *                               libc's execve (the library's hook when it
 *                               is loaded): what the exec check costs in
 *                               the forked child
 *
 * Prints the medians of each side and the difference of the medians (and
 * of the first and third quartiles), in microseconds. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* environ with `kv` (NAME=VALUE) in place of NAME's definition, or added. */
static char **environ_with(const char *kv) {
    const char *eq = strchr(kv, '=');
    if (!eq) {
        fprintf(stderr, "exec_ab: %s is not NAME=VALUE\n", kv);
        exit(2);
    }
    size_t name_len = (size_t)(eq - kv) + 1;
    int n = 0;
    while (environ[n]) n++;
    char **env = calloc((size_t)n + 2, sizeof *env);
    int j = 0, replaced = 0;
    for (int i = 0; i < n; i++) {
        if (!strncmp(environ[i], kv, name_len)) {
            env[j++] = (char *)kv;
            replaced = 1;
        } else {
            env[j++] = environ[i];
        }
    }
    if (!replaced) env[j++] = (char *)kv;
    env[j] = NULL;
    return env;
}

/* The exec made without libc, so no hook sees it. */
static long raw_execve(const char *path, char *const *argv, char *const *envp) {
#if defined(__x86_64__)
    long r;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(59L), "D"(path), "S"(argv), "d"(envp)
                     : "rcx", "r11", "memory");
    return r;
#else
    (void)path, (void)argv, (void)envp;
    fprintf(stderr, "exec_ab: hook needs x86-64\n");
    _exit(2);
#endif
}

int main(int argc, char **argv) {
    int env_mode = argc == 5 && !strcmp(argv[2], "env");
    if (!env_mode && !(argc == 3 && !strcmp(argv[2], "hook"))) {
        fprintf(stderr, "usage: exec_ab N env VAR=A VAR=B | exec_ab N hook\n");
        return 2;
    }
    int n = atoi(argv[1]);
    if (n < 4) n = 4;
    char **env[2] = {environ, environ};
    if (env_mode) env[0] = environ_with(argv[3]), env[1] = environ_with(argv[4]);
    double *took[2] = {calloc((size_t)n, sizeof(double)), calloc((size_t)n, sizeof(double))};
    char *args[] = {"/bin/true", NULL};
    for (int i = 0; i < n; i++) {
        for (int side = 0; side < 2; side++) {
            double start = now_ns();
            pid_t pid = fork();
            if (pid == 0) {
                if (!env_mode && side == 0)
                    raw_execve(args[0], args, env[side]);
                else
                    execve(args[0], args, env[side]);
                _exit(127);
            }
            int status;
            if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
                WEXITSTATUS(status) != 0) {
                fprintf(stderr, "exec_ab: the child failed\n");
                return 1;
            }
            took[side][i] = now_ns() - start;
        }
    }
    for (int side = 0; side < 2; side++) qsort(took[side], (size_t)n, sizeof(double), by_value);
    const char *a = env_mode ? argv[3] : "raw", *b = env_mode ? argv[4] : "libc execve";
    double d1 = took[1][n / 4] - took[0][n / 4], d2 = took[1][n / 2] - took[0][n / 2],
           d3 = took[1][3 * n / 4] - took[0][3 * n / 4];
    printf("%s %.1f us, %s %.1f us: %+.1f us (quartiles %+.1f %+.1f)\n", a, took[0][n / 2] / 1e3,
           b, took[1][n / 2] / 1e3, d2 / 1e3, d1 / 1e3, d3 / 1e3);
    return 0;
}
