/* exec_heap: the bytes malloc holds before and after an exec of a missing
 * file (the exec hook runs its whole check, then the real exec fails), as
 * "before after". A check that allocates shows as a difference. */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <unistd.h>

int main(void) {
    char *argv[] = {"missing", NULL};
    char *envp[] = {NULL};
    size_t before = mallinfo2().uordblks;
    int rc = execve("/nonexistent/ldguard-exec-heap", argv, envp);
    int err = errno;
    size_t after = mallinfo2().uordblks;
    if (rc != -1 || err != ENOENT) {
        printf("exec returned %d errno %d\n", rc, err);
        return 1;
    }
    printf("%zu %zu\n", before, after);
    return 0;
}
