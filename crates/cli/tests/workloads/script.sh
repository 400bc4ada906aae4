#!/bin/bash
# The shell-script workload of the learning round trip: coreutils and tar
# on a fresh temporary directory. `script.sh normal` is the recorded
# workload; the other modes add one new behaviour each.
set -eu
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/docs" "$work/out"
for i in 1 2 3 4 5; do
    echo "line $i" > "$work/src/docs/file$i.txt"
done
date -u +%Y > "$work/src/year"
cp "$work/src/docs/file1.txt" "$work/src/copy.txt"
sort -r "$work/src/docs/file3.txt" "$work/src/docs/file2.txt" > "$work/src/sorted.txt"
tar -C "$work" -czf "$work/archive.tar.gz" src
tar -C "$work/out" -xzf "$work/archive.tar.gz"
ls -R "$work/out" > /dev/null
wc -l "$work"/out/src/docs/*.txt | tail -n 1
cat "$work/out/src/sorted.txt" | head -n 1
sha256sum "$work/archive.tar.gz" > /dev/null
case "${1:-normal}" in
    normal) ;;
    shell) /bin/sh -c 'echo from a new shell' ;;
    connect) exec 3<>"/dev/tcp/127.0.0.1/$2" ;;
    etc) echo x > /etc/ldguard-learn-test ;;
    *) echo "unknown mode $1" >&2; exit 2 ;;
esac
