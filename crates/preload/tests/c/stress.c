/*
 * stress SECONDS DENIED ALLOWED: 16 threads open/close/stat (and now and
 * then open the denied file, which must fail with EACCES) while the main
 * thread forks and execs /bin/true. Checks that no descriptor leaks and
 * prints "ok <opens> <forks>" at the end. Any crash, hang or wrong result
 * shows up as a missing "ok".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *denied, *allowed;
static atomic_int stop;
static atomic_long opens, wrong;

static int count_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

static void *worker(void *arg) {
    long i = 0;
    (void)arg;
    while (!atomic_load(&stop)) {
        int fd = open(allowed, O_RDONLY);
        if (fd < 0) atomic_fetch_add(&wrong, 1);
        else close(fd);
        struct stat st;
        if (stat(allowed, &st) != 0) atomic_fetch_add(&wrong, 1);
        if (++i % 64 == 0) {
            errno = 0;
            int bad = open(denied, O_RDONLY);
            if (bad >= 0 || errno != EACCES) {
                atomic_fetch_add(&wrong, 1);
                if (bad >= 0) close(bad);
            }
        }
        atomic_fetch_add(&opens, 1);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    int seconds = atoi(argv[1]);
    denied = argv[2];
    allowed = argv[3];
    int fds_before = count_fds();
    pthread_t t[16];
    for (int i = 0; i < 16; i++) pthread_create(&t[i], NULL, worker, NULL);
    time_t end = time(NULL) + seconds;
    long forks = 0;
    while (time(NULL) < end) {
        pid_t pid = fork();
        if (pid == 0) {
            /* the child opens too (fresh pipeline after fork), then execs */
            int fd = open(denied, O_RDONLY);
            if (fd >= 0 || errno != EACCES) _exit(9);
            execl("/bin/true", "true", (char *)NULL);
            _exit(8);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            printf("child failed: status %d\n", status);
            atomic_fetch_add(&wrong, 1);
        }
        forks++;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 16; i++) pthread_join(t[i], NULL);
    int fds_after = count_fds();
    /* the library keeps no descriptor of its own for a file sink (it opens
       the event file for each line): none may be left over */
    if (fds_after != fds_before) printf("fd leak: %d -> %d\n", fds_before, fds_after);
    else if (atomic_load(&wrong)) printf("wrong results: %ld\n", atomic_load(&wrong));
    else printf("ok %ld %ld\n", atomic_load(&opens), forks);
    return 0;
}
