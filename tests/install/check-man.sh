#!/bin/sh
# Every option TOOL --help lists appears in its manual page, and --version answers.
#
#   check-man.sh TOOL PAGE   (PAGE: the built page, NAME.1, or its scdoc source)
set -eu
tool=$1 page=$2
name=$(basename "$tool")
help=$("$tool" --help)
ver=$("$tool" --version) || { echo "$name --version failed" >&2; exit 1; }
case $ver in
    "$name (streaminfer) "[0-9]*) ;;
    *) echo "$name --version: unexpected '$ver'" >&2; exit 1 ;;
esac
# the options: every -x / --long-name on the option lines of --help (those starting
# with blanks then a dash)
opts=$(printf '%s\n' "$help" | grep -E '^[[:space:]]+-' | grep -oE -- '(^|[[:space:],[])--?[[:alpha:]][-[:alnum:]]*' |
       sed 's/^[[:space:],[]*//' | sort -u)
[ -n "$opts" ] || { echo "$name --help lists no option" >&2; exit 1; }
# the page's text, groff escapes of '-' undone
text=$(sed 's/\\f[BIRP]//g; s/\\-/-/g; s/\\(hy/-/g; s/[*_]//g' "$page")
missing=
for o in $opts; do
    # as a word: --batch must not be found inside --batch-file only
    printf '%s\n' "$text" | grep -qE -- "(^|[^-[:alnum:]])$o([^-[:alnum:]]|\$)" || missing="$missing $o"
done
if [ -n "$missing" ]; then
    echo "$name: options of --help missing from $page:$missing" >&2
    exit 1
fi
echo "$name: $(echo "$opts" | wc -l) options of --help in $(basename "$page"); $ver"
