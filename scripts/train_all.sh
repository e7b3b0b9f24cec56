#!/usr/bin/env bash
# Train both models side by side (on one GPU if there is one, else CPU) from a training pack.
# usage: scripts/train_all.sh PACK OUTDIR MINUTES [extra landmark sizes...]
set -euo pipefail
pack=$1; out=$2; minutes=$3; shift 3
export PYTHONUNBUFFERED=1
work=${HANDSDK_TRAIN_WORK:-/tmp/handsdk-train}
mkdir -p "$out" "$work"
pids=()
for size in 224 "$@"; do
  python3 -m handsdk.train.landmark --pack "$pack" --workdir "$work/landmark$size" \
    --minutes "$minutes" --input-size "$size" --synthetic "${HANDSDK_SYNTHETIC:-3000}" > "$out/landmark$size.log" 2>&1 &
  pids+=($!)
done
python3 -m handsdk.train.detector --pack "$pack" --workdir "$work/detector" \
  --minutes "$minutes" --synthetic "${HANDSDK_SYNTHETIC:-3000}" > "$out/detector.log" 2>&1 &
pids+=($!)
for p in "${pids[@]}"; do wait "$p" || echo "a trainer failed (pid $p)"; done
for d in "$work"/*/; do
  name=$(basename "$d")
  cp "$d/best.pt" "$out/$name.best.pt" 2>/dev/null || true
done
# one archive of the metrics logs (curves), so few files come back from a remote machine
tar -C "$work" -cf "$out/metrics.tar" $(cd "$work" && ls -d */metrics.jsonl)
# re-fit the presence head on hard negatives (the bundled detector's proposals on hand-free strips;
# landmarks unchanged): export "$out/landmark224.presence.pt" as the landmark model
if [ -f "$out/landmark224.best.pt" ]; then
  python3 -m handsdk.train.presence --pack "$pack" --landmark "$out/landmark224.best.pt" \
    --out "$out/landmark224.presence.pt" > "$out/presence.log" 2>&1 || echo "presence re-fit failed"
fi
