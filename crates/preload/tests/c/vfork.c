/*
 * vfork DENIED: the child execs /bin/true through the hooked execve; the
 * parent then opens the denied file, which must still fail (the notes'
 * reproduction: a re-entrancy flag left set by the child's exec disabled
 * every check in the parent).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    for (volatile int i = 0; i < 50; i++) {
        pid_t pid = vfork();
        if (pid == 0) {
            char *args[] = {"true", NULL};
            execv("/bin/true", args);
            _exit(127);
        }
        int status;
        waitpid(pid, &status, 0);
        errno = 0;
        int fd = open(argv[1], O_RDONLY);
        if (fd >= 0 || errno != EACCES) {
            printf("open after vfork #%d: fd %d errno %d\n", i, fd, errno);
            return 1;
        }
    }
    /* a denied exec in a vfork child reports back and leaves the parent fine */
    pid_t pid = vfork();
    if (pid == 0) {
        char *args[] = {"id", NULL};
        execv("/usr/bin/id", args);
        _exit(errno == EACCES ? 42 : 1);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("ok %d\n", WEXITSTATUS(status));
    return 0;
}
