#!/bin/sh
# meson install into a temporary destdir, then, as a user of the installed library
# would: build each example of examples/ with cc and pkg-config alone (PKG_CONFIG_PATH
# into the destdir), check that the installed headers compile on their own, run the
# examples on models (an mkmodel model, its pack, and the tiny-trained fixture when
# $SI_FIXTURES has it) and compare their output with the installed stream-infer's.
#
#   install-examples.sh MESON [CFLAGS]   (SI_SOURCE_ROOT, SI_BUILD_ROOT, SI_FIXTURES: the
#                                         test env; CFLAGS: a sanitized build's -fsanitize=)
set -eu
meson=$1
extra=${2:-}
src=$SI_SOURCE_ROOT build=$SI_BUILD_ROOT
for p in cc pkg-config; do
    command -v "$p" >/dev/null || { echo "skip: no $p on PATH"; exit 77; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root

"$meson" install -C "$build" --no-rebuild --destdir "$root" --quiet > "$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; exit 1; }
pc=$(find "$root" -name streaminfer.pc | head -n 1)
[ -n "$pc" ] || { echo "no streaminfer.pc installed" >&2; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
bindir=$(dirname "$(find "$root" -path '*/bin/stream-infer' | head -n 1)")
for f in "$libdir/libstreaminfer.so" "$libdir/libstreaminfer.a" "$bindir/mkmodel" "$bindir/repack"; do
    [ -e "$f" ] || { echo "not installed: $f" >&2; exit 1; }
done

export PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$root"
cflags=$(pkg-config --cflags streaminfer)
libs=$(pkg-config --libs streaminfer)
echo "pkg-config: $cflags $libs"

# every installed header compiles alone, as C11 and as C++ when there is a compiler
incdir=$(find "$root" -type d -path '*/include/streaminfer' | head -n 1)
for h in "$incdir"/*.h; do
    printf '#include <streaminfer/%s>\nint main(void) { return 0; }\n' "$(basename "$h")" > "$tmp/h.c"
    cc -std=c11 -Wall -Wextra -Werror -fsyntax-only $cflags "$tmp/h.c" ||
        { echo "$(basename "$h") does not compile alone" >&2; exit 1; }
done

for ex in generate batch stream_pack; do
    cc -std=c11 -O2 -Wall -Wextra -Werror $extra -o "$tmp/$ex" "$src/examples/$ex.c" $cflags $libs
done
export LD_LIBRARY_PATH="$libdir"
ldd "$tmp/generate" | grep -q "$libdir/libstreaminfer.so.0" ||
    { echo "the examples do not load the installed libstreaminfer.so.0:" >&2; ldd "$tmp/generate" >&2; exit 1; }

models="$tmp/mk.gguf"
"$bindir/mkmodel" -o "$tmp/mk.gguf" > /dev/null 2>&1
fixture=${SI_FIXTURES:-}/tiny-trained/Q2_K.gguf
if [ -n "${SI_FIXTURES:-}" ] && [ -f "$fixture" ]; then
    models="$models $fixture"
else
    echo "note: no fixture at \$SI_FIXTURES/tiny-trained/Q2_K.gguf; examples run on an mkmodel model only"
fi

fail=0
check() { # WHAT EXPECTED ACTUAL
    if cmp -s "$2" "$3"; then
        echo "ok: $1"
    else
        echo "DIFFERENT: $1" >&2
        diff "$2" "$3" | head -n 20 >&2 || true
        fail=1
    fi
}
n=0
for m in $models; do
    n=$((n + 1))
    p1="Once upon a time" p2="The little dog"
    si() { "$bindir/stream-infer" -m "$1" -p "$2" -n "$3" --temp 0 -q; }
    si "$m" "$p1" 24 > "$tmp/want1"
    "$tmp/generate" "$m" "$p1" 24 > "$tmp/got1" 2> "$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
    check "generate on $(basename "$m")" "$tmp/want1" "$tmp/got1"

    { printf '[0] '; si "$m" "$p1" 16; printf '[1] '; si "$m" "$p2" 16; printf '[2] '; si "$m" "$p1" 8; } > "$tmp/want2"
    "$tmp/batch" "$m" 16 "$p1" "$p2" > "$tmp/got2" 2> "$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
    # a third request of another length: batch takes one N for all, so run it apart
    "$tmp/batch" "$m" 8 "$p1" | sed 's/^\[0\]/[2]/' >> "$tmp/got2"
    check "batch on $(basename "$m")" "$tmp/want2" "$tmp/got2"

    "$bindir/repack" "$m" "$tmp/m$n.pack" -q > /dev/null 2>&1
    si "$tmp/m$n.pack" "$p1" 24 > "$tmp/want3"
    "$tmp/stream_pack" "$tmp/m$n.pack" "$p1" 24 > "$tmp/got3" 2> "$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
    check "stream_pack on a pack of $(basename "$m")" "$tmp/want3" "$tmp/got3"
    check "the pack and its GGUF" "$tmp/want1" "$tmp/want3"
done
exit $fail
