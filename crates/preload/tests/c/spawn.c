/*
 * Spawn and PATH-search routes (tests/scenarios):
 *   spawn spawn-open PATH          posix_spawn cat with stdin opened from PATH
 *   spawn spawn-open-chdir DIR REL the same after an addchdir_np(DIR)
 *   spawn spawnp NAME [ARGS...]    posix_spawnp NAME along PATH
 *   spawn execvp NAME [ARGS...]    execvp NAME along PATH
 * Prints the child's output, or "error: " and the errno text.
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

static int wait_for(int r, pid_t pid) {
    if (r != 0) {
        printf("error: %s\n", strerror(r));
        return 1;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3)
        return 2;
    const char *op = argv[1];
    pid_t pid = 0;
    if (strcmp(op, "spawn-open") == 0 || strcmp(op, "spawn-open-chdir") == 0) {
        int chdir_first = strcmp(op, "spawn-open-chdir") == 0;
        if (chdir_first && argc < 4)
            return 2;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        if (chdir_first)
            posix_spawn_file_actions_addchdir_np(&fa, argv[2]);
        posix_spawn_file_actions_addopen(&fa, 0, argv[chdir_first ? 3 : 2], O_RDONLY, 0);
        char *cat_argv[] = {"cat", NULL};
        int r = posix_spawn(&pid, "/bin/cat", &fa, NULL, cat_argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        return wait_for(r, pid);
    }
    if (strcmp(op, "spawnp") == 0)
        return wait_for(posix_spawnp(&pid, argv[2], NULL, NULL, argv + 2, environ), pid);
    if (strcmp(op, "execvp") == 0) {
        execvp(argv[2], argv + 2);
        printf("error: %s\n", strerror(errno));
        return 1;
    }
    return 2;
}
