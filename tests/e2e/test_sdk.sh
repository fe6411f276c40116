#!/usr/bin/env bash
# End-to-end: the plugin SDK as a vendor meets it. Installs the engine into a temporary prefix,
# builds sdk/template and examples/loyalty out of tree against it (CMake and pkg-config), loads
# them, runs their Lua tests, and drives the loyalty plugin's command on a real database.
set -u
# The bare core (no built-in plugins): these tests define their own entities, such as a
# "contact" of their own; the built-in plugins' entities are driven by their own tests.
export RAPPORT_PLUGINS_BUILTIN=0
RAPPORT=${RAPPORT:-build/rapport}
RP_SOURCE=${RP_SOURCE:-.}
RAPPORT=$(cd "$(dirname "$RAPPORT")" && pwd)/$(basename "$RAPPORT")
RP_SOURCE=$(cd "$RP_SOURCE" && pwd)
tmp=$(mktemp -d)
serve_pid=
trap '[ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"
unset RAPPORT_PLUGIN_PATH RAPPORT_SCRIPTS
passed=0 failed=0

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

# expect STATUS NEEDLE -- ARGS…: runs rapport, checks the exit status and that NEEDLE is in the
# output (stdout and stderr together).
expect() {
    local want=$1 needle=$2; shift 3
    local out status
    out=$("$RAPPORT" "$@" 2>&1); status=$?
    if [ "$status" != "$want" ]; then
        bad "rapport $*: exit $status, wanted $want; output: $out"
    elif [ -n "$needle" ] && ! grep -qF -- "$needle" <<<"$out"; then
        bad "rapport $*: output lacks \"$needle\": $out"
    else
        ok
    fi
}

# step WHAT COMMAND…: runs a build step quietly; its log's tail is shown when it fails.
step() {
    local what=$1; shift
    if "$@" > "$tmp/step.log" 2>&1; then
        ok
    else
        bad "$what failed: $(tail -n 25 "$tmp/step.log")"
        return 1
    fi
}

# has NEEDLE TEXT WHAT: checks that TEXT holds NEEDLE.
has() {
    grep -qF -- "$1" <<<"$2" && ok || bad "$3 lacks \"$1\": $2"
}

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
    exit
}

# ---- the engine, installed as `make install PREFIX=…` does --------------------------------
prefix="$tmp/prefix"
step "configuring the engine" cmake -S "$RP_SOURCE" -B "$tmp/engine" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" || finish
step "building the engine" cmake --build "$tmp/engine" -j2 || finish
step "installing the engine" cmake --install "$tmp/engine" || finish
for f in bin/rapport include/rapport_plugin.h lib/pkgconfig/rapport-plugin.pc \
         lib/cmake/RapportPlugin/RapportPluginConfig.cmake \
         lib/cmake/RapportPlugin/RapportPluginConfigVersion.cmake; do
    [ -f "$prefix/$f" ] && ok || bad "make install left no $f"
done
for d in lib/rapport/plugins share/rapport/scripts; do
    [ -d "$prefix/$d" ] && ok || bad "make install left no folder $d"
done
cmp -s "$prefix/include/rapport_plugin.h" "$RP_SOURCE/sdk/include/rapport_plugin.h" && ok ||
    bad "the installed header differs from sdk/include/rapport_plugin.h"
out=$("$prefix/bin/rapport" --version 2>&1)
has "rapport 0." "$out" "the installed rapport --version"

# ---- pkg-config: the flags, and a plugin built with nothing else -------------------------
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
if pkg-config --exists rapport-plugin; then ok; else bad "pkg-config finds no rapport-plugin"; fi
cflags=$(pkg-config --cflags rapport-plugin)
has "-fvisibility=hidden" "$cflags" "pkg-config --cflags rapport-plugin"
incdir=$(pkg-config --variable=includedir rapport-plugin)
[ -f "$incdir/rapport_plugin.h" ] && ok || bad "pkg-config's includedir lacks the header: $incdir"
[ -z "$(pkg-config --libs rapport-plugin)" ] && ok ||
    bad "a plugin should link nothing of the engine: $(pkg-config --libs rapport-plugin)"
abi=$(sed -n 's/^#define RAPPORT_PLUGIN_ABI \([0-9]*\).*/\1/p' "$incdir/rapport_plugin.h")
[ "$(pkg-config --variable=abi rapport-plugin)" = "$abi" ] && ok ||
    bad "pkg-config's abi is $(pkg-config --variable=abi rapport-plugin), the header's $abi"
mkdir -p "$tmp/pc/template"
# shellcheck disable=SC2086 # the flags are words
step "building the template with pkg-config" cc -std=c11 -Wall -Wextra -Werror -shared -fPIC \
    $cflags -o "$tmp/pc/template/template.so" "$RP_SOURCE/sdk/template/template.c"

# ---- every example of sdk/docs/plugins.md: each ```c block a plugin, each ```lua a test -----
doc="$RP_SOURCE/sdk/docs/plugins.md"
awk -v out="$tmp/doc" '
    BEGIN { system("mkdir -p " out "/plugins " out "/tests") }
    /^```(c|lua)[ \t]*$/ && !inside {
        inside = 1; n++
        file = sprintf("%s/%s/doc%02d%s", out, $0 ~ /lua/ ? "tests" : "plugins", n,
                       $0 ~ /lua/ ? "_test.lua" : ".c")
        next
    }
    /^```[ \t]*$/ && inside { inside = 0; close(file); next }
    inside { print > file }
    END { if (inside) { print "unterminated block " n > "/dev/stderr"; exit 1 } }
' "$doc" || bad "$doc has an unterminated code block"
for c in "$tmp"/doc/plugins/*.c; do
    # shellcheck disable=SC2086 # the flags are words
    step "compiling the example $(basename "$c") of plugins.md" cc -std=c11 -Wall -Wextra -Werror \
        -shared -fPIC $cflags -o "${c%.c}.so" "$c"
done
ls "$tmp"/doc/tests/*_test.lua > /dev/null 2>&1 && ok || bad "plugins.md has no \`\`\`lua test"
out=$("$RAPPORT" --plugins "$tmp/doc/plugins" test "$tmp/doc/tests" 2>&1); status=$?
[ "$status" = 0 ] && grep -qE '^[1-9][0-9]* passed, 0 failed$' <<<"$out" && ok ||
    bad "the Lua examples of plugins.md fail with its C examples loaded: $out"

# ---- CMake, out of tree: build, and install into a vendor prefix -------------------------
vendor="$tmp/vendor"
for src in sdk/template examples/loyalty; do
    name=$(basename "$src")
    step "configuring $name" cmake -S "$RP_SOURCE/$src" -B "$tmp/$name" \
        -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
        "-DCMAKE_C_FLAGS=-Wall -Wextra -Wshadow -Werror" || continue
    step "building $name" cmake --build "$tmp/$name" || continue
    step "installing $name" cmake --install "$tmp/$name" --prefix "$vendor"
    so="$tmp/$name/$name/$name.so"
    [ -f "$so" ] && ok || bad "the build left no $name/$name.so"
    [ -f "$tmp/$name/$name/scripts/${name}_test.lua" ] && ok ||
        bad "$name's build folder does not ship its scripts/"
    [ -f "$vendor/lib/rapport/plugins/$name/$name.so" ] && ok ||
        bad "cmake --install left no lib/rapport/plugins/$name/$name.so"
    [ -f "$vendor/lib/rapport/plugins/$name/scripts/${name}_test.lua" ] && ok ||
        bad "cmake --install left no lib/rapport/plugins/$name/scripts/"
    # -fvisibility=hidden: the entry function is all a plugin shows.
    exported=$(nm -D --defined-only "$so" 2>&1 | awk '{print $3}' | tr '\n' ' ')
    [ "$exported" = "rapport_plugin_entry " ] && ok ||
        bad "$name.so exports more than its entry function: $exported"
done
plugins="$vendor/lib/rapport/plugins"

# ---- a vendor's first steps with the installed binary: plugin new, build, test, check -----
# The installed rapport carries the skeleton: no source tree is needed (none is named here).
out=$(cd "$tmp" && "$prefix/bin/rapport" plugin new acme "$tmp/acme-src" 2>&1)
has "wrote the plugin acme in $tmp/acme-src" "$out" "the installed rapport plugin new"
if step "configuring acme" cmake -S "$tmp/acme-src" -B "$tmp/acme-build" \
        -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
        "-DCMAKE_C_FLAGS=-Wall -Wextra -Wshadow -Werror" &&
   step "building acme" cmake --build "$tmp/acme-build"; then
    acme="$tmp/acme-build/acme/acme.so"
    out=$("$prefix/bin/rapport" --plugins "$tmp/acme-build" test "$tmp/acme-src/scripts" 2>&1)
    grep -qx "3 passed, 0 failed" <<<"$out" && ok || bad "acme's own tests: $out"
    out=$("$prefix/bin/rapport" plugin check "$acme" 2>&1); status=$?
    [ "$status" = 0 ] && ok || bad "plugin check acme.so: exit $status: $out"
    has "ok: acme 0.1.0 (ABI 1)" "$out" "plugin check acme.so"
    has "entities: acme_note" "$out" "plugin check acme.so"
    has "lua: crm.acme.notes" "$out" "plugin check acme.so"
    grep -Eq "^  fields of acme_note: (pinned \(boolean\), text \(text\)|text \(text\), pinned \(boolean\))$" <<<"$out" &&
        ok || bad "plugin check acme.so shows no fields: $out"
    out=$("$prefix/bin/rapport" plugin check "$acme" --json 2>&1)
    [ "$(jq -r '.fields.acme_note.text' <<<"$out")" = text ] && ok || bad "plugin check --json: $out"
fi
# A shared object with no plugin in it, and acme built for another ABI: refused, and said why.
printf 'int not_a_plugin(void) { return 1; }\n' > "$tmp/nosym.c"
step "building a library with no plugin" cc -shared -fPIC -o "$tmp/nosym.so" "$tmp/nosym.c"
out=$("$prefix/bin/rapport" plugin check "$tmp/nosym.so" 2>&1); status=$?
[ "$status" = 1 ] && ok || bad "plugin check nosym.so: exit $status"
has "plugin file $tmp/nosym.so has no entry function rapport_plugin_entry (export it with RAPPORT_EXPORT)" \
    "$out" "plugin check nosym.so"
sed 's/\.abi = RAPPORT_PLUGIN_ABI,/.abi = RAPPORT_PLUGIN_ABI + 1,/' "$tmp/acme-src/acme.c" > "$tmp/acme_abi.c"
grep -q "RAPPORT_PLUGIN_ABI + 1" "$tmp/acme_abi.c" && ok || bad "the skeleton's descriptor has no .abi line"
# shellcheck disable=SC2086 # the flags are words
step "building acme for another ABI" cc -std=c11 -shared -fPIC $cflags -o "$tmp/acme_abi.so" \
    "$tmp/acme_abi.c"
out=$("$prefix/bin/rapport" plugin check "$tmp/acme_abi.so" 2>&1); status=$?
[ "$status" = 1 ] && ok || bad "plugin check acme_abi.so: exit $status"
has "plugin acme ($tmp/acme_abi.so) was built for plugin ABI $((abi + 1)); this engine speaks ABI $abi" \
    "$out" "plugin check acme_abi.so"

# ---- both plugins loaded: what they registered ------------------------------------------
expect 0 "initialised" -- init
out=$("$RAPPORT" --plugins "$plugins" plugins 2>&1)
has "template 0.1.0 (ABI 1)" "$out" "rapport plugins"
has "entities: template_note" "$out" "rapport plugins"
has "lua: crm.template.notes" "$out" "rapport plugins"
has "loyalty 1.0.0 (ABI 1)" "$out" "rapport plugins"
has "file: $plugins/loyalty/loyalty.so" "$out" "rapport plugins"
has "entities: loyalty_customer, loyalty_account, loyalty_award, loyalty_purchase" "$out" \
    "rapport plugins"
has "hooks: loyalty_purchase.create, loyalty_purchase.update" "$out" "rapport plugins"
has "loyalty.purchases (loyalty_purchase.created)" "$out" "rapport plugins"
has "jobs: loyalty.expire" "$out" "rapport plugins"
has "schedules: loyalty.expire (0 3 * * *) -> loyalty.expire" "$out" "rapport plugins"
has "lua: crm.loyalty.balance" "$out" "rapport plugins"
has "commands: loyalty top" "$out" "rapport plugins"
expect 0 '"name": "loyalty"' -- --plugins "$plugins" plugins --json
# The one built with pkg-config loads as well as the CMake one.
expect 0 "lua: crm.template.notes" -- --plugins "$tmp/pc" plugins

# ---- their Lua tests, on fresh databases with the plugins loaded -------------------------
tests_pass() { # FOLDER…: rapport test passes, and ran something
    local out status
    out=$("$RAPPORT" "$@" 2>&1); status=$?
    if [ "$status" = 0 ] && grep -qE '^[1-9][0-9]* passed, 0 failed$' <<<"$out"; then
        ok
    else
        bad "rapport $*: exit $status: $out"
    fi
}
tests_pass --plugins "$plugins" test "$plugins/template/scripts"
tests_pass --plugins "$plugins" test "$plugins/loyalty/scripts"
tests_pass --plugins "$tmp/template" test "$RP_SOURCE/sdk/template/scripts"
tests_pass --plugins "$tmp/loyalty" test "$RP_SOURCE/examples/loyalty/scripts"

# ---- the installed engine finds plugins installed into its own prefix -------------------
step "installing loyalty into the engine's prefix" cmake --install "$tmp/loyalty" --prefix "$prefix"
out=$(RAPPORT_PLUGINS_BUILTIN=1 "$prefix/bin/rapport" plugins 2>&1)
has "file: $prefix/lib/rapport/plugins/loyalty/loyalty.so" "$out" \
    "the installed rapport plugins (no --plugins)"

# ---- rapport loyalty top, on a database with a few purchases ----------------------------
# RAPPORT_PLUGIN_PATH instead of --plugins from here on.
export RAPPORT_PLUGIN_PATH="$tmp/nowhere:$plugins"
expect 0 "no loyalty accounts yet" -- loyalty top
expect 0 '"name":"Grace Hopper"' -- create loyalty_customer \
    '[{"name": "Ada Lovelace"}, {"name": "Grace Hopper"}, {"name": "Émile Zola"}]'
expect 0 '"amount":"120.50"' -- create loyalty_purchase \
    '[{"member": 1, "amount": "120.50"}, {"member": 2, "amount": 900},
      {"member": 3, "amount": "42.99"}, {"member": 1, "amount": "7"}]'
expect 1 "LOYALTY-E1: a purchase amount must be above zero" -- create loyalty_purchase \
    '{"member": 1, "amount": "-5"}'
# The points come from an event handler: the engine runs it.
"$RAPPORT" serve --poll-ms 50 > "$tmp/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 300); do
    [ "$("$RAPPORT" eval 'return crm.loyalty.balance(1)' 2>/dev/null)" = 127 ] && break
    sleep 0.1
done
kill -TERM "$serve_pid"; wait "$serve_pid"; status=$?
[ "$status" = 0 ] && ok || bad "rapport serve exited $status on SIGTERM: $(cat "$tmp/serve.log")"
serve_pid=
expect 0 "127" -- eval 'return crm.loyalty.balance(1)'
# The same balance over HTTP, through the plugin's own route, as the calling user.
expect 0 "routes: GET /api/v1/plugins/loyalty/balance" -- plugins
"$RAPPORT" users add vera --role admin --password-stdin <<<"vera's password" >/dev/null
"$RAPPORT" roles set nobody '{"entities": {"loyalty_account": {"read": "all"}}}' >/dev/null
"$RAPPORT" users add nina --role nobody --password-stdin <<<"nina's password" >/dev/null
vtok=$("$RAPPORT" tokens create --user vera 2>/dev/null | grep -o 'rpt_[A-Za-z0-9_-]*')
ntok=$("$RAPPORT" tokens create --user nina 2>/dev/null | grep -o 'rpt_[A-Za-z0-9_-]*')
"$RAPPORT" serve --listen 127.0.0.1:0 --poll-ms 50 > "$tmp/serve.log" 2>&1 &
serve_pid=$!
port=
for _ in $(seq 100); do
    port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$tmp/serve.log" | cut -d: -f2)
    [ -n "$port" ] && break
    sleep 0.05
done
get() { curl -s -w ' %{http_code}' -H "Authorization: Bearer $1" "http://127.0.0.1:$port$2"; }
out=$(get "$vtok" /api/v1/plugins/loyalty/balance/1)
[ "$out" = '{"member": 1, "points": 127} 200' ] && ok || bad "the loyalty route answered: $out"
out=$(get "$vtok" /api/v1/plugins/loyalty/balance/999)
grep -q ' 404$' <<<"$out" && ok || bad "a missing member over the route: $out"
out=$(get "$ntok" /api/v1/plugins/loyalty/balance/1)
grep -q 'missing: loyalty_customer.read.* 403$' <<<"$out" && ok || bad "the route did not act as its caller: $out"
out=$(get "$vtok" /api/v1/plugins/loyalty/nothing)
grep -q 'plugin loyalty has no route GET /nothing.* 404$' <<<"$out" && ok || bad "an unknown route: $out"
out=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$port/api/v1/plugins/loyalty/balance/1")
grep -q ' 401$' <<<"$out" && ok || bad "a route without a token: $out"
kill -TERM "$serve_pid"; wait "$serve_pid"; serve_pid=
out=$("$RAPPORT" loyalty top 2>&1)
want="RANK  MEMBER  NAME          POINTS  TIER
   1       2  Grace Hopper     900  silver
   2       1  Ada Lovelace     127  bronze
   3       3  Émile Zola        42  bronze"
[ "$out" = "$want" ] && ok || bad "rapport loyalty top printed:
$out
wanted:
$want"
[ "$("$RAPPORT" loyalty top 1 | wc -l)" = 2 ] && ok || bad "rapport loyalty top 1 is not one row"
expect 2 "usage: rapport loyalty top [N]" -- loyalty top none
expect 2 "it has:" -- loyalty bottom

# ---- its setting, and refusals as a vendor meets them -----------------------------------
expect 0 "set plugin.loyalty.expire_days" -- config set plugin.loyalty.expire_days 30
expect 0 "Grace Hopper" -- loyalty top
expect 0 "set plugin.loyalty.expire_days" -- config set plugin.loyalty.expire_days '"soon"'
expect 1 "plugin.loyalty.expire_days must be a number of days above 0" -- loyalty top
expect 1 "failed to start" -- plugins
expect 0 "skipping broken plugin: RP-E1801: plugin loyalty" -- --skip-broken plugins
expect 0 "template 0.1.0" -- --skip-broken plugins
expect 0 "unset plugin.loyalty.expire_days" -- config unset plugin.loyalty.expire_days
expect 1 "has the same name as the plugin loaded from" -- --plugins "$tmp/pc" plugins
expect 0 "loyalty 1.0.0" -- --plugins "$tmp/pc" --skip-broken plugins

finish
