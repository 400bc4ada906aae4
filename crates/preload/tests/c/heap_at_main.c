/* heap_at_main: the bytes malloc holds when main starts, that is what the
 * library's start-up left allocated (the program itself allocated nothing). */
#include <malloc.h>
#include <stdio.h>

int main(void) {
    printf("%zu\n", mallinfo2().uordblks);
    return 0;
}
