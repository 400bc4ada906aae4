/* namespaced LIB PATH: loads LIB (libldguard.so) with dlmopen into a new
 * link namespace, as a program that isolates a library does, and opens
 * PATH with the `open` that LIB exports there (the library's own libc
 * calls resolve within that namespace). Prints "ok" or
 * "denied <errno name>" (or "error: ..." when LIB cannot be loaded) and
 * exits 0, 1 or 2. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

typedef int (*open_fn)(const char *, int, ...);
typedef int *(*errno_fn)(void);

int main(int argc, char **argv) {
    if (argc != 3)
        return 2;
    void *lib = dlmopen(LM_ID_NEWLM, argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        printf("error: %s\n", dlerror());
        return 2;
    }
    /* That namespace's libc: the library's errno is its errno. */
    Lmid_t ns;
    void *libc = NULL;
    if (dlinfo(lib, RTLD_DI_LMID, &ns) != 0 ||
        !(libc = dlmopen(ns, "libc.so.6", RTLD_NOW | RTLD_NOLOAD))) {
        printf("error: %s\n", dlerror());
        return 2;
    }
    open_fn hooked_open = (open_fn)dlsym(lib, "open");
    errno_fn ns_errno = (errno_fn)dlsym(libc, "__errno_location");
    if (!hooked_open || !ns_errno) {
        printf("error: %s\n", dlerror());
        return 2;
    }
    if (hooked_open(argv[2], O_RDONLY) >= 0) {
        printf("ok\n");
        return 0;
    }
    printf("denied %s\n", strerrorname_np(*ns_errno()));
    return 1;
}
