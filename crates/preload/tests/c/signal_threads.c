/*
 * signal_threads DENIED ALLOWED ROUNDS THREADS: a signal handler that opens
 * DENIED,
 * run every way an attacker can make it run:
 *  - sent with tgkill to each of the library's own threads (found by their
 *    names in /proc/self/task/<tid>/comm),
 *  - sent with tgkill to the main thread while it is inside a hook that is
 *    deciding (it loops opening DENIED),
 *  - sent to the process.
 * Prints what the handler's opens did, and how many library threads it found
 * (it waits up to 10 s for THREADS of them).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static const char *denied;
static long handled, refused, leaked, other;
static volatile int stop;
static pid_t main_tid;

static void on_signal(int sig) {
    (void)sig;
    int saved = errno;
    int fd = open(denied, O_RDONLY);
    if (fd >= 0) {
        __atomic_add_fetch(&leaked, 1, __ATOMIC_SEQ_CST);
        close(fd);
    } else if (errno == EACCES) {
        __atomic_add_fetch(&refused, 1, __ATOMIC_SEQ_CST);
    } else {
        __atomic_add_fetch(&other, 1, __ATOMIC_SEQ_CST);
    }
    __atomic_add_fetch(&handled, 1, __ATOMIC_SEQ_CST);
    errno = saved;
}

static int tgkill_(pid_t tid, int sig) { return syscall(SYS_tgkill, getpid(), tid, sig); }

static int library_threads(pid_t *tids, int max) {
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d)) && n < max) {
        if (e->d_name[0] == '.') continue;
        char path[300], comm[32] = {0};
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        ssize_t r = read(fd, comm, sizeof comm - 1);
        close(fd);
        if (r > 0 && strncmp(comm, "ldguard-", 8) == 0) tids[n++] = atoi(e->d_name);
    }
    if (d) closedir(d);
    return n;
}

static void *hammer(void *arg) {
    (void)arg;
    struct timespec ts = {0, 20000};
    while (!stop) {
        tgkill_(main_tid, SIGUSR1);
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 5) return 2;
    denied = argv[1];
    const char *allowed = argv[2];
    int rounds = atoi(argv[3]);
    int want = atoi(argv[4]);
    main_tid = syscall(SYS_gettid);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);

    /* Hooked calls after the refresh interval (1 s here) start the
     * refresher; an HTTP event sink would start the event writer too. */
    long main_bad = 0;
    if (open(denied, O_RDONLY) >= 0 || errno != EACCES) main_bad++;
    for (int i = 0; i < 200; i++) {
        int fd = open(allowed, O_RDONLY);
        if (fd >= 0) close(fd);
    }
    pid_t tids[8];
    int n = 0;
    for (int i = 0; i < 1000 && (n = library_threads(tids, 8)) < want; i++) usleep(10000);

    struct timespec ts = {0, 50000};
    for (int t = 0; t < n; t++)
        for (int i = 0; i < rounds; i++) {
            tgkill_(tids[t], SIGUSR1);
            nanosleep(&ts, NULL);
        }

    pthread_t h;
    pthread_create(&h, NULL, hammer, NULL);
    for (int i = 0; i < rounds * 20; i++) {
        errno = 0;
        int fd = open(denied, O_RDONLY);
        if (fd >= 0 || errno != EACCES) main_bad++;
        if (fd >= 0) close(fd);
    }
    stop = 1;
    pthread_join(h, NULL);

    for (int i = 0; i < rounds; i++) {
        kill(getpid(), SIGUSR1);
        nanosleep(&ts, NULL);
    }
    usleep(100000);
    printf("threads=%d handled=%ld refused=%ld leaked=%ld other=%ld main_bad=%ld\n", n,
           __atomic_load_n(&handled, __ATOMIC_SEQ_CST), __atomic_load_n(&refused, __ATOMIC_SEQ_CST),
           __atomic_load_n(&leaked, __ATOMIC_SEQ_CST), __atomic_load_n(&other, __ATOMIC_SEQ_CST),
           main_bad);
    return 0;
}
