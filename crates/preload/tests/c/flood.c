/*
 * flood CHEAP IMPORTANT COUNT: COUNT denied reads of CHEAP as fast as
 * possible, then one denied write of IMPORTANT; prints how many of the
 * reads were refused (in permissive mode none are).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    long count = atol(argv[3]), refused = 0;
    for (long i = 0; i < count; i++) {
        int fd = open(argv[1], O_RDONLY);
        if (fd >= 0) close(fd);
        else if (errno == EACCES) refused++;
    }
    int fd = open(argv[2], O_WRONLY);
    printf("refused=%ld important=%s\n", refused, fd >= 0 ? "opened" : "refused");
    if (fd >= 0) close(fd);
    return 0;
}
