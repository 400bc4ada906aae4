/*
 * signals SECONDS DENIED ALLOWED: a 20 kHz timer signal whose handler calls
 * open/close while the main thread loops in open/stat (so the signal often
 * lands inside a hook). Must not crash or deadlock; results must be sane:
 * the handler's opens of the allowed file always succeed, and the main
 * thread's opens of the denied file always fail with EACCES.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *denied, *allowed;
static volatile sig_atomic_t handled, handler_bad;

static void on_alarm(int sig) {
    (void)sig;
    int saved = errno;
    int fd = open(allowed, O_RDONLY);
    if (fd < 0) handler_bad++;
    else close(fd);
    handled++;
    errno = saved;
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    int seconds = atoi(argv[1]);
    denied = argv[2];
    allowed = argv[3];
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 50}, {0, 50}};
    setitimer(ITIMER_REAL, &it, NULL);
    time_t end = time(NULL) + seconds;
    long loops = 0, bad = 0;
    while (time(NULL) < end) {
        errno = 0;
        int fd = open(denied, O_RDONLY);
        if (fd >= 0 || errno != EACCES) bad++;
        fd = open(allowed, O_RDONLY);
        if (fd < 0) bad++;
        else close(fd);
        loops++;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    if (bad || handler_bad || handled < 100) printf("bad %ld handler_bad %d handled %d\n", bad, handler_bad, handled);
    else printf("ok %ld %d\n", loops, handled);
    return 0;
}
