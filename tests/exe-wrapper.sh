#!/bin/sh
# Write OUT: an executable script that runs PROGRAM under WRAPPER with its arguments.
# A cross build hands these to the tests instead of the programs themselves, so a test
# that starts mkmodel or stream-infer (system, popen, exec) runs it under qemu: the
# host cannot exec a riscv64 binary without binfmt_misc.
#   exe-wrapper.sh OUT WRAPPER PROGRAM
set -e
printf '#!/bin/sh\nexec '\''%s'\'' '\''%s'\'' "$@"\n' "$2" "$3" > "$1"
chmod +x "$1"
