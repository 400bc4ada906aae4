/*
 * A shared library whose constructor opens files before libldguard.so's
 * own constructor has run (later preloads are initialised first), and
 * writes what happened to stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((constructor)) static void early(void) {
    const char *denied = getenv("EARLY_DENIED");
    const char *allowed = getenv("EARLY_ALLOWED");
    if (!denied || !allowed) return;
    char line[128];
    errno = 0;
    int a = open(allowed, O_RDONLY);
    int e1 = errno;
    errno = 0;
    int d = open(denied, O_RDONLY);
    int e2 = errno;
    int n = snprintf(line, sizeof line, "early allowed=%s denied=%s\n", a >= 0 ? "ok" : strerror(e1),
                     d >= 0 ? "ok" : strerror(e2));
    if (write(1, line, n) < 0) _exit(3);
    if (a >= 0) close(a);
    if (d >= 0) close(d);
}
