/*
 * opensem: the corner cases of open, fopen and opendir, one result per
 * line (descriptor number or errno, created file modes, descriptor flags),
 * so a run under the library can be compared line by line with a run
 * without it. Runs in an empty scratch directory given as argv[1].
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void show(const char *what, int fd) {
    if (fd < 0) {
        printf("%s: err %d\n", what, errno);
        return;
    }
    int cloexec = fcntl(fd, F_GETFD) & FD_CLOEXEC;
    int fl = fcntl(fd, F_GETFL) & (O_ACCMODE | O_APPEND | O_NONBLOCK);
    printf("%s: fd %d cloexec %d flags %o\n", what, fd, cloexec, fl);
    close(fd);
}

static void show_file(const char *what, FILE *f) {
    if (!f) {
        printf("%s: err %d\n", what, errno);
        return;
    }
    show(what, dup(fileno(f)));
    fclose(f);
}

static void mode_of(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        printf("mode %s: err %d\n", path, errno);
        return;
    }
    printf("mode %s: %o size %lld\n", path, st.st_mode, (long long)st.st_size);
}

int main(int argc, char **argv) {
    if (argc != 2 || chdir(argv[1]) != 0) {
        fprintf(stderr, "usage: opensem EMPTY-DIR\n");
        return 2;
    }
    umask(022);
    mkdir("d", 0755);
    mkdir("d/sub", 0755);
    int w = open("d/f", O_WRONLY | O_CREAT, 0644);
    write(w, "data\n", 5);
    close(w);
    symlink("d/f", "lf");
    symlink("d", "ld");
    symlink("d/new", "dangling");
    symlink("d/new2", "dangling2");
    symlink("loop2", "loop1");
    symlink("loop1", "loop2");
    symlink("d/sub/..", "ldotdot");
    char abs[4096];
    getcwd(abs, sizeof abs);

    show("plain", open("d/f", O_RDONLY));
    show("missing", open("d/nope", O_RDONLY));
    show("through link", open("lf", O_RDONLY));
    show("through dir link", open("ld/f", O_RDWR));
    show("dotdot after link", open("ldotdot/f", O_RDONLY));
    show("create", open("d/c1", O_WRONLY | O_CREAT, 0640));
    mode_of("d/c1");
    show("create excl existing", open("d/c1", O_WRONLY | O_CREAT | O_EXCL, 0600));
    show("create excl via link", open("lf", O_WRONLY | O_CREAT | O_EXCL, 0600));
    show("create excl via dangling", open("dangling", O_WRONLY | O_CREAT | O_EXCL, 0600));
    show("create via dangling", open("dangling", O_WRONLY | O_CREAT, 0604));
    mode_of("d/new");
    show("create in linked dir", open("ld/c2", O_RDWR | O_CREAT | O_TRUNC, 0666));
    mode_of("d/c2");
    show("create rdonly", open("d/c3", O_RDONLY | O_CREAT, 0600));
    mode_of("d/c3");
    show("trunc via link", open("lf", O_WRONLY | O_TRUNC));
    mode_of("d/f");
    show("append cloexec", open("ld/c2", O_WRONLY | O_APPEND | O_CLOEXEC));
    show("nofollow on link", open("lf", O_RDONLY | O_NOFOLLOW));
    show("nofollow in linked dir", open("ld/f", O_RDONLY | O_NOFOLLOW));
    show("directory on file", open("d/f", O_RDONLY | O_DIRECTORY));
    show("directory via link", open("ld", O_RDONLY | O_DIRECTORY));
    show("write a directory", open("d", O_WRONLY));
    show("create with slash", open("d/newdir/", O_WRONLY | O_CREAT, 0644));
    show("file with slash", open("d/f/", O_RDONLY));
    show("loop", open("loop1", O_RDONLY));
    show("tmpfile", open("d", O_TMPFILE | O_RDWR, 0600));
    show("tmpfile via link", open("ld", O_TMPFILE | O_WRONLY, 0600));
    show("tmpfile rdonly", open("d", O_TMPFILE | O_RDONLY, 0600));
    show("nonblock", open("d/f", O_RDONLY | O_NONBLOCK));
    int dfd = open("ld", O_RDONLY | O_DIRECTORY);
    show("openat dirfd", openat(dfd, "sub/../f", O_RDONLY));
    show("openat dirfd link", openat(dfd, "../lf", O_RDONLY));
    char proc[64];
    int f = open("d/f", O_RDONLY);
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", f);
    show("proc fd", open(proc, O_RDONLY));
    close(f);
    close(dfd);
    /* The lowest free descriptor, also through the pinned path. */
    close(0);
    show("lowest via link", open("lf", O_RDONLY));
    close(0);
    show("lowest create via dangling", open("dangling", O_RDONLY | O_CREAT, 0600));
    char absf[4200];
    snprintf(absf, sizeof absf, "%s/lf", abs);
    show("absolute via link", open(absf, O_RDONLY));

    show_file("fopen r", fopen("lf", "r"));
    show_file("fopen missing", fopen("d/nope", "r"));
    show_file("fopen w", fopen("d/fw", "w"));
    mode_of("d/fw");
    show_file("fopen a+ via link", fopen("lf", "a+"));
    show_file("fopen wx existing", fopen("d/fw", "wx"));
    show_file("fopen re", fopen("d/f", "re"));
    show_file("fopen bad mode", fopen("d/f", "q"));
    show_file("fopen ccs", fopen("d/f", "r,ccs=UTF-8"));
    /* freopen: the stream reused (stdout keeps descriptor 1), each mode,
     * a failed open closing the stream, through a link and a dangling one. */
    FILE *f1 = fopen("d/f", "r");
    show_file("freopen w", freopen("d/fre", "w", f1));
    mode_of("d/fre");
    f1 = fopen("d/f", "r");
    show_file("freopen a+ via link", freopen("lf", "a+", f1));
    f1 = fopen("d/f", "r");
    show_file("freopen wx existing", freopen("d/fre", "wx", f1));
    f1 = fopen("d/f", "r");
    show_file("freopen wxe new", freopen("d/frx", "wxe", f1));
    f1 = fopen("d/f", "r");
    show_file("freopen missing", freopen("d/nope", "r", f1));
    f1 = fopen("d/f", "r");
    show_file("freopen via dangling", freopen("dangling2", "w", f1));
    f1 = fopen("d/f", "r");
    show_file("freopen bad mode", freopen("d/f", "q", f1));
    f1 = fopen("d/f", "r");
    FILE *again = freopen("d/fre", "r+", f1);
    printf("freopen keeps the stream: %d\n", again == f1);
    if (again)
        fclose(again);
    fflush(stdout);
    int saved = dup(1);
    FILE *out = freopen("d/out", "w", stdout);
    int out_fd = out ? fileno(out) : -1;
    fprintf(stdout, "to the file\n");
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    printf("freopen stdout: fd %d\n", out_fd);
    char line[64] = "";
    FILE *back = fopen("d/out", "r");
    if (back) {
        if (!fgets(line, sizeof line, back))
            line[0] = 0;
        fclose(back);
    }
    printf("stdout went to: %s", line);
    DIR *dir = opendir("ld");
    printf("opendir via link: %s\n", dir ? "ok" : strerror(errno));
    if (dir) {
        int n = 0;
        while (readdir(dir))
            n++;
        printf("entries %d\n", n);
        closedir(dir);
    }
    dir = opendir("d/f");
    printf("opendir on file: %s\n", dir ? "ok" : strerror(errno));
    if (dir)
        closedir(dir);
    show("creat via link", creat("lf", 0600));
    mode_of("d/f");
    return 0;
}
