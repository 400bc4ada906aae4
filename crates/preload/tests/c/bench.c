/*
 * bench ITERATIONS FILE: ns per open+close and per stat of FILE, the
 * minimum over 20 chunks (the least disturbed), printed as
 * "open_close <ns>\nstat <ns>".
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    long n = atol(argv[1]) / 20;
    const char *file = argv[2];
    double best_open = 1e18, best_stat = 1e18;
    for (int chunk = 0; chunk < 20; chunk++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++) close(open(file, O_RDONLY));
        double t1 = now_ns();
        struct stat st;
        for (long i = 0; i < n; i++) stat(file, &st);
        double t2 = now_ns();
        if ((t1 - t0) / n < best_open) best_open = (t1 - t0) / n;
        if ((t2 - t1) / n < best_stat) best_stat = (t2 - t1) / n;
    }
    printf("open_close %.0f\nstat %.0f\n", best_open, best_stat);
    return 0;
}
