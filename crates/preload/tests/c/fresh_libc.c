/* fresh_libc PATH: reads PATH through a second copy of libc loaded with
 * dlmopen into a new link namespace, where no preloaded library runs (the
 * loader preloads only into the base namespace). Prints "ok" or
 * "denied <errno name>" (or "error: ..." when the second libc cannot be
 * loaded) and exits 0, 1 or 2. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

typedef int (*open_fn)(const char *, int, ...);
typedef int *(*errno_fn)(void);

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    void *libc = dlmopen(LM_ID_NEWLM, "libc.so.6", RTLD_NOW | RTLD_LOCAL);
    if (!libc) {
        printf("error: %s\n", dlerror());
        return 2;
    }
    open_fn fresh_open = (open_fn)dlsym(libc, "open");
    errno_fn fresh_errno = (errno_fn)dlsym(libc, "__errno_location");
    if (!fresh_open || !fresh_errno) {
        printf("error: %s\n", dlerror());
        return 2;
    }
    if (fresh_open(argv[1], O_RDONLY) >= 0) {
        printf("ok\n");
        return 0;
    }
    printf("denied %s\n", strerrorname_np(*fresh_errno()));
    return 1;
}
