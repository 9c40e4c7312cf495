#!/usr/bin/env bash
# The whole riscv64 build in one command: packages, meson setup with the cross file,
# compile (tools/cross-build.sh). Then `meson test -C BUILD_DIR` runs the tests under
# qemu-user (VLEN 128; `SI_QEMU_VLEN=256 meson test -C BUILD_DIR` for VLEN 256).
#
#   tools/build-riscv64.sh BUILD_DIR [extra meson options, e.g. -Drv_zba=true]
#
# Dependencies: the riscv64 build disables io_uring and zstd (see tools/cross-build.sh).
# Everything else is the C library.
exec "$(dirname "$0")/cross-build.sh" riscv64 "$@"
