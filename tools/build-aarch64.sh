#!/usr/bin/env bash
# The whole aarch64 build in one command: packages, meson setup with the cross file,
# compile (tools/cross-build.sh). Then `meson test -C BUILD_DIR` runs the tests under
# qemu-user (tools/qemu-aarch64.sh: a Cortex-A72 by default, SI_QEMU_CPU=max for one
# with the dot product).
#
#   tools/build-aarch64.sh BUILD_DIR [extra meson options]
#
# Dependencies: as the riscv64 build, io_uring and zstd are disabled (see
# tools/cross-build.sh). Everything else is the C library.
exec "$(dirname "$0")/cross-build.sh" aarch64 "$@"
