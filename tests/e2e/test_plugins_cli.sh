#!/usr/bin/env bash
# End-to-end: plugins through the binary — listing, a plugin's command, its hook on a CLI
# write, its Lua function, refusals (and --skip-broken), and RAPPORT_PLUGIN_PATH.
set -u
RAPPORT=${RAPPORT:-build/rapport}
FIX=${RP_TEST_PLUGINS:?RP_TEST_PLUGINS must name the built fixture plugins}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"
export RAPPORT_SCRIPTS="$tmp/none"; mkdir -p "$RAPPORT_SCRIPTS"
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else bad "$2"; fi; }

mkdir -p "$tmp/good" "$tmp/broken" "$tmp/chain"
ln -s "$FIX/good.so" "$tmp/good/good.so"
ln -s "$FIX/initfail.so" "$tmp/broken/initfail.so"
ln -s "$FIX/chain_b.so" "$tmp/chain/chain_b.so"
"$RAPPORT" init >/dev/null

out=$("$RAPPORT" --plugins "$tmp/good" plugins 2>&1)
check 'grep -q "^good 1.2.0 (ABI 1)" <<<"$out" && grep -q "hooks: good_item.create" <<<"$out" && grep -q "lua: crm.good.double" <<<"$out" && grep -q "commands: good hello" <<<"$out"' "plugins list: $out"
out=$("$RAPPORT" --plugins "$tmp/good" plugins --json 2>&1)
check 'grep -q "\"file\": \"$tmp/good/good.so\"" <<<"$out"' "plugins --json: $out"
out=$("$RAPPORT" --plugins "$tmp/good" good hello x 2>&1); st=$?
check '[ $st = 0 ] && [ "$out" = "hello from good with 1 argument" ]' "plugin command: $st $out"
out=$("$RAPPORT" --plugins "$tmp/good" good nope 2>&1); st=$?
check '[ $st = 2 ] && grep -q "plugin good has no command \"nope\"" <<<"$out"' "missing plugin command: $out"
out=$("$RAPPORT" --plugins "$tmp/good" create good_item '{"name": "widget"}' 2>&1)
check 'grep -q "\"name\":\"Widget\"" <<<"$out"' "the plugin hook did not run on a CLI write: $out"
out=$("$RAPPORT" --plugins "$tmp/good" create good_item '{"name": "forbidden"}' 2>&1); st=$?
check '[ $st = 1 ] && grep -q "is not allowed (plugin good)" <<<"$out"' "plugin veto: $out"
# A format a plugin registers: found by --format and by a file's ending, both ways.
out=$("$RAPPORT" --plugins "$tmp/good" plugins 2>&1)
check 'grep -q "formats: goodlist (import, export)" <<<"$out"' "plugins list formats: $out"
out=$("$RAPPORT" --plugins "$tmp/good" export good_item --format goodlist 2>&1); st=$?
check '[ $st = 0 ] && [ "$out" = "$(printf "# goodlist\nWidget\n# end")" ]' "export --format goodlist: $st $out"
out=$("$RAPPORT" --plugins "$tmp/good" export good_item -o "$tmp/items.good" 2>&1); st=$?
check '[ $st = 0 ] && grep -q "1 good_item records written" <<<"$out" && grep -qx "Widget" "$tmp/items.good"' "export by ending: $st $out"
printf '# goodlist\nsprocket\ngizmo\n' > "$tmp/more.goods"
out=$("$RAPPORT" --plugins "$tmp/good" import good_item "$tmp/more.goods" 2>&1); st=$?
check '[ $st = 0 ] && grep -q "2 created" <<<"$out"' "import by ending: $st $out"
out=$("$RAPPORT" --plugins "$tmp/good" find good_item --where '{"name": "Gizmo"}' 2>&1)
check 'grep -q "\"points\":1" <<<"$out"' "imported through the plugin's hook: $out"
out=$("$RAPPORT" --plugins "$tmp/good" export good_item --format nope 2>&1); st=$?
check '[ $st = 2 ] && grep -qF "export: format \"nope\" (csv, jsonl, " <<<"$out" && grep -qF " and goodlist are written)" <<<"$out"' "unknown format: $st $out"
out=$("$RAPPORT" --plugins "$tmp/good" export good_item --format jsonl 2>&1); st=$?
check '[ $st = 0 ] && [ $(wc -l <<<"$out") = 3 ]' "jsonl beside a plugin format: $st $out"
out=$("$RAPPORT" --plugins "$tmp/good" eval 'crm.good.double(21)' 2>&1)
check '[ "$out" = 42 ]' "plugin Lua function: $out"
out=$(RAPPORT_PLUGIN_PATH="$tmp/nowhere:$tmp/good" "$RAPPORT" eval 'crm.good.double(2)' 2>&1)
check '[ "$out" = 4 ]' "RAPPORT_PLUGIN_PATH: $out"
out=$("$RAPPORT" --plugins "$tmp/broken" --plugins "$tmp/good" plugins 2>&1); st=$?
check '[ $st = 1 ] && grep -q "RP-E1801: plugin doomed ($tmp/broken/initfail.so) failed to start: the licence key is missing" <<<"$out" && grep -q -- "--skip-broken" <<<"$out"' "broken plugin: $out"
out=$("$RAPPORT" --skip-broken --plugins "$tmp/broken" --plugins "$tmp/good" plugins 2>&1); st=$?
check '[ $st = 0 ] && grep -q "warn plugins skipping broken plugin" <<<"$out" && grep -q "^good 1.2.0" <<<"$out"' "skip-broken: $out"
out=$("$RAPPORT" --plugins "$tmp/chain" plugins 2>&1); st=$?
check '[ $st = 1 ] && grep -q "needs plugin good >= 1.0.0, which is not loaded" <<<"$out"' "missing dependency: $out"
out=$("$RAPPORT" frobnicate 2>&1); st=$?
check '[ $st = 2 ] && grep -q "unknown command \"frobnicate\"" <<<"$out"' "unknown command: $out"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
