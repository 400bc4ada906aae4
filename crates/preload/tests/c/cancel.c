/*
 * cancel: open is a cancellation point; under the library (which performs
 * a checked open itself) it must stay one, exactly as libc's. One result
 * per line, compared with a run without the library. argv[1] is an empty
 * scratch directory.
 *
 *   self     a process with no other thread cancels itself, then opens
 *   pending  a thread with a cancellation already pending opens a file
 *   blocked  a thread blocked in open (a FIFO without a writer) is
 *            cancelled
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char file[4096], fifo[4096];
static sem_t cancelled_by_main;
/* Set right after open returns (no cancellation point in between), so the
 * cleanup handler can tell a cancellation at open from a later one. */
static volatile int returned;

static void say(const char *s) {
    if (write(1, s, strlen(s)) < 0) _exit(3);
}

static void on_cancel(void *what) {
    say((const char *)what);
    say(returned ? " after open returned\n" : " at open\n");
}

static void *pending(void *arg) {
    (void)arg;
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    sem_wait(&cancelled_by_main);
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
    pthread_cleanup_push(on_cancel, "pending: cancelled");
    int fd = open(file, O_RDONLY);
    returned = 1;
    say(fd >= 0 ? "pending: open returned a descriptor\n" : "pending: open failed\n");
    pthread_cleanup_pop(0);
    return NULL;
}

static void *blocked(void *arg) {
    (void)arg;
    pthread_cleanup_push(on_cancel, "blocked: cancelled");
    int fd = open(fifo, O_RDONLY);
    returned = 1;
    say(fd >= 0 ? "blocked: open returned\n" : "blocked: open failed\n");
    pthread_cleanup_pop(0);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: cancel EMPTY-DIR\n");
        return 2;
    }
    snprintf(file, sizeof file, "%s/file", argv[1]);
    snprintf(fifo, sizeof fifo, "%s/fifo", argv[1]);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || close(fd) != 0 || mkfifo(fifo, 0644) != 0) {
        perror("setup");
        return 2;
    }

    /* self: in a child that has no other thread. */
    pid_t pid = fork();
    if (pid == 0) {
        pthread_cleanup_push(on_cancel, "self: cancelled");
        pthread_cancel(pthread_self());
        fd = open(file, O_RDONLY); /* the first cancellation point */
        returned = 1;
        say("self: open returned\n");
        pthread_cleanup_pop(0);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);

    /* pending */
    returned = 0;
    pthread_t t;
    sem_init(&cancelled_by_main, 0, 0);
    pthread_create(&t, NULL, pending, NULL);
    pthread_cancel(t);
    sem_post(&cancelled_by_main);
    void *res;
    pthread_join(t, &res);
    say(res == PTHREAD_CANCELED ? "pending: joined, cancelled\n" : "pending: joined, not cancelled\n");

    /* blocked */
    returned = 0;
    pthread_create(&t, NULL, blocked, NULL);
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    pthread_cancel(t);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    if (pthread_timedjoin_np(t, &res, &deadline) != 0) {
        say("blocked: still blocked after the cancel\n");
        /* Release it so the process can end. */
        int w = open(fifo, O_WRONLY);
        pthread_join(t, &res);
        if (w >= 0) close(w);
    }
    say(res == PTHREAD_CANCELED ? "blocked: joined, cancelled\n" : "blocked: joined, not cancelled\n");
    return 0;
}
