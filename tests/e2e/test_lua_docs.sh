#!/usr/bin/env bash
# End-to-end: every ```lua block of sdk/docs/lua-api.md runs, as written, as a `rapport test`
# file (wrapped in test("doc example N", function() … end)) on a fresh database with a virtual
# clock, so the reference never shows an example that does not work. A failure names the line
# of the block in the .md.
set -u
RAPPORT=${RAPPORT:-build/rapport}
RP_SOURCE=${RP_SOURCE:-$(cd "$(dirname "$0")/../.." && pwd)}
doc="$RP_SOURCE/sdk/docs/lua-api.md"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

if [ ! -f "$doc" ]; then
    echo "test_lua_docs.sh: no $doc" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

# The examples stand alone: no default rules from plugins/operational/scripts/, no other script beside them (a
# test file's folder is loaded as scripts, so each block gets a folder of its own).
mkdir -p "$tmp/no-scripts"
export RAPPORT_SCRIPTS="$tmp/no-scripts"
export RAPPORT_DB="$tmp/unused.db"

# Splits the .md into one file per ```lua block, named by the line of its opening fence, and
# refuses an unterminated block.
mkdir -p "$tmp/blocks"
awk -v out="$tmp/blocks" '
    /^```lua[ \t]*$/ && !inside {
        inside = 1; start = NR; file = sprintf("%s/%05d.lua", out, start); next
    }
    /^```[ \t]*$/ && inside { inside = 0; close(file); next }
    inside { print > file }
    END {
        if (inside) { print "unterminated ```lua block at line " start > "/dev/stderr"; exit 1 }
    }
' "$doc" || {
    bad "$doc has an unterminated \`\`\`lua block"
    echo "$passed passed, $failed failed"
    exit 1
}

n=0
for block in "$tmp"/blocks/*.lua; do
    [ -e "$block" ] || continue
    n=$((n + 1))
    line=$((10#$(basename "$block" .lua)))
    dir="$tmp/example$n"
    mkdir -p "$dir"
    file="$dir/example${n}_test.lua"
    {
        printf 'test("doc example %d (lua-api.md line %d)", function()\n' "$n" "$line"
        cat "$block"
        printf '\nend)\n'
    } > "$file"
    out=$("$RAPPORT" test "$file" 2>&1); status=$?
    if [ "$status" = 0 ] && grep -q '^1 passed, 0 failed$' <<<"$out"; then
        ok
    else
        # Line k of the wrapped file is line (fence + k - 1) of the .md.
        where=$(grep -o "example${n}_test.lua:[0-9][0-9]*" <<<"$out" | head -1 | cut -d: -f2)
        at=${where:+ (the error is at lua-api.md line $((line + where - 1)))}
        bad "the \`\`\`lua block at sdk/docs/lua-api.md line $line (example $n) fails$at:
$out"
    fi
done

[ "$n" -gt 0 ] || bad "no \`\`\`lua blocks found in $doc"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
