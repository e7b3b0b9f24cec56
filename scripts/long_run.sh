#!/usr/bin/env bash
# One CPU sitting of the long landmark run (scripts/long_run.toml), resumed where the last one
# stopped. Run it in the background; it validates and saves before it stops, and a run killed
# mid-step loses at most the steps since its last validation (--val-every, 10 minutes here).
# usage: scripts/long_run.sh PACK WORKDIR [MINUTES]
#   PACK: pack_gpu.npz from scripts/training_data.sh (the pack a device call can carry too).
#   WORKDIR: outside the work tree; it holds last.pt, best.pt, metrics.jsonl, curves.png.
#   MINUTES: this sitting's length (default: until the run's crop budget is spent).
set -euo pipefail
pack=$1; work=$2; minutes=${3:-0}
here=$(cd "$(dirname "$0")/.." && pwd)
resume=(); [ -f "$work/last.pt" ] && resume=(--resume)
exec python3 -m handsdk.train.landmark --config "$here/scripts/long_run.toml" --pack "$pack" \
  --workdir "$work" --val-every 600 --stop-after "$minutes" "${resume[@]}"
