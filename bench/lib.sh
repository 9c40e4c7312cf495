# bench/lib.sh: what the envelope benchmarks share, sourced after they set their
# defaults (MODEL BW MEM N OUT BUILD) and a usage function.
#
#   bench_opt "$@"           one of the common options at $1 (those in BENCH_COMMON, when
#                            the script sets it): sets BENCH_SHIFT to the words it took
#                            (0: not a common option, the script's own case)
#   bench_die MESSAGE        the script's name and MESSAGE on stderr, exit 2
#   bench_need_model         --model names an existing file
#   bench_need_built TARGET...   each $BUILD/TARGET exists and is executable
#   bench_out_dir NAME       OUT, or a new /var/tmp/NAME.XXXXXX, created and made absolute
bench_name=$(basename "$0")

bench_die() { echo "$bench_name: $*" >&2; exit 2; }

bench_opt() {
    BENCH_SHIFT=0
    case " ${BENCH_COMMON:---model --bw --mem -n --out --build} -h --help " in
    *" $1 "*) ;;
    *) return 0 ;;
    esac
    case $1 in
    -h|--help) usage; exit 0 ;;
    --model|--bw|--mem|-n|--out|--build) [ $# -ge 2 ] || bench_die "$1 needs a value (see --help)" ;;
    *) return 0 ;;
    esac
    case $1 in
    --model) MODEL=$2 ;;
    --bw) BW=$2 ;;
    --mem) MEM=$2 ;;
    -n) N=$2 ;;
    --out) OUT=$2 ;;
    --build) BUILD=$2 ;;
    esac
    BENCH_SHIFT=2
}

bench_need_model() {
    [ -n "$MODEL" ] && [ -f "$MODEL" ] || bench_die "--model FILE.gguf is required (see --help)"
}

bench_need_built() {
    local b
    for b; do
        [ -x "$BUILD/$b" ] || bench_die "$BUILD/$b not built (ninja -C $BUILD)"
    done
}

bench_out_dir() {
    OUT=${OUT:-$(mktemp -d "/var/tmp/$1.XXXXXX")}
    mkdir -p "$OUT" || bench_die "cannot create $OUT"
    OUT=$(cd "$OUT" && pwd)
}
