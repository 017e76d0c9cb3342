# shellcheck shell=bash
# Reading regmeter's /metrics and upload Locations from e2e scripts; sourced
# after lib.sh by the session, repository and replica tests.
# val FILE NAME [label=value...]: like promq.py, in awk (python starts slowly
# on a loaded machine): sum of the matching samples, or "absent".
val() {
    awk -v name="$2" -v want="${*:3}" '
        BEGIN { n = split(want, w, " "); found = 0; total = 0 }
        /^#/ || NF < 2 { next }
        {
            series = $1; labels = ""
            b = index(series, "{")
            if (b) { labels = "," substr(series, b + 1, length(series) - b - 1) ","; series = substr(series, 1, b - 1) }
            if (series != name) next
            for (i = 1; i <= n; i++) {
                e = index(w[i], "=")
                if (!index(labels, "," substr(w[i], 1, e - 1) "=\"" substr(w[i], e + 1) "\",")) next
            }
            total += $2; found = 1
        }
        END { if (!found) print "absent"; else if (total == int(total)) printf "%.0f\n", total; else printf "%.9g\n", total }' "$1"
}
# snap URL: take a scrape; v NAME [label=value...] reads values from it.
snap() { scrape "$1" >"$E2E_TMP/snap.txt" || fail "scrape of $1 failed"; }
v() { val "$E2E_TMP/snap.txt" "$@"; }
ses() { v "regmeter_upload_session_$1_$2" "outcome=$3"; }   # duration|size count|sum outcome
# wait_val URL SECONDS EXPECTED NAME [label=value...]
wait_val() {
    local url=$1 secs=$2 want=$3 got deadline=$((SECONDS + $2))
    shift 3
    while :; do
        snap "$url"
        got=$(v "$@")
        [[ "$got" == "$want" ]] && return 0
        ((SECONDS < deadline)) || fail "$* is [$got], expected [$want] (waited ${secs}s)"
        sleep 0.2
    done
}

# req METHOD URL [curl args...]: prints the status; headers land in $E2E_TMP/last.hdr.
req() {
    local method=$1 url=$2
    shift 2
    curl -sS --max-time 30 -X "$method" -D "$E2E_TMP/last.hdr" -o "$E2E_TMP/last.body" \
        -w '%{http_code}' "$@" "$url"
}
last_location() { header "$E2E_TMP/last.hdr" Location; }
rm_of() { sed -n 's/.*[?&]_rm=\([^&]*\).*/\1/p' <<<"$1"; }   # the _rm token of a URL
rm_bytes() { printf '%d' "0x${1#*.}"; }                       # its byte count, decimal
fgt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 > b + 0) }'; }   # float a > b
fge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
