/* tiny FILE: open(FILE) and print "ok" or "err N" (built for musl too). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) printf("err %d\n", errno);
    else printf("ok\n");
    return 0;
}
