#!/usr/bin/env bash
# `make demo`: a fresh demo database filled with a living CRM (the operational plugin's
# entities and the default rules at work), a few things a user does every day, and the engine
# running for a moment so the rules that wait for events and deadlines act.
set -euo pipefail
RAPPORT=${RAPPORT:-build/rapport}
DB=${RAPPORT_DEMO_DB:-demo.db}
rm -f "$DB" "$DB-wal" "$DB-shm"
r() { echo "\$ rapport $*" | cut -c1-160; "$RAPPORT" --db "$DB" "$@"; echo; }

r init
# Who new leads and tickets go to, and who hears of a breached SLA (the default rules read these).
r config set rules.assignment.users '["ana", "ben", "cy", "dana"]'
r config set rules.sla_escalation.supervisor '"head_of_support"'
r config set plugin.operational.default_country '"US"'
r demo-data
r count contact
r find deal --where '{"stage": {"in": ["proposal", "negotiation"]}}' --order -amount --limit 5 --fields name,amount,stage,probability
r search acme
r eval 'local l = crm.create("lead", {first_name = "Grace", last_name = "Hopper", email = "GRACE@Navy.example", phone = "(202) 555-0199", company = "US Navy", source = "referral"})
        return l.email .. " " .. l.phone .. ", score " .. l.score .. ", owner " .. l.owner'
r convert-lead 31 --deal "Navy pilot" --amount 25000
r explain lead 31 status
printf 'first_name,last_name,email,phone\nAlan,Turing,alan@bletchley.example,020 7946 0001\nJoan,Clarke,,+44 20 7946 0002\n' > "$DB.import.csv"
r import contact "$DB.import.csv"
rm -f "$DB.import.csv"
r eval 'local t = crm.create("ticket", {subject = "Site down", priority = "urgent"})
        return t.subject .. ": first answer due " .. t.first_response_due .. ", owner " .. t.owner'
echo "\$ rapport serve   # for three seconds: handlers, deadlines and the rules that wait on them"
"$RAPPORT" --db "$DB" serve > "$DB.serve.log" 2>&1 &
serve=$!
sleep 3
kill -TERM "$serve"
wait "$serve" || true
head -5 "$DB.serve.log"
rm -f "$DB.serve.log"
echo
r find ticket --where '{"sla_breached": true}' --fields subject,priority,escalated_to --limit 3
r find activity --where '{"subject": {"starts_with": "Onboarding"}}' --fields subject,owner,due_at --limit 3
r duplicates contact
r events tail -n 3
# The API: an admin with a token, and the engine serving HTTP on the same loop as its rules.
LISTEN=${RAPPORT_DEMO_LISTEN:-127.0.0.1:8080}
head -c 18 /dev/urandom | base64 | "$RAPPORT" --db "$DB" users add admin --role admin --password-stdin
TOKEN=$("$RAPPORT" --db "$DB" tokens create --user admin --expires 30d 2>/dev/null | grep -o 'rpt_[A-Za-z0-9_-]*' | head -1)
cat <<EOT

The demo database is $DB. An admin token for the API (shown once):

  $TOKEN

Try, while the engine serves http://$LISTEN below:
  curl -s -H "Authorization: Bearer $TOKEN" 'http://$LISTEN/api/v1/deal?stage=won&limit=5'
  curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
       -d '{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}' http://$LISTEN/api/v1/contact
  curl -s http://$LISTEN/openapi.json | head -c 300

And on the same database, from another terminal:
  $RAPPORT --db $DB repl                       # Lua at a prompt: crm.find("deal", {where = {stage = "won"}})
  $RAPPORT --db $DB export contact -o contacts.vcf
  $RAPPORT test plugins/operational/scripts    # the default rules' tests, on a virtual clock

EOT
if [ -n "${RAPPORT_DEMO_NO_SERVE:-}" ]; then
    exit 0
fi
echo "\$ rapport serve --listen $LISTEN   (Ctrl-C stops it)"
exec "$RAPPORT" --db "$DB" serve --listen "$LISTEN"
