/* dlopen(argv[1]) and report: "loaded", or "error: " and dlerror(). */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    void *h = dlopen(argv[1], RTLD_NOW);
    if (h == NULL) {
        const char *e = dlerror();
        printf("error: %s\n", e ? e : "(no dlerror)");
        return 1;
    }
    printf("loaded\n");
    return 0;
}
