/* A program whose own constructor opens the denied file, then main does. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ctor_errno = -1;

__attribute__((constructor)) static void ctor(void) {
    errno = 0;
    int fd = open(getenv("EARLY_DENIED"), O_RDONLY);
    ctor_errno = fd >= 0 ? 0 : errno;
}

int main(void) {
    errno = 0;
    int fd = open(getenv("EARLY_DENIED"), O_RDONLY);
    printf("ctor=%s main=%s\n", ctor_errno ? strerror(ctor_errno) : "ok", fd >= 0 ? "ok" : strerror(errno));
    return 0;
}
