#!/usr/bin/env bash
# End-to-end: a vendor's first steps without an install (test_sdk.sh builds against the
# installed SDK): `rapport plugin new` writes sdk/template under a new name — the very files of
# sdk/template, carried in the binary — and refuses bad names and used folders; `rapport plugin
# check` reports what a built plugin registers, or why the engine refuses it, on fixture plugins.
set -u
RAPPORT=${RAPPORT:-build/rapport}
RAPPORT=$(cd "$(dirname "$RAPPORT")" && pwd)/$(basename "$RAPPORT")
FIX=${RP_TEST_PLUGINS:?RP_TEST_PLUGINS must name the built fixture plugins}
SRC=${RP_SOURCE:-.}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db" RAPPORT_PLUGINS_BUILTIN=0
export RAPPORT_SCRIPTS="$tmp/none"; mkdir -p "$RAPPORT_SCRIPTS"
. "$(dirname "$0")/lib.sh"

# ---- plugin new ----------------------------------------------------------------------------
out=$("$RAPPORT" plugin new acme "$tmp/v/acme" 2>&1); st=$?
check '[ $st = 0 ] && grep -q "^wrote the plugin acme in $tmp/v/acme: CMakeLists.txt README.md scripts/acme_test.lua acme.c$" <<<"$out"' \
      "plugin new: $st $out"
check '[ -f "$tmp/v/acme/acme.c" ] && [ -f "$tmp/v/acme/scripts/acme_test.lua" ] && ! grep -rq template "$tmp/v/acme"' \
      "the name is not everywhere: $(grep -rn template "$tmp/v/acme" | head -3)"
check 'grep -q "^project(acme C)$" "$tmp/v/acme/CMakeLists.txt" && grep -q "\.name = \"acme\"," "$tmp/v/acme/acme.c" && grep -q "crm.acme.notes()" "$tmp/v/acme/scripts/acme_test.lua"' \
      "the substitution: $(cat "$tmp/v/acme/CMakeLists.txt")"
# One source of truth: with the name "template" the files are sdk/template's, byte for byte.
"$RAPPORT" plugin new template "$tmp/t" >/dev/null 2>&1
check 'diff -r -x "build*" "$SRC/sdk/template" "$tmp/t" >/dev/null' \
      "the embedded skeleton differs from sdk/template: $(diff -r -x 'build*' "$SRC/sdk/template" "$tmp/t" | head -5)"
expect 1 "exists and is not empty: it writes only into a new or empty folder" -- plugin new acme "$tmp/v/acme"
mkdir -p "$tmp/empty"
expect 0 "wrote the plugin b2 in $tmp/empty" -- plugin new b2 "$tmp/empty"
touch "$tmp/file"
expect 1 "$tmp/file exists and is not a folder" -- plugin new acme "$tmp/file"
expect 2 'the name "Acme" will not do: it must be a lower-case identifier' -- plugin new Acme "$tmp/x"
expect 2 'the name "2fa" will not do' -- plugin new 2fa "$tmp/x"
expect 2 'the name "a-b" will not do' -- plugin new a-b "$tmp/x"
expect 2 'the name "end" will not do: it is a Lua keyword' -- plugin new end "$tmp/x"
expect 2 'the name "operational" will not do: the engine already has that name' -- plugin new operational "$tmp/x"
expect 2 'the name "schema" will not do: the engine already has that name' -- plugin new schema "$tmp/x"
expect 2 "at most 40" -- plugin new "$(printf 'a%.0s' $(seq 41))" "$tmp/x"
check '[ ! -e "$tmp/x" ]' "a refused name left a folder"
(cd "$tmp" && "$RAPPORT" plugin new here >/dev/null 2>&1)
check '[ -f "$tmp/here/here.c" ]' "plugin new NAME writes ./NAME"
expect 2 "plugin new takes a NAME" -- plugin new
expect 2 "say new NAME [DIR] or check FILE.so" -- plugin
expect 2 "--json goes with plugin check" -- plugin new acme2 "$tmp/y" --json

# ---- plugin check --------------------------------------------------------------------------
out=$("$RAPPORT" plugin check "$FIX/good.so" 2>&1); st=$?
check '[ $st = 0 ] && grep -q "^ok: good 1.2.0 (ABI 1) — a plugin that works$" <<<"$out" && grep -q "^  requires: none$" <<<"$out" && grep -q "^  hooks: good_item.create$" <<<"$out" && grep -q "^  lua: crm.good.double, crm.good.dec, crm.good.rows, crm.good.doc$" <<<"$out" && grep -q "^  commands: good hello$" <<<"$out"' \
      "plugin check good.so: $st $out"
check 'grep -Eq "^  fields of good_item: (name \(text\), points \(integer\)|points \(integer\), name \(text\))$" <<<"$out"' \
      "the fields: $out"
out=$("$RAPPORT" plugin check "$FIX/good.so" --json 2>&1); st=$?
check '[ $st = 0 ] && [ "$(jq -r ".ok, .name, .abi, .fields.good_item.points, .jobs[0]" <<<"$out" | tr "\n" " ")" = "true good 1 integer good.tick " ]' \
      "plugin check --json: $out"
# The user's database is never touched: none is made, an existing one stays as it was.
check '[ ! -e "$RAPPORT_DB" ]' "plugin check made the database $RAPPORT_DB"
# The file stands in for a plugin of its name in the folders.
mkdir -p "$tmp/dir"; cp "$FIX/good.so" "$tmp/dir/good.so"
expect 0 "ok: good 1.2.0" -- --plugins "$tmp/dir" plugin check "$FIX/good.so"
# A plugin it requires is found in the usual folders.
mkdir -p "$tmp/deps"; ln -s "$FIX/good.so" "$tmp/deps/good.so"
expect 1 "needs plugin good" -- plugin check "$FIX/chain_b.so"
expect 0 "requires: good" -- --plugins "$tmp/deps" plugin check "$FIX/chain_b.so"

refused() { # FIXTURE MESSAGE
    local out st
    out=$("$RAPPORT" plugin check "$FIX/$1.so" 2>&1); st=$?
    if [ $st = 1 ] && grep -qF "rapport: plugin check: $FIX/$1.so is refused: RP-E1801: $2" <<<"$out"; then
        ok
    else
        bad "plugin check $1.so: $st $out"
    fi
}
refused abi "plugin future ($FIX/abi.so) was built for plugin ABI 99; this engine speaks ABI 1"
refused noentry "plugin file $FIX/noentry.so has no entry function rapport_plugin_entry"
refused broken "plugin file $FIX/broken.so is not a loadable shared object"
refused missing "plugin lonely ($FIX/missing.so) needs plugin ghost, which is not loaded"
refused initfail "plugin doomed ($FIX/initfail.so) failed to start: the licence key is missing"
out=$("$RAPPORT" plugin check "$FIX/abi.so" --json 2>/dev/null); st=$?
check '[ $st = 1 ] && [ "$(jq -r ".ok, .error" <<<"$out")" = "false
RP-E1801: plugin future ($FIX/abi.so) was built for plugin ABI 99; this engine speaks ABI 1: rebuild it against this engine'"'"'s rapport_plugin.h" ]' \
      "plugin check --json of a refused plugin: $out"
expect 1 "plugin check: cannot open $tmp/nothing.so: No such file or directory" -- plugin check "$tmp/nothing.so"
expect 2 "plugin check takes one FILE.so" -- plugin check

finish
