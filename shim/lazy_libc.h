/* The functions of lazy_libc.c, one LAZY(name) each; crates/preload/build.rs
 * reads this list for the matching `--wrap=name` link arguments.
 * LAZY_2_34: functions std references weakly (it tests them for NULL and
 * falls back), sent here only in the glibc 2.34-baseline build, which runs
 * only where libc has them all. */
LAZY(abort)
LAZY(calloc)
LAZY(clock_gettime)
LAZY(clock_nanosleep)
LAZY(close)
LAZY(closedir)
LAZY(dirfd)
LAZY(dl_iterate_phdr)
LAZY(fstat64)
LAZY(fstatat64)
LAZY(fsync)
LAZY(getcwd)
LAZY(getenv)
LAZY(getpid)
LAZY(lseek64)
LAZY(lstat64)
LAZY(memcmp)
LAZY(mmap64)
LAZY(munmap)
LAZY(posix_memalign)
LAZY(pread64)
LAZY(pthread_key_create)
LAZY(pthread_key_delete)
LAZY(pthread_setspecific)
LAZY(read)
LAZY(readdir64)
LAZY(readlink)
LAZY(realpath)
LAZY(setenv)
LAZY(stat64)
LAZY(write)
LAZY(writev)
LAZY(__xpg_strerror_r)
/* The library's own hooks, as std and ldguard-source call them (std's
 * `open64`, `opendir`, `mkdir`, `rename`, `unlink`, `syscall`; `dlopen`):
 * looked up in the global scope on first use, as before at load, so the
 * first definition still wins for the library's own calls too (a
 * program's own, or our hook). Not made `protected` instead: glibc then
 * warns on the stderr of every non-PIE program that takes a hook's
 * address ("may break pointer equality"). */
LAZY(dlopen)
LAZY(mkdir)
LAZY(open64)
LAZY(opendir)
LAZY(rename)
LAZY(syscall)
LAZY(unlink)
LAZY_2_34(__cxa_thread_atexit_impl)
LAZY_2_34(gettid)
LAZY_2_34(statx)
