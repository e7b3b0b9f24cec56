#!/usr/bin/env bash
# Three landmark runs side by side on one lent GPU, within one device call (15 min of device time
# per session, start included): from scratch with the trainer's defaults, from scratch with the
# augmentation aimed at the held-out failures, and a large-batch fine-tune of the shipped weights.
# usage: device_run.sh PACK MINUTES OUTDIR    (OUTDIR gets the best.pt files and logs.tar)
set -uo pipefail
pack=$1; minutes=$2; out=$3
export PYTHONUNBUFFERED=1
work=${HANDSDK_TRAIN_WORK:-/tmp/handsdk-gpu}
mkdir -p "$work" "$out"
limit=$(python3 -c "print(int($minutes * 60 + ${HANDSDK_TRAIN_PAD_S:-75}))")  # setup and the last validation included
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$work/gpu.txt" 2>&1
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())" >> "$work/gpu.txt" 2>&1
nvidia-smi dmon -s u -d 5 > "$work/dmon.txt" 2>&1 &
dmon=$!
common=(--pack "$pack" --minutes "$minutes" --val-every 45 --synthetic 1500)
declare -A runs=(
  [scratch]=""
  [scratch_failaug]="--edge-cut-share 0.25 --stretch-share 0.15 --hand-free-share 0.15 --background-share 0.4"
  [finetune]="--init models/landmark.pt --lr 1e-3"
)
pids=()
for name in "${!runs[@]}"; do
  mkdir -p "$work/$name"
  # shellcheck disable=SC2086
  timeout "$limit" python3 -m handsdk.train.landmark --workdir "$work/$name" "${common[@]}" ${runs[$name]} \
    > "$work/$name/train.log" 2>&1 &
  pids+=($!)
done
collect() {  # best weights and logs into OUTDIR; also while training, so a cut-off call keeps them
  for name in "${!runs[@]}"; do
    [ -f "$work/$name/best.pt" ] && cp "$work/$name/best.pt" "$out/.$name.tmp" && mv "$out/.$name.tmp" "$out/$name.best.pt"
  done
  tar -C "$work" -cf "$out/.logs.tmp" gpu.txt dmon.txt $(cd "$work" && ls -d */train.log */metrics.jsonl */curves.png 2>/dev/null) \
    && mv "$out/.logs.tmp" "$out/logs.tar"
}
(while sleep 30; do collect; done) &
collector=$!
for p in "${pids[@]}"; do wait "$p" || echo "a trainer ended with status $? (pid $p)"; done
kill "$dmon" "$collector" 2>/dev/null
collect
for name in "${!runs[@]}"; do echo "== $name"; tail -n 2 "$work/$name/train.log"; done
ls -la "$out"
