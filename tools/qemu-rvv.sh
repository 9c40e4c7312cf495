#!/bin/sh
# Run a riscv64 Linux program under qemu-user with RVV 1.0: the exe_wrapper of the
# riscv64 cross build (cross/riscv64-clang.txt).
#
#   SI_QEMU_VLEN     vector length in bits (default 128, the K230's; 256 for the second run)
#   SI_QEMU_PLUGIN   a TCG plugin to load (bench: instruction counts), e.g. path/libsiinsn.so
#   SI_QEMU_LD_PREFIX  riscv64 sysroot (default /usr/riscv64-linux-gnu, Debian's cross libc)
#
# It exports SI_EXE_WRAPPER=itself: tests that start other programs of the build
# (stream-infer, mkmodel) prefix their commands with it, since qemu-user cannot exec a
# riscv64 binary from inside the guest on a host without binfmt_misc.
here=$(cd "$(dirname "$0")" && pwd)
SI_EXE_WRAPPER="$here/qemu-rvv.sh"
export SI_EXE_WRAPPER
vlen=${SI_QEMU_VLEN:-128}
cpu="rv64,v=true,vlen=$vlen,elen=64,vext_spec=v1.0,zba=true,zbb=true,Zfh=true"
if [ -n "$SI_QEMU_PLUGIN" ]; then
    exec qemu-riscv64 -L "${SI_QEMU_LD_PREFIX:-/usr/riscv64-linux-gnu}" -cpu "$cpu" -plugin "$SI_QEMU_PLUGIN" "$@"
fi
exec qemu-riscv64 -L "${SI_QEMU_LD_PREFIX:-/usr/riscv64-linux-gnu}" -cpu "$cpu" "$@"
