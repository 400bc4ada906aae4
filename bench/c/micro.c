/* Micro workloads for the ldguard overhead benchmark.
 *
 *   micro WORKLOAD ITERATIONS CHUNKS FILE
 *
 * Runs ITERATIONS calls of WORKLOAD split into CHUNKS timed chunks (after
 * one untimed warm-up chunk) and prints the median chunk's nanoseconds per
 * iteration. Each iteration is one hooked call plus whatever undoes it
 * (close, fclose, wait), so the figure compares like with like across
 * configurations. FILE is an existing regular file (absolute path); the
 * opencold workload opens FILE.0 to FILE.63 in turn, so that a per-path
 * cache of the library cannot answer (each path comes back only after 63
 * others). */
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
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *file;
/* opencold: FILE.0 .. FILE.63, opened in turn. */
#define COLD 64
static char cold[COLD][4096];
static long cold_next;
static int udp = -1;
static struct sockaddr_in udp_peer;

static int fail(const char *what) {
    perror(what);
    exit(3);
}

static void w_open(void) {
    int fd = open(file, O_RDONLY);
    if (fd < 0) fail("open");
    close(fd);
}

/* opendenied: FILE is one the policy denies (each open an event). */
static void w_opendenied(void) {
    int fd = open(file, O_RDONLY);
    if (fd >= 0) fail("open (denied) succeeded");
}

static void w_opencold(void) {
    int fd = open(cold[cold_next++ % COLD], O_RDONLY);
    if (fd < 0) fail("open (cold)");
    close(fd);
}

static void w_stat(void) {
    struct stat st;
    if (stat(file, &st) != 0) fail("stat");
}

static void w_fopen(void) {
    FILE *f = fopen(file, "r");
    if (!f) fail("fopen");
    fclose(f);
}

/* Path calls that are not opens, each on an existing path beside FILE
 * (FILE.0, made by the harness for opencold); the pairs undo themselves. */
static char aside[4096], aside_moved[4096], aside_dir[4096];
static off_t aside_size;

static void w_chmod(void) {
    if (chmod(aside, 0644) != 0) fail("chmod");
}

static void w_truncate(void) {
    if (truncate(aside, aside_size) != 0) fail("truncate");
}

static void w_utimens(void) {
    if (utimensat(AT_FDCWD, aside, NULL, 0) != 0) fail("utimensat");
}

/* Two renames per iteration (there and back). */
static void w_rename(void) {
    if (rename(aside, aside_moved) != 0 || rename(aside_moved, aside) != 0) fail("rename");
}

/* mkdir and rmdir (the rmdir removes a tree: the library decides on it). */
static void w_mkdir(void) {
    if (mkdir(aside_dir, 0755) != 0 || rmdir(aside_dir) != 0) fail("mkdir+rmdir");
}

static void w_udp(void) {
    if (connect(udp, (struct sockaddr *)&udp_peer, sizeof udp_peer) != 0) fail("connect");
}

/* `/bin/true` (through the `/bin` link on merged-/usr systems) or, for
 * the `usr` variants, `/usr/bin/true` (a path without links). */
static char *exec_path = "/bin/true";

static void w_exec(void) {
    pid_t pid = fork();
    if (pid < 0) fail("fork");
    if (pid == 0) {
        char *argv[] = {exec_path, NULL};
        execve(exec_path, argv, environ);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail("fork+exec");
}

static void w_spawn(void) {
    char *argv[] = {exec_path, NULL};
    pid_t pid;
    if (posix_spawn(&pid, exec_path, NULL, NULL, argv, environ) != 0) fail("posix_spawn");
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail("posix_spawn");
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: micro open|opencold|opendenied|stat|fopen|udp|exec|spawn|execusr|spawnusr|chmod|truncate|utimens|rename|mkdir ITERATIONS CHUNKS FILE\n");
        return 2;
    }
    const char *name = argv[1];
    long iters = atol(argv[2]);
    long chunks = atol(argv[3]);
    file = argv[4];
    void (*w)(void) = NULL;
    if (!strcmp(name, "open")) w = w_open;
    else if (!strcmp(name, "opencold")) w = w_opencold;
    else if (!strcmp(name, "opendenied")) w = w_opendenied;
    else if (!strcmp(name, "stat")) w = w_stat;
    else if (!strcmp(name, "fopen")) w = w_fopen;
    else if (!strcmp(name, "udp")) w = w_udp;
    else if (!strcmp(name, "exec")) w = w_exec;
    else if (!strcmp(name, "spawn")) w = w_spawn;
    else if (!strcmp(name, "execusr")) w = w_exec, exec_path = "/usr/bin/true";
    else if (!strcmp(name, "spawnusr")) w = w_spawn, exec_path = "/usr/bin/true";
    else if (!strcmp(name, "chmod")) w = w_chmod;
    else if (!strcmp(name, "truncate")) w = w_truncate;
    else if (!strcmp(name, "utimens")) w = w_utimens;
    else if (!strcmp(name, "rename")) w = w_rename;
    else if (!strcmp(name, "mkdir")) w = w_mkdir;
    if (!w || iters < 1 || chunks < 1 || chunks > 1000) {
        fprintf(stderr, "micro: bad arguments\n");
        return 2;
    }
    for (int i = 0; i < COLD; i++) snprintf(cold[i], sizeof cold[i], "%s.%d", file, i);
    snprintf(aside, sizeof aside, "%s.0", file);
    snprintf(aside_moved, sizeof aside_moved, "%s.0.moved", file);
    snprintf(aside_dir, sizeof aside_dir, "%s.dir", file);
    struct stat aside_st;
    if (stat(aside, &aside_st) == 0) aside_size = aside_st.st_size;
    if (w == w_udp) {
        udp = socket(AF_INET, SOCK_DGRAM, 0);
        if (udp < 0) fail("socket");
        udp_peer.sin_family = AF_INET;
        /* Port 53: the benchmark policy denies outbound UDP to high ports,
         * and a connected UDP socket needs no listener. */
        udp_peer.sin_port = htons(53);
        udp_peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    }
    long per = iters / chunks;
    if (per < 1) per = 1;
    for (long i = 0; i < per; i++) w(); /* warm-up: lazy resolution, caches */
    double times[1000];
    for (long c = 0; c < chunks; c++) {
        double t0 = now_ns();
        for (long i = 0; i < per; i++) w();
        times[c] = (now_ns() - t0) / per;
    }
    qsort(times, chunks, sizeof times[0], cmp);
    printf("%.1f\n", times[chunks / 2]);
    return 0;
}
