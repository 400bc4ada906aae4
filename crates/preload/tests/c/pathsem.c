/*
 * pathsem: the corner cases of the path calls the library makes itself on
 * a held descriptor (unlink, rmdir, rename, link, mkdir, mknod, symlink,
 * truncate, chmod, chown, utimensat, utimes, setxattr, removexattr), one
 * result per line (ok or errno, and what the call changed), so a run under
 * the library can be compared line by line with a run without it. Runs in
 * an empty scratch directory given as argv[1].
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

static void show(const char *what, int r) {
    if (r < 0)
        printf("%s: err %d\n", what, errno);
    else
        printf("%s: ok\n", what);
}

static void state(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        printf("  %s: err %d\n", path, errno);
        return;
    }
    /* A set time is small (utimes, utimensat below); any other is now. */
    long long mtime = st.st_mtim.tv_sec < 100 ? (long long)st.st_mtim.tv_sec : -1;
    printf("  %s: mode %o size %lld nlink %ld mtime %lld\n", path, st.st_mode,
           (long long)st.st_size, (long)st.st_nlink, mtime);
}

static void put(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    write(fd, "data\n", 5);
    close(fd);
}

int main(int argc, char **argv) {
    if (argc != 2 || chdir(argv[1]) != 0) {
        fprintf(stderr, "usage: pathsem EMPTY-DIR\n");
        return 2;
    }
    umask(022);
    mkdir("d", 0755);
    mkdir("d/sub", 0755);
    mkdir("e", 0755);
    put("d/f");
    put("d/sub/g");
    symlink("d/f", "lf");
    symlink("d", "ld");
    symlink("d/new", "dangling");
    symlink("loop2", "loop1");
    symlink("loop1", "loop2");
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    const struct timespec epoch[2] = {{0, 0}, {0, 0}};
    const struct timeval tv[2] = {{1, 0}, {2, 0}};
    int dirfd = open("d", O_RDONLY | O_DIRECTORY);

    /* Removing names. */
    show("unlink missing", unlink("d/none"));
    show("unlink in missing dir", unlink("none/f"));
    show("unlink dir", unlink("d/sub"));
    show("unlink file/", unlink("d/f/"));
    show("unlink through file", unlink("d/f/x"));
    show("unlink loop", unlink("loop1/x"));
    show("unlink long", unlink(longname));
    show("unlink empty", unlink(""));
    show("unlink dangling link", unlink("dangling"));
    state("dangling");
    show("unlink via ld", unlink("ld/sub/g"));
    state("d/sub/g");
    show("unlinkat dirfd", unlinkat(dirfd, "f", 0));
    state("d/f");
    put("d/f");
    show("rmdir non-empty", rmdir("d"));
    show("rmdir dot", rmdir("d/sub/."));
    show("rmdir dotdot", rmdir("d/sub/.."));
    show("rmdir file", rmdir("d/f"));
    show("rmdir link to dir", rmdir("ld"));
    show("rmdir link/", rmdir("ld/"));
    show("rmdir sub/", rmdir("d/sub/"));
    state("d/sub");
    show("rmdir /", rmdir("/"));
    show("unlinkat removedir", unlinkat(AT_FDCWD, "e", AT_REMOVEDIR));
    mkdir("e", 0755);

    /* Making names. */
    show("mkdir exists", mkdir("d", 0755));
    show("mkdir in missing", mkdir("none/x", 0755));
    show("mkdir trailing", mkdir("e/x/", 0700));
    state("e/x");
    show("mkdir through ld", mkdir("ld/m", 0750));
    state("d/m");
    show("mkdir dangling", mkdir("dangling", 0755));
    show("mkdirat dirfd", mkdirat(dirfd, "n", 0755));
    state("d/n");
    show("symlink exists", symlink("x", "lf"));
    show("symlink new", symlink("x", "e/s"));
    state("e/s");
    show("symlinkat dirfd", symlinkat("y", dirfd, "s2"));
    state("d/s2");
    show("mknod fifo", mknod("e/fifo", S_IFIFO | 0600, 0));
    state("e/fifo");
    show("mknod exists", mknod("e/fifo", S_IFIFO | 0600, 0));

    /* Moving and linking. */
    show("rename missing", rename("d/none", "e/x2"));
    show("rename file", rename("d/f", "e/f2"));
    state("e/f2");
    show("rename back through ld", rename("e/f2", "ld/f"));
    state("d/f");
    show("rename onto dir", rename("d/f", "d/sub"));
    show("rename dir into itself", rename("d", "d/sub/x"));
    show("rename file/", rename("d/f/", "e/f3"));
    show("rename to trailing", rename("d/f", "e/f3/"));
    show("rename dot", rename("d/sub/.", "e/z"));
    show("renameat2 noreplace", renameat2(AT_FDCWD, "e/s", AT_FDCWD, "e/fifo", RENAME_NOREPLACE));
    show("renameat2 exchange", renameat2(AT_FDCWD, "e/s", AT_FDCWD, "e/fifo", RENAME_EXCHANGE));
    state("e/s");
    state("e/fifo");
    show("link new", link("d/f", "e/h"));
    state("d/f");
    show("link exists", link("d/f", "e/h"));
    show("link dir", link("d/sub", "e/dl"));
    show("link symlink", link("lf", "e/ll"));
    state("e/ll");
    show("linkat follow", linkat(AT_FDCWD, "lf", AT_FDCWD, "e/lf2", AT_SYMLINK_FOLLOW));
    state("e/lf2");
    show("linkat follow dangling", linkat(AT_FDCWD, "dangling", AT_FDCWD, "e/x9", AT_SYMLINK_FOLLOW));
    show("link missing", link("d/none", "e/x8"));

    /* Changing objects. */
    show("chmod missing", chmod("d/none", 0600));
    show("chmod dangling", chmod("dangling", 0600));
    show("chmod loop", chmod("loop1", 0600));
    show("chmod through link", chmod("lf", 0640));
    state("d/f");
    show("chmod dir", chmod("ld", 0700));
    state("d");
    show("fchmodat nofollow file", fchmodat(AT_FDCWD, "d/f", 0600, AT_SYMLINK_NOFOLLOW));
    show("fchmodat nofollow link", fchmodat(AT_FDCWD, "lf", 0600, AT_SYMLINK_NOFOLLOW));
    show("fchmodat bad flag", fchmodat(AT_FDCWD, "d/f", 0600, 0x8000));
    state("d/f");
    show("chown same", chown("lf", getuid(), getgid()));
    show("lchown link", lchown("lf", getuid(), getgid()));
    show("fchownat nofollow", fchownat(dirfd, "f", -1, -1, AT_SYMLINK_NOFOLLOW));
    show("chown missing", chown("none", 0, 0));
    show("truncate", truncate("lf", 2));
    state("d/f");
    show("truncate dir", truncate("d", 0));
    show("truncate negative", truncate("d/f", -1));
    show("truncate file/", truncate("d/f/", 0));
    show("truncate missing", truncate("d/none", 0));
    show("truncate negative missing", truncate("d/none", -1));
    show("truncate fifo", truncate("e/fifo", 0));
    show("utimensat", utimensat(AT_FDCWD, "lf", epoch, 0));
    state("d/f");
    show("utimensat nofollow", utimensat(AT_FDCWD, "lf", epoch, AT_SYMLINK_NOFOLLOW));
    show("utimensat missing", utimensat(AT_FDCWD, "none", NULL, 0));
    show("utimensat bad flag", utimensat(AT_FDCWD, "d/f", NULL, 0x8000));
    const struct timespec bad[2] = {{0, 2000000000L}, {0, 0}};
    show("utimensat bad time missing", utimensat(AT_FDCWD, "none", bad, 0));
    const struct timeval badtv[2] = {{0, 2000000L}, {0, 0}};
    show("utimes bad time missing", utimes("none", badtv));
    show("utimes", utimes("d/f", tv));
    state("d/f");
    show("lutimes", lutimes("lf", tv));
    show("setxattr", setxattr("lf", "user.t", "v", 1, 0));
    show("setxattr create again", setxattr("lf", "user.t", "v", 1, XATTR_CREATE));
    show("lsetxattr link", lsetxattr("lf", "user.t", "v", 1, 0));
    show("removexattr", removexattr("d/f", "user.t"));
    show("removexattr again", removexattr("d/f", "user.t"));
    show("setxattr missing", setxattr("none", "user.t", "v", 1, 0));
    show("setxattr bad flags missing", setxattr("none", "user.t", "v", 1, 0x100));
    show("setxattr empty name missing", setxattr("none", "", "v", 1, 0));
    show("renameat2 bad flags missing", renameat2(AT_FDCWD, "none", AT_FDCWD, "none2", 0x80));
    show("renameat2 both flags missing", renameat2(AT_FDCWD, "none", AT_FDCWD, "none2", RENAME_NOREPLACE | RENAME_EXCHANGE));
    show("unlinkat bad flags missing", unlinkat(AT_FDCWD, "none/x", 0x4));
    show("linkat bad flags missing", linkat(AT_FDCWD, "none", AT_FDCWD, "none2", 0x2));
    show("fchownat bad flags missing", fchownat(AT_FDCWD, "none", 0, 0, 0x2));
    return 0;
}
