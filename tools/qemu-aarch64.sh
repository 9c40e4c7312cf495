#!/bin/sh
# Run an aarch64 Linux program under qemu-user: the exe_wrapper of the aarch64 cross
# build (cross/aarch64-clang.txt, tools/build-aarch64.sh).
#
#   SI_QEMU_CPU        CPU model (default cortex-a72: ARMv8.0 Advanced SIMD, no dot
#                      product; max: everything qemu has, dot product included)
#   SI_QEMU_PLUGIN     a TCG plugin to load (bench: instruction counts)
#   SI_QEMU_LD_PREFIX  aarch64 sysroot (default /usr/aarch64-linux-gnu, Debian's cross libc)
#
# LD_PRELOAD and SI_EMULATED are handled as in tools/qemu-rvv.sh (see there).
SI_EMULATED="qemu-user aarch64, ${SI_QEMU_CPU:-cortex-a72}"
export SI_EMULATED
set -- -L "${SI_QEMU_LD_PREFIX:-/usr/aarch64-linux-gnu}" -cpu "${SI_QEMU_CPU:-cortex-a72}" "$@"
if [ -n "$LD_PRELOAD" ]; then
    set -- -E "LD_PRELOAD=$LD_PRELOAD" "$@"
    unset LD_PRELOAD
fi
if [ -n "$SI_QEMU_PLUGIN" ]; then
    set -- -plugin "$SI_QEMU_PLUGIN" "$@"
fi
exec qemu-aarch64 "$@"
