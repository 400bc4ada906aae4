# Sourced by bench/exec-faults and bench/exec-attribution (from the
# checkout's root): the libraries their rows compare.

# The build scripts/bench measures on this host: the glibc 2.34-baseline one
# where the host's glibc is 2.34 or newer (the 2.17 one also loads libpthread
# and libdl, 10 faults and 8 system calls more per process).
bench_default_library() {
    local host_glibc
    host_glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
    if [ -n "$host_glibc" ] && [ "$(printf '%s\n2.34\n' "$host_glibc" | sort -V | head -1)" = 2.34 ] &&
        [ -e target/dist/x86_64-linux-gnu/glibc-2.34/libldguard.so ]; then
        echo target/dist/x86_64-linux-gnu/glibc-2.34/libldguard.so
    else
        echo target/dist/x86_64-linux-gnu/libldguard.so
    fi
}

# bench_empty_library DIR: builds DIR/empty.so, a library with no code (what
# preloading anything costs), and prints its path.
bench_empty_library() {
    echo '/* preloaded to measure the loader alone */' > "$1/empty.c"
    cc -shared -fPIC -O2 -o "$1/empty.so" "$1/empty.c"
    echo "$1/empty.so"
}
