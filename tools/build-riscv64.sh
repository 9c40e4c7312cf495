#!/usr/bin/env bash
# The whole riscv64 build in one command: packages, meson setup with the cross file,
# compile. Then `meson test -C BUILD_DIR` runs the tests under qemu-user (VLEN 128;
# `SI_QEMU_VLEN=256 meson test -C BUILD_DIR` for VLEN 256).
#
#   tools/build-riscv64.sh BUILD_DIR [extra meson options, e.g. -Drv_zba=true]
#
# Dependencies: the riscv64 build disables io_uring and zstd (-Dio_uring=disabled
# -Dzstd=disabled): qemu-user implements no io_uring syscalls, so the pread backend is
# what runs under emulation anyway, and packs with zstd frames are a PC-side feature
# not needed by the tests. Everything else is the C library.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [meson options]" >&2; exit 2; }
src=$(cd "$(dirname "$0")/.." && pwd)
build=$1
shift

need=()
for c in clang-19 llvm-ar-19 riscv64-linux-gnu-gcc qemu-riscv64 meson ninja; do
    command -v "$c" >/dev/null || need+=("$c")
done
[ -e /usr/riscv64-linux-gnu/lib/libc.so.6 ] || need+=(libc)
if [ ${#need[@]} -gt 0 ]; then
    sudo=$(command -v sudo || true)
    [ "$(id -u)" = 0 ] || [ -n "$sudo" ] || { echo "missing: ${need[*]} (and no root to install)" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y clang-19 lld-19 llvm-19 gcc-riscv64-linux-gnu libc6-dev-riscv64-cross qemu-user meson ninja-build
fi

# the exe_wrapper by absolute path (a machine file cannot name it relative to itself
# in meson 1.0)
mkdir -p "$build"
wrap=$(cd "$build" && pwd)/qemu-wrapper.txt
printf "[binaries]\nexe_wrapper = ['%s/tools/qemu-rvv.sh']\n" "$src" > "$wrap"
opts=(--cross-file "$src/cross/riscv64-clang.txt" --cross-file "$wrap" -Dio_uring=disabled -Dzstd=disabled "$@")
if [ -d "$build/meson-private" ]; then
    meson setup --reconfigure "${opts[@]}" "$build" "$src"
else
    meson setup "${opts[@]}" "$build" "$src"
fi
ninja -C "$build" -j"${SI_JOBS:-2}"
