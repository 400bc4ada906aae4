# Sourced by scripts/bench (from the checkout's root).
# Debian 12's valgrind (3.19) answers openat2 with ENOSYS, so under it every
# checked open of the library takes its fallback route and callgrind counts
# the wrong path. Debian 13's valgrind (3.24) knows openat2. Its package is
# fetched with apt from Debian's archive into a private apt state (nothing
# is installed or configured system-wide; apt checks the archive's
# signature) and unpacked into target/valgrind-openat2/, which the
# benchmark uses when it is there (bench/src/callgrind.rs).
valgrind_openat2_dir=target/valgrind-openat2
valgrind_openat2_version=1:3.24.0-3

valgrind_openat2_install() {
    [ -x "$valgrind_openat2_dir/usr/bin/valgrind.bin" ] && return 0
    [ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ] || return 0
    local state
    state=$(mktemp -d)
    mkdir -p "$state/lists/partial" "$state/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" >"$state/sources.list"
    local opts=(-o "Dir::Etc::sourcelist=$state/sources.list" -o Dir::Etc::sourceparts=-
        -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache" -o APT::Sandbox::User=root)
    if apt-get "${opts[@]}" -qq update &&
        (cd "$state" && apt-get "${opts[@]}" -qq download "valgrind=$valgrind_openat2_version"); then
        mkdir -p "$valgrind_openat2_dir"
        dpkg-deb -x "$state"/valgrind_*.deb "$valgrind_openat2_dir"
        echo "bench: valgrind $valgrind_openat2_version (knows openat2) unpacked into $valgrind_openat2_dir"
    else
        echo "bench: could not fetch valgrind $valgrind_openat2_version; callgrind counts the library's openat2 fallback" >&2
    fi
    rm -rf "$state"
}
