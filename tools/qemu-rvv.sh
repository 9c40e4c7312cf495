#!/bin/sh
# Run a riscv64 Linux program under qemu-user with RVV 1.0: the exe_wrapper of the
# riscv64 cross build (cross/riscv64-clang.txt).
#
#   SI_QEMU_VLEN     vector length in bits (default 128, the K230's; 256, 512), or 0 for
#                    a CPU without V (the baseline build then runs without the RVV set)
#   SI_QEMU_PLUGIN   a TCG plugin to load (bench: instruction counts), e.g. path/libsiinsn.so
#   SI_QEMU_LD_PREFIX  riscv64 sysroot (default /usr/riscv64-linux-gnu, Debian's cross libc)
#
# Tests that start other programs of the build get scripts that run them through this
# one (tests/meson.build, tests/exe-wrapper.sh): the host cannot exec riscv64 binaries.
# LD_PRELOAD names a riscv64 library (tests/pack/flaky_read.c): it is handed to the
# guest's loader with -E and taken out of qemu's own environment. The host shells on
# the way (this script, the wrapper script) still print a "cannot be preloaded" line
# on stderr, and ignore it.
#
# It exports SI_EMULATED (read by tests/test_util.h): the end-to-end tests, a thousand
# times slower here than natively, then run a lighter variant and say what they leave
# to the native run.
vlen=${SI_QEMU_VLEN:-128}
# (exported as well: tests/kernels/test_kernel_pick.c reads which CPU it runs on)
SI_QEMU_VLEN=$vlen
if [ "$vlen" = 0 ]; then
    SI_EMULATED="qemu-user riscv64, no V"
    cpu="rv64,v=false,zba=true,zbb=true,Zfh=true"
else
    SI_EMULATED="qemu-user riscv64, VLEN $vlen"
    cpu="rv64,v=true,vlen=$vlen,elen=64,vext_spec=v1.0,zba=true,zbb=true,Zfh=true"
fi
export SI_EMULATED SI_QEMU_VLEN
set -- -L "${SI_QEMU_LD_PREFIX:-/usr/riscv64-linux-gnu}" -cpu "$cpu" "$@"
if [ -n "$LD_PRELOAD" ]; then
    set -- -E "LD_PRELOAD=$LD_PRELOAD" "$@"
    unset LD_PRELOAD
fi
if [ -n "$SI_QEMU_PLUGIN" ]; then
    set -- -plugin "$SI_QEMU_PLUGIN" "$@"
fi
exec qemu-riscv64 "$@"
