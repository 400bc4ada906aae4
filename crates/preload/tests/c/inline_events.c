/*
 * inline_events DENIED OWN THREADS EACH: makes denied opens of DENIED (each
 * one an event) in every way a program can:
 *  - from the main thread, then reports whether the process is still
 *    single-threaded (/proc/self/task entries, glibc's __libc_single_threaded),
 *  - from a signal handler that interrupts the main thread's own denied opens,
 *  - from a forked child and from a vfork child (EACH each),
 *  - after closing every descriptor above 2 (close_range) and putting OWN,
 *    a file of the program's, on the numbers a library would pick
 *    (dup2 onto 3..1023): OWN must stay empty,
 *  - from THREADS threads at once (EACH each), last, as they make the
 *    process multi-threaded for good.
 * Prints "tasks=N single=S refused=R" (R: denied opens refused with EACCES).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char __libc_single_threaded;

static const char *denied;
static long each;
static long refused;

static void deny_once(void) {
    int saved = errno;
    int fd = open(denied, O_RDONLY);
    if (fd >= 0) close(fd);
    else if (errno == EACCES) __atomic_add_fetch(&refused, 1, __ATOMIC_SEQ_CST);
    errno = saved;
}

static void on_signal(int sig) {
    (void)sig;
    deny_once();
}

static int tasks(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    if (d) closedir(d);
    return n;
}

static void *worker(void *arg) {
    (void)arg;
    for (long i = 0; i < each; i++) deny_once();
    return NULL;
}

static int wait_ok(pid_t pid) {
    int status = 0;
    return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* In a function of its own: the child leaves with _exit, never returning
 * through a frame the parent still uses. */
static __attribute__((noinline)) int vfork_child_denies(void) {
    pid_t child = vfork();
    if (child == 0) {
        for (long i = 0; i < each; i++) deny_once();
        _exit(0);
    }
    return wait_ok(child);
}

int main(int argc, char **argv) {
    if (argc != 5) return 2;
    denied = argv[1];
    const char *own = argv[2];
    int threads = atoi(argv[3]);
    each = atol(argv[4]);

    for (long i = 0; i < each; i++) deny_once();
    int n_tasks = tasks();
    int single = __libc_single_threaded;

    /* Signals that interrupt the main thread's own denied opens. */
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    for (long i = 0; i < each; i++) {
        raise(SIGUSR1);
        deny_once();
    }

    pid_t child = fork();
    if (child == 0) {
        for (long i = 0; i < each; i++) deny_once();
        _exit(0);
    }
    if (!wait_ok(child)) return 3;
    if (!vfork_child_denies()) return 4;

    /* A daemon's clean-up: every descriptor above 2 closed, then the
     * program's own file on every number a library might have kept. */
    int ownfd = open(own, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (ownfd < 0) return 5;
    if (ownfd != 3 && dup2(ownfd, 3) != 3) return 6;
    syscall(SYS_close_range, 4, ~0U, 0);
    for (int fd = 4; fd < 1024; fd++) dup2(3, fd);
    for (long i = 0; i < each; i++) deny_once();
    for (int fd = 4; fd < 1024; fd++) close(fd);

    pthread_t t[64];
    if (threads > 64) threads = 64;
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);

    printf("tasks=%d single=%d refused=%ld\n", n_tasks, single, refused);
    return 0;
}
