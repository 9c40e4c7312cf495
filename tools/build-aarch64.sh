#!/usr/bin/env bash
# The whole aarch64 build in one command: packages, meson setup with the cross file,
# compile. Then `meson test -C BUILD_DIR` runs the tests under qemu-user
# (tools/qemu-aarch64.sh: a Cortex-A72 by default, SI_QEMU_CPU=max for one with the
# dot product).
#
#   tools/build-aarch64.sh BUILD_DIR [extra meson options]
#
# Dependencies: as the riscv64 build (tools/build-riscv64.sh), io_uring and zstd are
# disabled (qemu-user implements no io_uring syscalls; zstd packs are a PC-side
# feature). Everything else is the C library.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [meson options]" >&2; exit 2; }
src=$(cd "$(dirname "$0")/.." && pwd)
build=$1
shift

need=()
for c in clang-19 llvm-ar-19 aarch64-linux-gnu-gcc qemu-aarch64 meson ninja; do
    command -v "$c" >/dev/null || need+=("$c")
done
[ -e /usr/aarch64-linux-gnu/lib/libc.so.6 ] || need+=(libc)
if [ ${#need[@]} -gt 0 ]; then
    sudo=$(command -v sudo || true)
    [ "$(id -u)" = 0 ] || [ -n "$sudo" ] || { echo "missing: ${need[*]} (and no root to install)" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y clang-19 lld-19 llvm-19 gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user meson ninja-build
fi

mkdir -p "$build"
wrap=$(cd "$build" && pwd)/qemu-wrapper.txt
printf "[binaries]\nexe_wrapper = ['%s/tools/qemu-aarch64.sh']\n" "$src" > "$wrap"
opts=(--cross-file "$src/cross/aarch64-clang.txt" --cross-file "$wrap" -Dio_uring=disabled -Dzstd=disabled "$@")
if [ -d "$build/meson-private" ]; then
    meson setup --reconfigure "${opts[@]}" "$build" "$src"
else
    meson setup "${opts[@]}" "$build" "$src"
fi
ninja -C "$build" -j"${SI_JOBS:-2}"
