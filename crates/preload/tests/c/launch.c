/*
 * launch MODE PATH ARGS...: runs PATH with argv ARGS (ARGS[0] is argv[0])
 * the way MODE says: execv, execve, execvp (PATH searched along $PATH),
 * spawn (posix_spawn, waited for), spawnp (posix_spawnp, waited for),
 * execveat-at (execveat from a descriptor of PATH's directory, left open
 * across the exec, and its last name), execveat-nofollow (execveat with
 * AT_SYMLINK_NOFOLLOW), spawn-closefrom (posix_spawn whose file actions
 * close every descriptor from 3 up).
 * Prints "err N" when the exec or spawn fails; a spawned child's exit
 * status becomes launch's. Descriptor 5 is left open (not close-on-exec)
 * for the program to see, as a program's own descriptors are.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: launch MODE PATH ARGV0 ARGS...\n");
        return 2;
    }
    const char *mode = argv[1], *path = argv[2];
    char **args = argv + 3;
    if (dup2(1, 5) != 5) return 3;
    fflush(stdout);
    if (strcmp(mode, "execv") == 0) execv(path, args);
    else if (strcmp(mode, "execve") == 0) execve(path, args, environ);
    else if (strcmp(mode, "execvp") == 0) execvp(path, args);
    else if (strcmp(mode, "execveat-nofollow") == 0)
        execveat(AT_FDCWD, path, args, environ, AT_SYMLINK_NOFOLLOW);
    else if (strcmp(mode, "execveat-at") == 0) {
        char dir[4096];
        const char *slash = strrchr(path, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) + 1 : 1, slash ? path : ".");
        int fd = open(dir, O_PATH | O_DIRECTORY);
        if (fd < 0) {
            printf("err %d\n", errno);
            return 0;
        }
        execveat(fd, slash ? slash + 1 : path, args, environ, 0);
    } else if (strncmp(mode, "spawn", 5) == 0) {
        pid_t pid;
        posix_spawn_file_actions_t closing, *actions = NULL;
        if (strcmp(mode, "spawn-closefrom") == 0) {
            posix_spawn_file_actions_init(&closing);
            posix_spawn_file_actions_addclosefrom_np(&closing, 3);
            actions = &closing;
        }
        int e = strcmp(mode, "spawnp") == 0 ? posix_spawnp(&pid, path, actions, NULL, args, environ)
                                            : posix_spawn(&pid, path, actions, NULL, args, environ);
        if (e != 0) {
            printf("err %d\n", e);
            return 0;
        }
        int status = 0;
        waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    } else {
        fprintf(stderr, "launch: unknown mode %s\n", mode);
        return 2;
    }
    printf("err %d\n", errno);
    return 0;
}
