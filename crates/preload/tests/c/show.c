/*
 * show: prints what a program can see of how it was started: its
 * arguments, /proc/self/exe, comm, the descriptors open (beyond 0-2) and
 * the environment variable MARK.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    char exe[4096] = {0};
    if (readlink("/proc/self/exe", exe, sizeof exe - 1) < 0) strcpy(exe, "?");
    printf("exe=%s\n", exe);
    FILE *f = fopen("/proc/self/comm", "r");
    char comm[64] = "?";
    if (f && fgets(comm, sizeof comm, f)) comm[strcspn(comm, "\n")] = 0;
    if (f) fclose(f);
    printf("comm=%s\n", comm);
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    printf("fds=");
    while (d && (e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd > 2 && fd != dirfd(d)) printf("%d ", fd);
    }
    if (d) closedir(d);
    const char *mark = getenv("MARK");
    printf("\nMARK=%s\n", mark ? mark : "(unset)");
    return 0;
}
