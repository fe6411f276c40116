#!/usr/bin/env bash
# `make demo`: a fresh demo database, a small CRM defined at run time, a few changes, and what
# the engine recorded about them (schema, search, explain, the event log).
set -euo pipefail
RAPPORT=${RAPPORT:-build/rapport}
DB=${RAPPORT_DEMO_DB:-demo.db}
rm -f "$DB" "$DB-wal" "$DB-shm"
r() { echo "\$ rapport $*" | cut -c1-160; "$RAPPORT" --db "$DB" "$@"; echo; }

r init
r define account '{"label": "Account", "fields": {
  "name": {"type": "text", "required": true, "searchable": true},
  "domain": {"type": "text", "unique": true},
  "industry": {"type": "enum", "values": ["software", "retail", "finance", "health"]}}}'
r define contact '{"label": "Contact", "fields": {
  "first_name": {"type": "text", "searchable": true},
  "last_name": {"type": "text", "required": true, "searchable": true},
  "email": {"type": "email", "unique": true, "searchable": true},
  "phone": {"type": "phone"},
  "account": {"type": "ref", "ref": "account"}}}'
r define deal '{"label": "Deal", "fields": {
  "name": {"type": "text", "required": true, "searchable": true},
  "amount": {"type": "decimal", "scale": 2},
  "stage": {"type": "enum", "values": ["new", "qualified", "proposal", "negotiation", "won", "lost"], "default": "new", "indexed": true},
  "account": {"type": "ref", "ref": "account"},
  "expected_close": {"type": "date"}}}'
r create account '[{"name": "Acme Corporation", "domain": "acme.example", "industry": "software"},
                   {"name": "Globex", "domain": "globex.example", "industry": "finance"},
                   {"name": "شرکت پارس", "domain": "pars.example", "industry": "retail"}]'
r create contact '[{"first_name": "Ada", "last_name": "Lovelace", "email": "Ada@Acme.example", "phone": "+44 20 7946 0000", "account": 1},
                   {"first_name": "José", "last_name": "Álvarez", "email": "jose@globex.example", "account": 2},
                   {"first_name": "علي", "last_name": "رضايي", "email": "ali@pars.example", "account": 3}]'
r create deal '[{"name": "Acme platform licence", "amount": "48000.00", "account": 1, "expected_close": "2026-12-15"},
                {"name": "Globex audit", "amount": 12500.5, "stage": "qualified", "account": 2}]'
r update deal 1 '{"stage": "proposal"}' --if-version 1
r update deal 1 '{"stage": "won", "amount": "45000"}'
r add-field contact score '{"type": "integer", "default": 0, "indexed": true}'
r schema
r find deal --where '{"amount": {"gt": "10000"}, "stage": {"ne": "lost"}}' --order -amount --fields name,amount,stage
r search jose
r search علی
r explain deal 1 stage
r events tail -n 5
r eval 'local won = crm.count("deal", {stage = "won"}); return won .. " deal(s) won, worth " .. crm.get("deal", 1).amount'
r eval 'local _, changes = crm.dry_run(function() crm.update("deal", 2, {stage = "won"}) end); return changes.records'
echo "The demo database is $DB. Try:"
echo "  $RAPPORT --db $DB repl"
echo "  $RAPPORT --db $DB find contact --order last_name"
echo "  $RAPPORT --db $DB serve        # the engine: jobs, schedules, event handlers (Ctrl-C stops it)"
echo "  $RAPPORT test examples/rules   # an escalation rule and its tests, on a virtual clock"
