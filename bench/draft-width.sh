#!/bin/bash
# draft-width.sh: tokens generated per pass against the draft size. Runs stream-infer
# greedy on a model (default: the trained fixture, tiny-trained Q4_K_M, from its
# fixture prompt) with --draft none, then each --draft MODE --draft-max W, and prints
# passes, generated per pass, guesses proposed and accepted per pass; --plot draws
# generated per pass against W (gnuplot).
#
#   bench/draft-width.sh [--model M.gguf --prompt-ids "IDS"] [-n 200] [--widths "1 2 4 8 16"]
#                        [--modes "lookup"] [--compute-ratio X] [--plot FILE.png]
#
# --compute-ratio X goes to the auto runs (without it auto measures this machine's
# ratio: on a PC with the model in the page cache a pass is all compute, so auto
# hardly guesses; the K230's ratio for the 8B is about 0.022 at 25 MB/s).
set -u -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BUILD=${BUILD:-$root/build}
FX=${SI_FIXTURES:-$root/../shared/fixtures}
MODEL=$FX/tiny-trained/Q4_K_M.gguf
IDS=
N=200 WIDTHS="1 2 3 4 6 8 12 16" MODES="lookup" PLOT= RATIO=
while [ $# -gt 0 ]; do
    case $1 in
    --model) MODEL=${2:?}; shift 2 ;;
    --prompt-ids) IDS=${2:?}; shift 2 ;;
    -n) N=${2:?}; shift 2 ;;
    --widths) WIDTHS=${2:?}; shift 2 ;;
    --modes) MODES=${2:?}; shift 2 ;;
    --plot) PLOT=${2:?}; shift 2 ;;
    --compute-ratio) RATIO=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "draft-width.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[ -f "$MODEL" ] || { echo "draft-width.sh: no model at '$MODEL' (give --model, or put the fixtures at ../shared)" >&2; exit 2; }
[ -n "$IDS" ] || IDS=$(cat "$FX/tiny-trained/ref/prompt.ids" 2>/dev/null) ||
    { echo "draft-width.sh: give --prompt-ids" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() { # mode width -> "passes gen/pass proposed/pass accepted/pass"
    "$BUILD/tools/stream-infer" -m "$MODEL" --prompt-ids "$IDS" -n "$N" --temp 0 --print-ids -q --pin none \
        --draft "$1" ${2:+--draft-max "$2"} ${RATIO:+$([ "$1" = auto ] && echo --compute-ratio "$RATIO")} --report-json "$tmp/r.json" > "$tmp/ids-$1-${2:-0}" ||
        { echo "draft-width.sh: stream-infer failed" >&2; exit 1; }
    python3 -c "import json; r = json.load(open('$tmp/r.json')); print(r['passes'], '%.3f' % r['generated_per_pass'],
'%.2f' % r['draft_proposed_per_pass'], '%.2f' % r['draft_accepted_per_pass'])"
}
echo "# $(basename "$MODEL"), $N greedy tokens"
echo "mode      width passes gen/pass guessed/pass accepted/pass same_ids"
read -r p g a b <<< "$(run none "")"
printf "%-9s %5s %6s %8s %12s %13s\n" none 0 "$p" "$g" "$a" "$b"
: > "$tmp/plot.dat"
for m in $MODES; do
    echo "0 $g" >> "$tmp/plot-$m.dat"
    for w in $WIDTHS; do
        read -r p g2 a b <<< "$(run "$m" "$w")"
        same=yes
        cmp -s "$tmp/ids-none-0" "$tmp/ids-$m-$w" || same=NO
        printf "%-9s %5s %6s %8s %12s %13s %s\n" "$m" "$w" "$p" "$g2" "$a" "$b" "$same"
        echo "$w $g2" >> "$tmp/plot-$m.dat"
    done
done
if [ -n "$PLOT" ]; then
    if command -v gnuplot >/dev/null; then
        cmd="plot"
        for m in $MODES; do
            t="--draft $m"
            [ "$m" = auto ] && [ -n "$RATIO" ] && t+=" --compute-ratio $RATIO"
            cmd+=" '$tmp/plot-$m.dat' using 1:2 with linespoints pointtype 7 title '$t',"
        done
        gnuplot <<GP
set terminal pngcairo size 900,600 noenhanced
set output '$PLOT'
set title 'Tokens generated per pass against draft size ($(basename "$MODEL"), $N greedy tokens)'
set xlabel '--draft-max (guessed tokens per pass at most)'
set ylabel 'tokens generated per pass'
set key bottom right
set grid
${cmd%,}
GP
        echo "draft-width.sh: wrote $PLOT" >&2
    else
        echo "draft-width.sh: gnuplot not installed (apt-get install gnuplot-nox): no plot" >&2
    fi
fi
