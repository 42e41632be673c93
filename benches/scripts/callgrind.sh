#!/bin/bash
# Instructions per request of the server's request path, counted by callgrind
# (repeatable on a busy machine, unlike wall-clock time).
#
#   benches/scripts/callgrind.sh <label> <loadgen arguments...>
#   benches/scripts/callgrind.sh s1 --requests 200000
#   benches/scripts/callgrind.sh s3 --requests 100000 --set-ratio 1:0 --value-size 1024 --key-base 1000000000
#
# Starts target/release/ferrocache under valgrind with instrumentation off,
# preloads the default key space (PRELOAD_ARGS adds loadgen arguments to the
# preload), switches instrumentation on for the measured load only, and
# prints total instructions / requests. The profile is left in
# target/callgrind/<label>.<pid>.1 for callgrind_annotate (add
# --inclusive=yes for the call tree).
set -euo pipefail
label=$1; shift
cd "$(dirname "$0")/../.."
cargo build --release --bin ferrocache --bench loadgen >/dev/null 2>&1
lg=$(ls -t target/release/deps/loadgen-* | grep -v '\.d$' | head -1)
out=target/callgrind; mkdir -p $out; rm -f $out/$label.*
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$out/$label.%p \
  target/release/ferrocache -p 0 -l 127.0.0.1 -t 2 -m 1024 2> $out/$label.err &
vg=$!
for _ in $(seq 150); do grep -q "listening on" $out/$label.err 2>/dev/null && break; sleep 0.2; done
addr=$(grep -o "listening on .*" $out/$label.err | awk '{print $3}')
$lg --addr "$addr" --requests 1000 --preload ${PRELOAD_ARGS:-} >/dev/null
callgrind_control -i on $vg >/dev/null
$lg --addr "$addr" "$@" | tee $out/$label.load
callgrind_control -d $vg >/dev/null 2>&1
kill $vg; wait $vg 2>/dev/null || true
f=$(ls $out/$label.*.1 | head -1)
req=$(grep -o "[0-9]* req in" $out/$label.load | awk '{print $1}')
ir=$(callgrind_annotate "$f" 2>/dev/null | grep "PROGRAM TOTALS" | awk '{gsub(",","",$1); print $1}')
echo "$label: $ir instructions, $req requests, $((ir / req)) per request ($f)"
