#!/bin/sh
# io-bench with several files: each read alone, then together, every file's bytes in
# the CSV (alone and together rows), the sum line on stdout; a missing file is an error.
# usage: io-bench-together.sh IO_BENCH
set -eu
bench=$1
# in a cross build meson runs this script natively: io-bench goes through its emulator
run() { ${MESON_EXE_WRAPPER:+$MESON_EXE_WRAPPER} "$@"; }
dir=${SI_BUILD_ROOT:-/tmp}/io-bench-together
rm -rf "$dir" && mkdir -p "$dir"
head -c 8388608 /dev/urandom > "$dir/a.bin"
head -c 6291456 /dev/urandom > "$dir/b.bin"
run "$bench" -q --max-bytes 4M "$dir/a.bin" "$dir/b.bin" --csv "$dir/r.csv" > "$dir/out.txt"
grep -q '^sum ' "$dir/out.txt" || { echo "no sum line"; cat "$dir/out.txt"; exit 1; }
for t in alone together; do
    for f in a b; do
        grep -q "^$t,[a-z]*,auto,1048576,8,4194304,[0-9.]*,[0-9.]*,\"$dir/$f.bin\"\$" "$dir/r.csv" ||
            { echo "no $t row with 4 MiB for $f.bin"; cat "$dir/r.csv"; exit 1; }
    done
done
if run "$bench" -q --max-bytes 4M "$dir/a.bin" "$dir/missing.bin" > "$dir/err.txt" 2>&1; then
    echo "a missing file was accepted"; exit 1
fi
grep -q "missing.bin" "$dir/err.txt" || { echo "the error does not name the file"; cat "$dir/err.txt"; exit 1; }
echo "io-bench reads several files alone and together"
