/* hook_address PATH: a program built without PIE that takes the address of
 * `open` (the executable then holds the canonical address of the function,
 * and every other object must bind to it) and opens PATH through it.
 * Prints "ok" or "denied <errno name>" and exits 0 or 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

int (*volatile open_pointer)(const char *, int, ...);

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    /* Taken in code: non-PIC code loads the address as a constant, so the
     * linker gives `open` a canonical address in the executable. */
    open_pointer = open;
    if (open_pointer(argv[1], O_RDONLY) >= 0) {
        printf("ok\n");
        return 0;
    }
    printf("denied %s\n", strerrorname_np(errno));
    return 1;
}
