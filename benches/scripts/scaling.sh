#!/bin/bash
# Throughput against server threads, for a machine with more cores than this
# one (see "Scaling on paper" in docs/PERFORMANCE.md). Run the client on other
# cores (taskset) or another host for figures that mean something.
#
#   benches/scripts/scaling.sh [threads...]      default: 1 2 4 8 16 32 64
#   PROTOCOL=meta benches/scripts/scaling.sh     (once ferrocache speaks meta)
set -euo pipefail
cd "$(dirname "$0")/../.."
threads=${*:-1 2 4 8 16 32 64}
common=(--threads 16 --conns 512 --pipeline 16 --duration 20 --protocol "${PROTOCOL:-text}")
for t in $threads; do
  echo "== server threads $t"
  cargo bench -q --bench loadgen -- --server both --server-threads "$t" "${common[@]}" \
      --preload --set-ratio 1:9
  cargo bench -q --bench loadgen -- --server both --server-threads "$t" "${common[@]}" \
      --set-ratio 1:0 --value-size 100
  cargo bench -q --bench loadgen -- --server both --server-threads "$t" "${common[@]}" \
      --preload --set-ratio 1:9 --dist zipf:0.99
done
