/* own_unlink PATH: a program that defines its own `unlink` (exported with
 * -rdynamic, so it is the first definition in the global scope) and calls
 * it on PATH. Prints "own" when its definition ran and exits 0. */
#include <stdio.h>

int unlink(const char *path) {
    printf("own %s\n", path);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    return unlink(argv[1]);
}
