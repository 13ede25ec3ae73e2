#!/bin/sh
# Checks the layout of src/ (`make ctest` runs it first; exits 1 on a
# failure, naming each):
#
# 1. Arrows never go up. Every C file is in a layer folder, src/<layer>/,
#    and includes our headers layer-qualified ("db/db.h", found with -Isrc),
#    so its includes are its dependencies. A layer includes only these:
#      common   common/                       (buf, the table of kinds)
#      db       common/ db/                   (backend interface, drivers)
#      pb       common/ pb/, and the generated feast_subset.pb-c.h
#      store    common/ db/ pb/ store/        (the C core)
#      front    common/ db/ pb/ store/ front/ (the native gRPC front)
#      python   any, and the only one that includes Python.h
# 2. src/SOURCES, the one list of sources, names every .c and .proto under
#    src/, and nothing that is not there.
#
# Plain grep, sed and awk over the text: a commented-out #include counts too.
set -eu
cd "$(dirname "$0")/.."
fail=0

files=$(find src -name '*.[ch]' ! -name '*.pb-c.[ch]' | LC_ALL=C sort)
# shellcheck disable=SC2086  # the paths have no spaces
grep -Hn -E '^[[:space:]]*#[[:space:]]*include' $files | awk '
BEGIN {
    may["common"] = " common "
    may["db"] = " common db "
    may["pb"] = " common pb "
    may["store"] = " common db pb store "
    may["front"] = " common db pb store front "
    may["python"] = " common db pb store front python "
}
{
    file = $0; sub(/:.*/, "", file)
    rest = substr($0, length(file) + 2)
    line = rest; sub(/:.*/, "", line)
    text = substr(rest, length(line) + 2)
    split(file, part, "/")
    layer = part[2]
    where = file ":" line ": "
    if (text ~ /[<"]Python\.h[>"]/) {
        if (layer != "python") { print where "Python.h below src/python/"; bad = 1 }
        next
    }
    if (text !~ /"/) next  # a system header
    inc = text; sub(/^[^"]*"/, "", inc); sub(/".*/, "", inc)
    if (inc == "feast_subset.pb-c.h") {  # generated from pb/feast_subset.proto
        if (layer != "pb") { print where layer "/ includes " inc ": only pb/ sees protobuf-c"; bad = 1 }
        next
    }
    if (inc !~ /\//) {
        print where "\"" inc "\" is not layer-qualified (\"<layer>/" inc "\")"; bad = 1
        next
    }
    target = inc; sub(/\/.*/, "", target)
    if (!(layer in may)) next  # reported below
    if (index(may[layer], " " target " ") == 0) {
        print where layer "/ includes " inc ": arrows never go up"; bad = 1
    }
}
END { exit bad }' || fail=1

for f in $files; do
    case "$f" in
    src/*/*/*) echo "$f: deeper than src/<layer>/"; fail=1 ;;
    src/common/* | src/db/* | src/pb/* | src/store/* | src/front/* | src/python/*) ;;
    *) echo "$f: not in a layer folder (src/<layer>/: common db pb store front python)"; fail=1 ;;
    esac
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed -n 's/^[A-Za-z0-9_]*:[[:space:]]*//p' src/SOURCES | tr -s ' \t' '\n\n' | grep . |
    LC_ALL=C sort -u >"$tmp/listed"
(cd src && find . \( -name '*.c' -o -name '*.proto' \) ! -name '*.pb-c.c') | sed 's|^\./||' |
    LC_ALL=C sort >"$tmp/present"
for f in $(LC_ALL=C comm -23 "$tmp/present" "$tmp/listed"); do
    echo "src/$f: not in src/SOURCES"
    fail=1
done
for f in $(LC_ALL=C comm -13 "$tmp/present" "$tmp/listed"); do
    echo "src/SOURCES: src/$f does not exist"
    fail=1
done

[ $fail = 0 ] && echo "check_layout: src/ layers and src/SOURCES are consistent"
exit $fail
