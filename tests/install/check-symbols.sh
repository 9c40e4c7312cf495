#!/bin/sh
# The ABI check: the symbols libstreaminfer.so exports are exactly those listed in
# abi/libstreaminfer.map, every one of them is declared in an installed header, and
# every function the API headers declare is listed. A difference fails with both lists'
# difference; when the change is meant, edit the map (and see its versioning rule).
#
#   check-symbols.sh LIBSTREAMINFER.so MAP INCLUDE_DIR
set -eu
lib=$1 map=$2 inc=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

nm -D --defined-only "$lib" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort -u > "$tmp/exported"
sed -n 's/^[[:space:]]*\(si_[A-Za-z0-9_]*\);[[:space:]]*$/\1/p' "$map" | sort -u > "$tmp/listed"
[ -s "$tmp/listed" ] || { echo "no symbol read from $map" >&2; exit 1; }
# function declarations: a name followed by '(' in the headers, comments removed
decls() { for h in "$@"; do cat "$inc/$h"; done | sed 's://.*$::' | tr '\n' ' ' | sed 's:/\*[^*]*\*\+\([^/*][^*]*\*\+\)*/::g' |
          grep -oE '\bsi_[A-Za-z0-9_]+[[:space:]]*\(' | sed 's/[[:space:]]*($//' | sort -u; }
# the API headers, whose every function is exported (meson.build's install list
# adds io.h, kv.h, plan.h, sched.h, draft.h for their types only)
decls error.h types.h gguf.h model.h llama.h sampler.h tokenizer.h chat.h engine.h > "$tmp/api"
decls error.h types.h gguf.h model.h llama.h sampler.h tokenizer.h chat.h engine.h draft.h io.h kv.h plan.h sched.h > "$tmp/installed"

fail=0
if ! cmp -s "$tmp/exported" "$tmp/listed"; then
    echo "exported by $lib but not in the map:" >&2
    comm -23 "$tmp/exported" "$tmp/listed" | sed 's/^/  /' >&2
    echo "in the map but not exported:" >&2
    comm -13 "$tmp/exported" "$tmp/listed" | sed 's/^/  /' >&2
    fail=1
fi
missing=$(comm -23 "$tmp/api" "$tmp/listed")
if [ -n "$missing" ]; then
    echo "declared in an API header but not in the map (a new function? add it there):" >&2
    echo "$missing" | sed 's/^/  /' >&2
    fail=1
fi
undeclared=$(comm -23 "$tmp/listed" "$tmp/installed")
if [ -n "$undeclared" ]; then
    echo "in the map but declared in no installed header:" >&2
    echo "$undeclared" | sed 's/^/  /' >&2
    fail=1
fi
[ $fail = 0 ] && echo "$(wc -l < "$tmp/listed") symbols exported, as listed"
exit $fail
