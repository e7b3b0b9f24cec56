#!/usr/bin/env bash
# One CPU sitting of the long landmark run (scripts/long_run.toml), resumed where the last one
# stopped, on this machine or on a fresh one. Run it in the background; it validates and saves
# before it stops, and a run killed mid-step loses at most the steps since its last validation
# (--val-every, 10 minutes here).
# usage: scripts/long_run.sh PACK WORKDIR [MINUTES]   a sitting
#        scripts/long_run.sh --save WORKDIR           at a session's end: the run's state into git
#   PACK: pack_gpu.npz from scripts/training_data.sh (the pack a device call can carry too).
#   WORKDIR: outside the work tree; it holds last.pt, best.pt, metrics.jsonl, curves.png.
#   MINUTES: this sitting's length (default: until the run's crop budget is spent).
# A machine is not always kept between sessions, and the run lasts many of them: --save writes its
# compact resume state (handsdk.train.state: 21.3 MB at width 1.5) and its metrics beside its records in
# $HANDSDK_LONG_RUN (default docs/runs/long-run/attempt3), to be committed; a sitting on a machine
# without WORKDIR/last.pt starts from that committed state, not from nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
records=${HANDSDK_LONG_RUN:-$here/docs/runs/long-run/attempt3}
if [ "${1:-}" = --save ]; then
  work=${2:?usage: scripts/long_run.sh --save WORKDIR}
  [ -f "$work/last.pt" ] || { echo "no $work/last.pt: nothing to save" >&2; exit 2; }
  python3 -m handsdk.train.state compact "$work/last.pt" "$records/long.state.pt"
  cp "$work/metrics.jsonl" "$records/metrics.jsonl"
  # drawn from the metrics here: a sitting stopped by a signal never drew its own
  python3 -c "import sys; from pathlib import Path; from handsdk.train.loop import plot_curves
from handsdk.train.landmark import CURVES; plot_curves(Path(sys.argv[1]), Path(sys.argv[2]), CURVES)" \
    "$records/metrics.jsonl" "$records/curves.png"
  echo "commit $records (long.state.pt, metrics.jsonl, curves.png) before the session ends"
  exit 0
fi
pack=$1; work=$2; minutes=${3:-0}
if [ ! -f "$work/last.pt" ] && [ -f "$records/long.state.pt" ]; then
  echo "no $work/last.pt: going on from the committed state $records/long.state.pt"
  python3 -m handsdk.train.state expand "$records/long.state.pt" "$work/last.pt"
  cp "$records/metrics.jsonl" "$work/metrics.jsonl"
fi
resume=(); [ -f "$work/last.pt" ] && resume=(--resume)
exec python3 -m handsdk.train.landmark --config "$here/scripts/long_run.toml" --pack "$pack" \
  --workdir "$work" --val-every 600 --stop-after "$minutes" "${resume[@]}"
