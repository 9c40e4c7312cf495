#!/bin/bash
# envelope.sh: run a command inside a K230-like envelope on any Linux PC.
#
#   bench/envelope.sh [--bw MBPS] [--mem MIB] [--file PATH]... [options] -- COMMAND...
#   bench/envelope.sh --bw 25 --file A --bw2 40 --file2 B [options] -- COMMAND...
#
# - copies each --file onto a fresh ext4 file system on a loop device (backed by an
#   image file with direct I/O, so the host's page cache does not serve the reads);
# - throttles that device's reads to MBPS (1 MB = 10^6 bytes; default 25, the K230's
#   SD card; 0 = unthrottled);
# - drops the page cache (sync; echo 3 > /proc/sys/vm/drop_caches);
# - runs COMMAND with ENVELOPE_DIR set to the mount point (where the copies are), in a
#   memory cgroup of MIB MiB (default 448: the board's 512 MB less what Linux and its
#   own processes keep; page cache counted; no swap), whose reads of the device are
#   throttled;
# - with --file2 (two-device mode, a striped pack's members on an SD card and a USB
#   disk): a second loop device, its own image, file system and throttle (--bw2),
#   mounted at ENVELOPE_DIR2, so each device is limited alone and both read at once;
# - reports the cgroup's peak memory, whether anything was OOM-killed, and the bytes
#   the cgroup read from the device, on stderr (and as key=value lines with --summary).
#
# Works with cgroup v1 (memory.limit_in_bytes, blkio.throttle.read_bps_device) and v2
# (memory.max, io.max). Needs root, loop devices, losetup, mkfs.ext4. Cleans up (the
# command's leftover processes, cgroups, mount, loop device, image) on every exit path.
# Exit status: the command's (128+N when killed by signal N); 2 for usage errors; 3
# when the machine cannot provide the envelope.
set -u -o pipefail

PROG=envelope.sh
BW=25
BW2=
MEM=448
FILES=()
FILES2=()
IMAGE_DIR=${ENVELOPE_IMAGE_DIR:-${TMPDIR:-/var/tmp}}
SUMMARY=
CG_MODE=auto
IMAGE_MIB=
READ_AHEAD=128
QUIET=0

usage() {
    cat <<EOF
usage: $PROG [--bw MBPS] [--mem MIB] [--file PATH]... [options] -- COMMAND [ARG]...

Run COMMAND like on a Kendryte K230: its files on a block device whose reads are
throttled to MBPS, inside a memory cgroup of MIB MiB with the page cache counted.

  --bw MBPS         read bandwidth of the device in MB/s (10^6 bytes; default 25;
                    0 = no throttle; decimals allowed)
  --mem MIB         memory limit of the cgroup in MiB (default 448; 0 = none)
  --file PATH       copy PATH onto the device (repeatable); the copy is
                    \$ENVELOPE_DIR/\$(basename PATH)
  --file2 PATH      two-device mode: copy PATH onto a second device of its own
                    (repeatable); the copy is \$ENVELOPE_DIR2/\$(basename PATH)
  --bw2 MBPS        the second device's read bandwidth (default: --bw's)
  --image-dir DIR   where the ext4 image files are made (default \$ENVELOPE_IMAGE_DIR,
                    \$TMPDIR or /var/tmp); needs the files' size plus 5% free
  --image-size MIB  size of each ext4 image (default: its files + 5% + 64 MiB)
  --read-ahead KB   read_ahead_kb of the device (default 128, the K230 SD card's;
                    only buffered reads are affected)
  --cgroup v1|v2    cgroup interface (default: detected)
  --summary FILE    also write the results as key=value lines to FILE
  -q, --quiet       only errors and the final report
  -h, --help        this text

In COMMAND, \$ENVELOPE_DIR is the mount point, \$ENVELOPE_DEV the loop device
(e.g. /dev/loop3: io-bench can read it raw), \$ENVELOPE_BW_MBPS and \$ENVELOPE_MEM_MIB
the limits (two-device mode: also \$ENVELOPE_DIR2, \$ENVELOPE_DEV2,
\$ENVELOPE_BW2_MBPS), \$ENVELOPE_MEM_CGROUP the memory cgroup's directory (to read or reset its
peak between steps) and \$ENVELOPE_CGROUP_VERSION v1 or v2. Quote COMMAND for a shell when it uses them:
  $PROG --file model.gguf -- sh -c 'stream-infer -m "\$ENVELOPE_DIR/model.gguf" -p Hi -n 4'
EOF
}

say() { [ "$QUIET" = 1 ] || echo "$PROG: $*" >&2; }
err() { echo "$PROG: error: $*" >&2; }
refuse() { err "$*"; exit 3; }

while [ $# -gt 0 ]; do
    case $1 in
    --bw) BW=${2:?--bw needs a value}; shift 2 ;;
    --bw=*) BW=${1#*=}; shift ;;
    --mem) MEM=${2:?--mem needs a value}; shift 2 ;;
    --mem=*) MEM=${1#*=}; shift ;;
    --file) FILES+=("${2:?--file needs a path}"); shift 2 ;;
    --file=*) FILES+=("${1#*=}"); shift ;;
    --file2) FILES2+=("${2:?--file2 needs a path}"); shift 2 ;;
    --file2=*) FILES2+=("${1#*=}"); shift ;;
    --bw2) BW2=${2:?--bw2 needs a value}; shift 2 ;;
    --bw2=*) BW2=${1#*=}; shift ;;
    --image-dir) IMAGE_DIR=${2:?}; shift 2 ;;
    --image-size) IMAGE_MIB=${2:?}; shift 2 ;;
    --cgroup) CG_MODE=${2:?}; shift 2 ;;
    --read-ahead) READ_AHEAD=${2:?}; shift 2 ;;
    --summary) SUMMARY=${2:?}; shift 2 ;;
    -q|--quiet) QUIET=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) err "unknown option '$1' (COMMAND goes after --; see --help)"; exit 2 ;;
    esac
done
[ $# -gt 0 ] || { err "no COMMAND: give it after -- (see --help)"; exit 2; }
[[ $BW =~ ^[0-9]+([.][0-9]+)?$ ]] || { err "--bw: '$BW' is not a number of MB/s"; exit 2; }
[ -z "$BW2" ] || [ ${#FILES2[@]} -gt 0 ] || { err "--bw2 needs the second device's files (--file2)"; exit 2; }
BW2=${BW2:-$BW}
[[ $BW2 =~ ^[0-9]+([.][0-9]+)?$ ]] || { err "--bw2: '$BW2' is not a number of MB/s"; exit 2; }
[[ $MEM =~ ^[0-9]+$ ]] || { err "--mem: '$MEM' is not a number of MiB"; exit 2; }
[ -z "$IMAGE_MIB" ] || [[ $IMAGE_MIB =~ ^[0-9]+$ ]] || { err "--image-size: '$IMAGE_MIB' is not a number"; exit 2; }
[[ $READ_AHEAD =~ ^[0-9]+$ ]] || { err "--read-ahead: '$READ_AHEAD' is not a number of KiB"; exit 2; }
case $CG_MODE in auto|v1|v2) ;; *) err "--cgroup: expected v1 or v2, got '$CG_MODE'"; exit 2 ;; esac
for f in "${FILES[@]}"; do
    [ -f "$f" ] && [ -r "$f" ] || { err "--file: '$f' is not a readable file"; exit 2; }
done
for f in "${FILES2[@]}"; do
    [ -f "$f" ] && [ -r "$f" ] || { err "--file2: '$f' is not a readable file"; exit 2; }
done
N_DEV=1
[ ${#FILES2[@]} -eq 0 ] || N_DEV=2
BW_BPS=$(awk -v m="$BW" 'BEGIN { printf "%.0f", m * 1000000 }')
BW2_BPS=$(awk -v m="$BW2" 'BEGIN { printf "%.0f", m * 1000000 }')
MEM_BYTES=$((MEM * 1048576))

# ---- can this machine do it? ----

[ "$(id -u)" = 0 ] || refuse "must run as root (loop devices, mount, cgroups, drop_caches); try: sudo $0 ..."
for t in losetup mkfs.ext4 mount umount blockdev; do
    command -v "$t" >/dev/null || refuse "'$t' not found (apt-get install util-linux e2fsprogs mount)"
done
[ -e /dev/loop-control ] || modprobe loop 2>/dev/null
[ -e /dev/loop-control ] || refuse "no loop device support (/dev/loop-control missing; modprobe loop)"
[ -w /proc/sys/vm/drop_caches ] || refuse "cannot write /proc/sys/vm/drop_caches (read-only /proc/sys?)"

CGV1_MEM= CGV1_BLKIO= CGV2_ROOT=
# The cgroup of this shell in a v1 hierarchy ($1: controller name).
v1_self() { awk -F: -v c="$1" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' /proc/self/cgroup | head -n1; }
detect_v1() {
    local m b
    m=$(awk '$3 == "cgroup" && $4 ~ /(^|,)memory(,|$)/ { print $2; exit }' /proc/mounts)
    b=$(awk '$3 == "cgroup" && $4 ~ /(^|,)blkio(,|$)/ { print $2; exit }' /proc/mounts)
    [ -n "$m" ] && [ -n "$b" ] || return 1
    [ -e "$b/blkio.throttle.read_bps_device" ] || return 1
    # Nest under our own cgroups, so existing limits still apply.
    CGV1_MEM=$m$(v1_self memory)
    CGV1_BLKIO=$b$(v1_self blkio)
    CGV1_MEM=${CGV1_MEM%/} CGV1_BLKIO=${CGV1_BLKIO%/}
    [ -e "$CGV1_MEM/memory.limit_in_bytes" ] || CGV1_MEM=$m
    [ -e "$CGV1_BLKIO/blkio.throttle.read_bps_device" ] || CGV1_BLKIO=$b
    return 0
}
detect_v2() {
    local r
    for r in $(awk '$3 == "cgroup2" { print $2 }' /proc/mounts); do
        grep -qw memory "$r/cgroup.controllers" 2>/dev/null && grep -qw io "$r/cgroup.controllers" 2>/dev/null || continue
        CGV2_ROOT=$r
        return 0
    done
    return 1
}
case $CG_MODE in
auto)
    if detect_v2; then CG_MODE=v2
    elif detect_v1; then CG_MODE=v1
    else
        refuse "no usable cgroup controllers: need cgroup v2 with 'memory' and 'io' in cgroup.controllers, or v1 'memory' and 'blkio' (with blkio.throttle.*) hierarchies mounted. Mounted: $(awk '$3 ~ /^cgroup/ { printf "%s(%s) ", $2, $3 }' /proc/mounts)"
    fi ;;
v1) detect_v1 || refuse "cgroup v1 'memory' and 'blkio' (with blkio.throttle.read_bps_device) hierarchies are not both mounted" ;;
v2) detect_v2 || refuse "no cgroup v2 hierarchy offers both the 'memory' and 'io' controllers" ;;
esac
if [ "$CG_MODE" = v2 ]; then
    # The root of the v2 tree must hand memory and io to its children.
    for c in memory io; do
        grep -qw "$c" "$CGV2_ROOT/cgroup.subtree_control" ||
            echo "+$c" >"$CGV2_ROOT/cgroup.subtree_control" 2>/dev/null ||
            refuse "cannot enable the '$c' controller in $CGV2_ROOT/cgroup.subtree_control"
    done
fi

# ---- cleanup, on every exit path ----

TAG=envelope.$$
IMGS=() LOOPS=() MNTS=() CG_DIRS=() SAMPLER= CHILD= STATUS=1 peak_file=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    # Our stderr may be a pipe whose reader is gone (| tee, then Ctrl-C): writing
    # must fail quietly, not kill the cleanup half-way.
    trap '' PIPE
    set +e
    [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null && wait "$SAMPLER" 2>/dev/null
    if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
        kill -TERM "$CHILD" 2>/dev/null
        sleep 0.5
        kill -KILL "$CHILD" 2>/dev/null
    fi
    # Leftover processes of the command (only those in our own cgroup).
    local d p i
    for d in "${CG_DIRS[@]}"; do
        for i in 1 2 3 4 5 6 7 8 9 10; do
            p=$(cat "$d/cgroup.procs" 2>/dev/null)
            [ -z "$p" ] && break
            kill -KILL $p 2>/dev/null
            sleep 0.2
        done
    done
    for d in "${CG_DIRS[@]}"; do
        for i in 1 2 3 4 5 6 7 8 9 10; do
            [ -d "$d" ] || break
            rmdir "$d" 2>/dev/null && break
            sleep 0.2
        done
        [ -d "$d" ] && err "could not remove cgroup $d"
    done
    for d in "${MNTS[@]}"; do
        mountpoint -q "$d" && { umount "$d" || umount -l "$d"; }
        rmdir "$d" 2>/dev/null
    done
    for d in "${LOOPS[@]}"; do losetup -d "$d" 2>/dev/null; done
    for d in "${IMGS[@]}"; do rm -f "$d"; done
    [ -n "$peak_file" ] && rm -f "$peak_file"
    exit "$rc"
}
trap cleanup EXIT
trap 'err "interrupted"; exit 130' INT
trap 'err "terminated"; exit 143' TERM
trap 'exit 129' HUP
# Without a trap, SIGPIPE (our output piped to a reader that died) would end the
# script without running the EXIT trap: loop device, mount and cgroups would stay.
trap 'exit 141' PIPE

# ---- the devices ----

# make_device I FILE...: image, loop device (direct I/O to the image), ext4, the files
# copied, read-ahead set; fills IMGS[I] LOOPS[I] MNTS[I] MAJMINS[I] DIOS[I] RAS[I].
MAJMINS=() DIOS=() RAS=()
make_device() {
    local i=$1 f total=0 mib img loop name avail
    shift
    for f in "$@"; do total=$((total + $(stat -c %s "$f"))); done
    mib=${IMAGE_MIB:-$(( (total + total / 20) / 1048576 + 64 ))}
    avail=$(df -P -k "$IMAGE_DIR" | awk 'NR == 2 { print $4 }')
    [ "$((avail / 1024))" -gt "$mib" ] ||
        refuse "$IMAGE_DIR has $((avail / 1024)) MiB free, the image needs $mib MiB (use --image-dir)"
    img=$(mktemp "$IMAGE_DIR/$TAG.XXXXXX.img") || refuse "cannot create an image file in $IMAGE_DIR"
    IMGS[i]=$img
    fallocate -l "${mib}MiB" "$img" 2>/dev/null || truncate -s "${mib}M" "$img" || refuse "cannot size $img"
    # Direct I/O to the backing file: the host's page cache never serves (or holds) the
    # device's blocks, so reads cost what the device costs.
    loop=$(losetup --find --show --direct-io=on "$img" 2>/dev/null) || loop=$(losetup --find --show "$img") ||
        refuse "losetup could not attach a loop device (all busy, or no permission?)"
    LOOPS[i]=$loop
    name=$(basename "$loop")
    DIOS[i]=$(cat "/sys/block/$name/loop/dio" 2>/dev/null || echo "?")
    [ "${DIOS[i]}" = 1 ] || say "note: $loop has no direct I/O to its backing file; the host page cache may serve some reads"
    MAJMINS[i]=$(cat "/sys/block/$name/dev")
    mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 -L "envelope$i" "$loop" >/dev/null 2>&1 ||
        refuse "mkfs.ext4 $loop failed"
    MNTS[i]=$(mktemp -d "/tmp/$TAG.XXXXXX") || refuse "cannot create a mount point"
    mount -o noatime "$loop" "${MNTS[i]}" || refuse "cannot mount $loop on ${MNTS[i]}"
    for f in "$@"; do
        say "copying $f ($(( $(stat -c %s "$f") / 1048576 )) MiB) to ${MNTS[i]}"
        t0=$(date +%s.%N)
        cp "$f" "${MNTS[i]}/" || refuse "copying $f onto the device failed"
        t1=$(date +%s.%N)
        say "  $(awk -v a="$t0" -v b="$t1" -v n="$(stat -c %s "$f")" 'BEGIN { printf "%.1f s, %.0f MB/s", b - a, n / 1e6 / (b - a) }')"
    done
    chmod 755 "${MNTS[i]}"
    sync
    # Read-ahead of the device like the board's SD card (mmcblk0: 128 KiB by default).
    echo "$READ_AHEAD" >"/sys/block/$name/queue/read_ahead_kb" 2>/dev/null ||
        say "note: cannot set read_ahead_kb of $name"
    RAS[i]=$(cat "/sys/block/$name/queue/read_ahead_kb" 2>/dev/null || echo "?")
}
mkdir -p "$IMAGE_DIR" || refuse "cannot create --image-dir $IMAGE_DIR"
make_device 0 "${FILES[@]}"
[ "$N_DEV" = 1 ] || make_device 1 "${FILES2[@]}"
LOOP=${LOOPS[0]} MNT=${MNTS[0]} MAJMIN=${MAJMINS[0]}
DEV_BPS=("$BW_BPS" "$BW2_BPS") DEV_BW=("$BW" "$BW2")

# ---- the cgroup ----

if [ "$CG_MODE" = v2 ]; then
    CG=$CGV2_ROOT/$TAG
    mkdir "$CG" || refuse "cannot create cgroup $CG"
    CG_DIRS=("$CG")
    if [ "$MEM" -gt 0 ]; then
        echo "$MEM_BYTES" >"$CG/memory.max" || refuse "cannot set $CG/memory.max"
        [ -e "$CG/memory.swap.max" ] && echo 0 >"$CG/memory.swap.max"
    fi
    for ((i = 0; i < N_DEV; i++)); do
        [ "${DEV_BPS[i]}" -gt 0 ] || continue
        echo "${MAJMINS[i]} rbps=${DEV_BPS[i]}" >"$CG/io.max" ||
            refuse "cannot set $CG/io.max (${MAJMINS[i]} rbps=${DEV_BPS[i]})"
    done
    PROCS_FILES=("$CG/cgroup.procs")
else
    CGM=$CGV1_MEM/$TAG CGB=$CGV1_BLKIO/$TAG
    mkdir "$CGM" || refuse "cannot create cgroup $CGM"
    CG_DIRS=("$CGM")
    mkdir "$CGB" || refuse "cannot create cgroup $CGB"
    CG_DIRS+=("$CGB")
    if [ "$MEM" -gt 0 ]; then
        echo "$MEM_BYTES" >"$CGM/memory.limit_in_bytes" || refuse "cannot set $CGM/memory.limit_in_bytes"
        # No swap either (memsw is memory + swap; it must not be below the memory limit).
        [ -e "$CGM/memory.memsw.limit_in_bytes" ] && echo "$MEM_BYTES" >"$CGM/memory.memsw.limit_in_bytes" 2>/dev/null
        echo 0 >"$CGM/memory.swappiness" 2>/dev/null
    fi
    for ((i = 0; i < N_DEV; i++)); do
        [ "${DEV_BPS[i]}" -gt 0 ] || continue
        echo "${MAJMINS[i]} ${DEV_BPS[i]}" >"$CGB/blkio.throttle.read_bps_device" ||
            refuse "cannot set $CGB/blkio.throttle.read_bps_device (${MAJMINS[i]} ${DEV_BPS[i]})"
    done
    PROCS_FILES=("$CGM/cgroup.procs" "$CGB/cgroup.procs")
fi

# ---- run ----

sync
echo 3 >/proc/sys/vm/drop_caches
for ((i = 0; i < N_DEV; i++)); do
    say "device $((i + 1)): ${LOOPS[i]} (${MAJMINS[i]}, ext4 on ${IMGS[i]}, loop dio=${DIOS[i]}, read_ahead_kb=${RAS[i]}) at ${MNTS[i]}, reads $( [ "${DEV_BPS[i]}" -gt 0 ] && echo "${DEV_BW[i]} MB/s" || echo unthrottled )"
done
say "limits: memory $( [ "$MEM" -gt 0 ] && echo "$MEM MiB" || echo unlimited ) (cgroup $CG_MODE: ${CG_DIRS[*]})"
cmd_line=$(printf '%s ' "$@" | tr '\n' ' ')
[ "${#cmd_line}" -gt 160 ] && cmd_line="${cmd_line:0:157}..."
say "running: $cmd_line"

peak_file=$(mktemp "/tmp/$TAG.peak.XXXXXX")
MEM_DIR=${CG_DIRS[0]}
# Sample the cgroup's memory when the kernel keeps no peak (v2 before 5.19).
if [ "$CG_MODE" = v2 ] && [ ! -e "$MEM_DIR/memory.peak" ]; then
    (
        trap 'exit 0' TERM
        peak=0
        while :; do
            c=$(cat "$MEM_DIR/memory.current" 2>/dev/null) || exit 0
            [ "$c" -gt "$peak" ] && { peak=$c; echo "$peak" >"$peak_file"; }
            sleep 0.05
        done
    ) &
    SAMPLER=$!
fi

t0=$(date +%s.%N)
(
    for p in "${PROCS_FILES[@]}"; do echo "$BASHPID" >"$p" || exit 125; done
    export ENVELOPE_DIR=$MNT ENVELOPE_DEV=$LOOP ENVELOPE_BW_MBPS=$BW ENVELOPE_MEM_MIB=$MEM \
        ENVELOPE_MEM_CGROUP=$MEM_DIR ENVELOPE_CGROUP_VERSION=$CG_MODE
    [ "$N_DEV" = 1 ] || export ENVELOPE_DIR2=${MNTS[1]} ENVELOPE_DEV2=${LOOPS[1]} ENVELOPE_BW2_MBPS=$BW2
    trap - EXIT INT TERM HUP
    exec "$@"
) &
CHILD=$!
# wait returns early when a trapped signal arrives; the trap then exits via cleanup.
wait "$CHILD"
STATUS=$?
CHILD=
t1=$(date +%s.%N)
[ "$STATUS" = 125 ] && err "could not move the command into the cgroup"

# ---- report ----

if [ -n "$SAMPLER" ]; then kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null; SAMPLER=; fi
if [ "$CG_MODE" = v2 ]; then
    if [ -e "$MEM_DIR/memory.peak" ]; then peak=$(cat "$MEM_DIR/memory.peak"); peak_src=memory.peak
    else peak=$(cat "$peak_file" 2>/dev/null || echo 0); peak_src="memory.current sampled every 50 ms"; fi
    oom_kill=$(awk '$1 == "oom_kill" { print $2 }' "$MEM_DIR/memory.events")
    oom_events=$(awk '$1 == "oom" { print $2 }' "$MEM_DIR/memory.events")
    dev_rbytes() { awk -v d="$1" '$1 == d { for (i = 2; i <= NF; i++) if ($i ~ /^rbytes=/) { sub(/rbytes=/, "", $i); print $i } }' "$MEM_DIR/io.stat"; }
else
    peak=$(cat "$MEM_DIR/memory.max_usage_in_bytes"); peak_src=memory.max_usage_in_bytes
    oom_kill=$(awk '$1 == "oom_kill" { print $2 }' "$MEM_DIR/memory.oom_control")
    oom_events=$(cat "$MEM_DIR/memory.failcnt")
    dev_rbytes() { awk -v d="$1" '$1 == d && $2 == "Read" { print $3 }' "${CG_DIRS[1]}/blkio.throttle.io_service_bytes"; }
fi
RBYTES=()
for ((i = 0; i < N_DEV; i++)); do r=$(dev_rbytes "${MAJMINS[i]}"); RBYTES[i]=${r:-0}; done
rbytes=${RBYTES[0]}
rm -f "$peak_file"
oom_kill=${oom_kill:-?}
elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
dev_mbs=$(awk -v n="$rbytes" -v t="$elapsed" 'BEGIN { printf "%.2f", (t > 0 ? n / 1e6 / t : 0) }')
{
    echo "--- envelope report ---"
    echo "command exit status : $STATUS"
    echo "elapsed             : $elapsed s"
    echo "peak memory         : $(awk -v p="$peak" 'BEGIN { printf "%.1f MiB", p / 1048576 }') of $( [ "$MEM" -gt 0 ] && echo "$MEM MiB" || echo "no limit" ) ($peak_src, page cache included)"
    echo "OOM kills           : $oom_kill $( [ "$oom_kill" = 0 ] && echo "(none)" || echo "(SOMETHING WAS OOM-KILLED)")"
    echo "device reads        : $rbytes bytes ($dev_mbs MB/s averaged over the run; throttle $( [ "$BW_BPS" -gt 0 ] && echo "$BW MB/s" || echo off))"
    [ "$N_DEV" = 1 ] || echo "device 2 reads      : ${RBYTES[1]} bytes ($(awk -v n="${RBYTES[1]}" -v t="$elapsed" 'BEGIN { printf "%.2f", (t > 0 ? n / 1e6 / t : 0) }') MB/s averaged over the run; throttle $( [ "$BW2_BPS" -gt 0 ] && echo "$BW2 MB/s" || echo off))"
} >&2
if [ -n "$SUMMARY" ]; then
    cat >"$SUMMARY" <<EOF
status=$STATUS
elapsed_s=$elapsed
bw_mbps=$BW
mem_mib=$MEM
cgroup=$CG_MODE
device=$LOOP
loop_dio=${DIOS[0]}
peak_bytes=$peak
peak_source=$peak_src
oom_kill=$oom_kill
limit_events=$oom_events
device_read_bytes=$rbytes
device_read_mb_s=$dev_mbs
EOF
    [ "$N_DEV" = 1 ] || printf 'bw2_mbps=%s\ndevice2=%s\ndevice2_read_bytes=%s\n' "$BW2" "${LOOPS[1]}" "${RBYTES[1]}" >>"$SUMMARY"
fi
exit "$STATUS"
