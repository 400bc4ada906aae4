#!/usr/bin/env bash
# Builds the base images the ldguard tests use, from Debian suites, with
# debootstrap + podman import. Cached: an image that podman already has is not
# built again (pass --rebuild to force). Prints one line per image:
#   NAME SUITE
# Images: localhost/ldguard-test/bookworm (python3, curl, nginx-light),
#         localhost/ldguard-test/bullseye, localhost/ldguard-test/trixie.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"
mirror="${LDGUARD_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
rebuild=0
suites=()
for a in "$@"; do
    case "$a" in
        --rebuild) rebuild=1 ;;
        bookworm|bullseye|trixie) suites+=("$a") ;;
        *) echo "build.sh: unknown argument '$a' (expected --rebuild, bookworm, bullseye or trixie)" >&2; exit 2 ;;
    esac
done
[ ${#suites[@]} -gt 0 ] || suites=(bookworm bullseye trixie)

packages_for() {
    case "$1" in
        bookworm) echo "python3,curl,nginx-light" ;;
        *) echo "" ;;
    esac
}

# One lock so parallel test processes do not debootstrap the same suite twice.
lock="/var/tmp/ldguard-test-images.lock"
exec 9>"$lock"
flock 9

for suite in "${suites[@]}"; do
    name="localhost/ldguard-test/$suite:latest"
    if [ "$rebuild" -eq 0 ] && podman image exists "$name"; then
        echo "$name $suite"
        continue
    fi
    root="$(mktemp -d /var/tmp/ldguard-rootfs-$suite.XXXXXX)"
    trap 'rm -rf "$root"' EXIT
    include="$(packages_for "$suite")"
    args=(--variant=minbase)
    [ -z "$include" ] || args+=("--include=$include")
    echo "build.sh: debootstrap $suite (about a minute)" >&2
    if ! debootstrap "${args[@]}" "$suite" "$root" "$mirror" >"$root.log" 2>&1; then
        echo "build.sh: debootstrap $suite failed; last lines of $root.log:" >&2
        tail -20 "$root.log" >&2
        exit 1
    fi
    rm -f "$root.log"
    # Caches and logs make the image bigger and vary between builds.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
    tar --numeric-owner -C "$root" -c . | podman import --change 'CMD ["/bin/sh"]' - "$name" >/dev/null
    rm -rf "$root"
    trap - EXIT
    echo "$name $suite"
done
