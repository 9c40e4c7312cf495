#!/usr/bin/env bash
# A cross build in one command: packages, meson setup with the cross file and the qemu
# exe_wrapper, compile. tools/build-riscv64.sh and tools/build-aarch64.sh call it;
# `meson test -C BUILD_DIR` then runs the tests under qemu-user.
#
#   tools/cross-build.sh riscv64|aarch64 BUILD_DIR [extra meson options]
#
# Both builds are clang-19 linking against Debian's cross gcc libraries and binutils
# (cross/ARCH-clang.txt), and disable io_uring and zstd (-Dio_uring=disabled
# -Dzstd=disabled): qemu-user implements no io_uring syscalls, so the pread backend is
# what runs under emulation anyway, and packs with zstd frames are a PC-side feature
# not needed by the tests. Everything else is the C library.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 riscv64|aarch64 BUILD_DIR [meson options]" >&2; exit 2; }
src=$(cd "$(dirname "$0")/.." && pwd)
arch=$1
build=$2
shift 2
case $arch in
riscv64) triple=riscv64-linux-gnu libc_pkg=libc6-dev-riscv64-cross wrapper=qemu-rvv.sh ;;
aarch64) triple=aarch64-linux-gnu libc_pkg=libc6-dev-arm64-cross wrapper=qemu-aarch64.sh ;;
*) echo "$0: unknown architecture '$arch' (riscv64, aarch64)" >&2; exit 2 ;;
esac

need=()
for c in clang-19 llvm-ar-19 "$triple-gcc" "qemu-$arch" meson ninja; do
    command -v "$c" >/dev/null || need+=("$c")
done
[ -e "/usr/$triple/lib/libc.so.6" ] || need+=(libc)
if [ ${#need[@]} -gt 0 ]; then
    sudo=$(command -v sudo || true)
    [ "$(id -u)" = 0 ] || [ -n "$sudo" ] || { echo "missing: ${need[*]} (and no root to install)" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y clang-19 lld-19 llvm-19 "gcc-$triple" "$libc_pkg" qemu-user meson ninja-build
fi

# the exe_wrapper by absolute path (a machine file cannot name it relative to itself
# in meson 1.0)
mkdir -p "$build"
wrap=$(cd "$build" && pwd)/qemu-wrapper.txt
printf "[binaries]\nexe_wrapper = ['%s/tools/%s']\n" "$src" "$wrapper" > "$wrap"
opts=(--cross-file "$src/cross/$arch-clang.txt" --cross-file "$wrap" -Dio_uring=disabled -Dzstd=disabled "$@")
if [ -d "$build/meson-private" ]; then
    meson setup --reconfigure "${opts[@]}" "$build" "$src"
else
    meson setup "${opts[@]}" "$build" "$src"
fi
ninja -C "$build" -j"${SI_JOBS:-2}"
