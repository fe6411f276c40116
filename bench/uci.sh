#!/usr/bin/env bash
# The UCI Online Retail log (541,909 lines, ../shared/data/online_retail) loaded and analysed end
# to end, as a user would: each step's seconds. Not run by `make bench` (it needs the shared
# data): RAPPORT=build-release/rapport bash bench/uci.sh
# The conversion keeps the lines with a CustomerID (cancellations too, as negative purchases):
# customer = the id, at = InvoiceDate, amount = Quantity × UnitPrice (to the cent), ref = the
# invoice.
set -euo pipefail
RAPPORT=${RAPPORT:-build-release/rapport}
data=${RP_SHARED_DATA:-$(dirname "$0")/../../shared/data}/online_retail/online_retail.csv.xz
[ -f "$data" ] || { echo "uci.sh: no $data" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export RAPPORT_DB="$tmp/crm.db"
step() {
    local name=$1; shift
    local t0=$EPOCHREALTIME
    "$@" > "$tmp/out" 2>&1 || { cat "$tmp/out"; exit 1; }
    printf '%-34s %7.2f s\n' "$name" "$(python3 -c "print($EPOCHREALTIME - $t0)")"
}
convert() {
    xz -dc "$data" | python3 -c '
import csv, sys
from decimal import Decimal, ROUND_HALF_UP
r = csv.DictReader(sys.stdin); w = csv.writer(sys.stdout, lineterminator="\n")
w.writerow(["customer", "at", "amount", "ref"])
for row in r:
    if not row["CustomerID"]:
        continue
    amount = (Decimal(row["Quantity"]) * Decimal(row["UnitPrice"])).quantize(Decimal("0.01"), ROUND_HALF_UP)
    w.writerow([row["CustomerID"].split(".")[0], row["InvoiceDate"], amount, row["InvoiceNo"]])
' > "$tmp/uci.csv"
}
step "convert (xz, python)" convert
echo "$(($(wc -l < "$tmp/uci.csv") - 1)) purchases with a customer"
step "init" "$RAPPORT" init
step "import purchase" "$RAPPORT" import purchase "$tmp/uci.csv" --quiet
step "analytics rfm (stored)" "$RAPPORT" analytics rfm --as-of 2011-12-10
step "analytics pareto" "$RAPPORT" analytics pareto --as-of 2011-12-10
grep -E '^(customers|gini|shares)' "$tmp/out"
step "analytics cohorts --by month" "$RAPPORT" analytics cohorts --by month
step "analytics fit bgnbd" "$RAPPORT" analytics fit bgnbd --calibration-end 2011-12-09
grep -E '^(params|log_likelihood|customers|fit_ms)' "$tmp/out"
step "analytics fit gammagamma" "$RAPPORT" analytics fit gammagamma --calibration-end 2011-12-09
grep -E '^(params|customers)' "$tmp/out"
step "analytics clv (stored)" "$RAPPORT" analytics clv --as-of 2011-12-09
grep -E '^(customers|at_risk|clv_predicted_total)' "$tmp/out"
