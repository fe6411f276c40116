#!/usr/bin/env bash
# End-to-end: the portal's knowledge base over HTTP without signing in (kb.c). Checked: only
# published articles are listed, found, read or voted on (an unpublished one is 404 everywhere,
# search included, and again once unpublished); the search folds Arabic and Persian letter
# forms (ي/ی, ك/ک) and diacritics both ways; category, language and paging filters; the JSON
# shapes, with the body rendered to HTML and nothing internal shown; a hostile body reaches the
# page without a script; "was this helpful" counts once per client per article, and a refused
# vote stores nothing; the server's security headers.
set -u
RAPPORT=${RAPPORT:-build/rapport}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../../tests/e2e/lib.sh"
tmp=$(mktemp -d)
serve_pid=
cleanup() {
    [ -n "$serve_pid" ] && kill -9 "$serve_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
export RAPPORT_DB="$tmp/crm.db"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

# get PATH: a public GET (no token), setting $code and $body; post PATH BODY likewise.
get() { code=$(curl -s -o "$tmp/body" -w '%{http_code}' "$U$1"); body=$(cat "$tmp/body"); }
post() {
    code=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        --data-binary "$2" "$U$1")
    body=$(cat "$tmp/body")
}
# slugs: the slugs of the last list answer, in order, space-separated.
slugs() { python3 -c 'import json,sys; print(" ".join(a["slug"] for a in json.load(sys.stdin)["data"]))' <<<"$body"; }
# fld ID FIELD: a field of article ID, as stored.
fld() { "$RAPPORT" eval "return crm.get('article', $1).$2" 2>/dev/null; }

"$RAPPORT" init >/dev/null || { bad "init failed"; finish; exit 1; }
mk() { "$RAPPORT" create article "$1" 2>&1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
# Persian, written with the Persian letters ی and ک.
fa=$(mk '{"title": "کیف پول", "body": "برای **شارژ** کیف پول به تنظیمات بروید", "language": "fa", "category": "billing", "published": true, "slug": "wallet-fa"}')
# Written with the Arabic letters ي and ك (as an Arabic keyboard types them).
ar=$(mk '{"title": "كارت هديه", "body": "كد را وارد كنيد", "language": "fa", "published": true, "slug": "gift-card"}')
en=$(mk '{"title": "Reset your password", "body": "# Steps\n\n1. Open **Settings**\n2. Click [reset](https://example.com/reset)\n\n<script>alert(1)</script> [x](javascript:alert(1))", "category": "account", "published": true}')
draft=$(mk '{"title": "Upcoming zebra pricing", "body": "secret plans", "category": "account"}')
check '[ -n "$fa" ] && [ -n "$ar" ] && [ -n "$en" ] && [ -n "$draft" ]' "articles not created"
check '[ "$(fld "$en" slug)" = reset-your-password ]' "slug not made from the title: $(fld "$en" slug)"

"$RAPPORT" serve --listen 127.0.0.1:0 2> "$tmp/serve.log" &
serve_pid=$!
port=$(listened_port "$tmp/serve.log" 400)
[ -n "$port" ] || { bad "serve did not start: $(cat "$tmp/serve.log")"; finish; exit 1; }
U="http://127.0.0.1:$port/api/v1/plugins/portal"

# ---- the list: published only, newest first, the public shape -------------------------------
get /articles
is 200 '"next":null' "list"
check '[ "$(slugs)" = "reset-your-password gift-card wallet-fa" ]' "list: $(slugs)"
check '! grep -q "zebra\|search_text\|created_by\|\"id\"\|\"body\"" <<<"$body"' "list shows what it must not: $body"
check 'python3 -c "import json,sys; a=json.load(sys.stdin)[\"data\"][0]; sys.exit(sorted(a) != sorted([\"slug\",\"title\",\"category\",\"language\",\"updated_at\",\"helpful_yes\",\"helpful_no\"]))" <<<"$body"' "list item keys: $body"

# ---- search: letter variants fold both ways, and never reaches a draft ------------------------
q() { get "/articles?q=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1")"; }
q "كيف"           # Arabic ك and ي for the Persian article.
check '[ "$(slugs)" = wallet-fa ]' "Arabic-letter query for a Persian article: $body"
q "کارت هدیه"     # Persian ک and ی for the Arabic-letter article.
check '[ "$(slugs)" = gift-card ]' "Persian-letter query for an Arabic-letter article: $body"
q "شارژ كِيف"     # Two words, one with a kasra: both must match.
check '[ "$(slugs)" = wallet-fa ]' "diacritics and two words: $body"
q "RESET password"
check '[ "$(slugs)" = reset-your-password ]' "case folding: $body"
q "zebra"
is 200 '"data":[]' "search must not find a draft"
q "wallet zebra"
is 200 '"data":[]' "every word must match"
get "/articles?q=$(head -c 300 /dev/zero | tr '\0' a)"
is 422 "at most 256 bytes" "long query"
get "/articles?category=account"
check '[ "$(slugs)" = reset-your-password ]' "category: $body"
get "/articles?lang=fa&limit=1"
check '[ "$(slugs)" = gift-card ]' "lang + limit: $body"
next=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["next"] or "")' <<<"$body")
get "/articles?lang=fa&limit=1&after=$next"
check '[ -n "$next" ] && [ "$(slugs)" = wallet-fa ]' "after: $body"
get "/articles?lang=EN!"
is 422 "not a language tag" "bad lang"
get "/articles?limit=0"
is 422 "limit: 1 to 50" "limit 0"
get "/articles?after=not-a-cursor"
is 422 "articles:" "a forged cursor"
get "/articles?q=a%00b"
check '[ "$code" = 400 ] || [ "$code" = 422 ]' "a NUL in the query: $code $body"

# ---- one article by slug ---------------------------------------------------------------------
get /articles/reset-your-password
is 200 '"html":"<h1>Steps</h1>' "article"
check 'grep -qF "<strong>Settings</strong>" <<<"$body" && grep -qF "<a href=\\\"https://example.com/reset\\\">reset</a>" <<<"$body"' "article html: $body"
check '! grep -qi "<script\|javascript:" <<<"$body"' "hostile body reached the page: $body"
check '! grep -q "search_text\|\"body\"\|created_by" <<<"$body"' "article shows internals: $body"
get /articles/upcoming-zebra-pricing
is 404 "no article" "a draft by slug"
get /articles/nothing-here
is 404 "no article" "unknown slug"
get "/articles/%3Cscript%3E"
is 404 "no such article" "hostile slug"
get /articles/reset-your-password/other
is 404 "" "unknown path under an article"

# ---- was this helpful: once per client per article ------------------------------------------
post /articles/reset-your-password/helpful '{"yes": true}'
is 200 '{"helpful_yes":1,"helpful_no":0}' "first vote"
post /articles/reset-your-password/helpful '{"yes": false}'
is 409 "already has your vote" "second vote from the same client"
check '[ "$(fld "$en" helpful_yes)/$(fld "$en" helpful_no)" = 1/0 ]' "counts stored: $(fld "$en" helpful_yes)/$(fld "$en" helpful_no)"
post /articles/wallet-fa/helpful '{"yes": false}'
is 200 '{"helpful_yes":0,"helpful_no":1}' "a vote on another article"
post /articles/gift-card/helpful '{"yes": "maybe"}'
is 422 '{\"yes\": true}' "a vote that is not a boolean"
post /articles/gift-card/helpful 'not json'
is 422 "" "a vote that is not JSON"
post /articles/upcoming-zebra-pricing/helpful '{"yes": true}'
is 404 "" "a vote on a draft"
check '[ "$(count article_feedback)" = 2 ]' "feedback rows: $(count article_feedback)"
check '[ "$(fld "$draft" helpful_yes)" = 0 ]' "a draft's count moved"
get /articles/reset-your-password/helpful
is 405 "POST only" "GET on helpful"
get /articles/reset-your-password
is 200 '"helpful_yes":1' "the count shows on the article"
# A vote is not an edit: the public date stays that of the last change to the content.
check 'grep -qF "\"updated_at\":\"$(fld "$en" revised_at)\"" <<<"$body" && [ "$(fld "$en" revised_at)" != "$(fld "$en" updated_at)" ]' "a vote moved the article's date: $body / $(fld "$en" updated_at)"

# ---- unpublished again: gone from every path --------------------------------------------------
"$RAPPORT" update article "$fa" '{"published": false}' >/dev/null
get /articles/wallet-fa
is 404 "" "unpublished article"
q "کیف"
is 200 '"data":[]' "unpublished article through search"

# ---- headers: the server's security headers on the public routes ------------------------------
curl -s -D "$tmp/h" -o /dev/null "$U/articles"
for h in "x-content-type-options: nosniff" "x-frame-options: DENY" "content-security-policy: default-src 'self'" "content-type: application/json"; do
    check 'grep -qiF "$h" "$tmp/h"' "header missing: $h: $(cat "$tmp/h")"
done

kill -TERM "$serve_pid"; wait "$serve_pid" 2>/dev/null; serve_pid=
finish
