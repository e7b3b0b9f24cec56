#!/usr/bin/env bash
# Several landmark runs side by side on one lent GPU, within one device call. A lent GPU gives
# 15 minutes of device time per session, start included, and one run alone leaves the GPU idle
# most of the time (the host prepares the batches), so runs share the call.
# usage: device_train.sh PACK MINUTES OUTDIR RUNS
#   RUNS: a file of lines "NAME  extra trainer options"; blank lines and # comments skipped.
#   OUTDIR gets NAME.best.pt for each run, NAME.state.pt (its compact resume state:
#   handsdk.train.state) and logs.tar (train logs, metrics, curves, GPU use), refreshed every 30 s,
#   so a call cut off by its limit still returns what it has.
#   A run longer than one loan: put its NAME.state.pt from the last call in a carried folder and
#   set HANDSDK_TRAIN_STATE to it; that run then resumes (--resume) where it stopped, and its
#   --minutes (or --crops) is the whole run's budget, which the cosine schedule spans across the
#   calls. The long run from scratch is the line "long --config scripts/long_run.toml": budgeted
#   in crops, so its CPU sittings (scripts/long_run.sh) and its GPU calls make one schedule.
set -uo pipefail
pack=$1; minutes=$2; out=$3; runs_file=$4
export PYTHONUNBUFFERED=1
work=${HANDSDK_TRAIN_WORK:-/tmp/handsdk-gpu}
mkdir -p "$work" "$out"
limit=$(python3 -c "print(int($minutes * 60 + ${HANDSDK_TRAIN_PAD_S:-75}))")  # setup and the last validation included
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$work/gpu.txt" 2>&1
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())" >> "$work/gpu.txt" 2>&1
nvidia-smi dmon -s u -d 5 > "$work/dmon.txt" 2>&1 &
dmon=$!
# --stop-after: a run budgeted in crops (--crops, e.g. scripts/long_run.toml) saves and stops in time
common=(--pack "$pack" --minutes "$minutes" --stop-after "$minutes" --val-every 45 --synthetic 1500)
names=()
pids=()
while read -r name args; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  names+=("$name")
  mkdir -p "$work/$name"
  carried="${HANDSDK_TRAIN_STATE:-}/$name.state.pt"
  if [ -n "${HANDSDK_TRAIN_STATE:-}" ] && [ -f "$carried" ]; then
    python3 -m handsdk.train.state expand "$carried" "$work/$name/last.pt" || exit 1
    args="$args --resume"
  fi
  # shellcheck disable=SC2086
  timeout "$limit" python3 -m handsdk.train.landmark --workdir "$work/$name" "${common[@]}" $args \
    > "$work/$name/train.log" 2>&1 &
  pids+=($!)
done < "$runs_file"
collect() {  # best weights and logs into OUTDIR; also while training, so a cut-off call keeps them
  for name in "${names[@]}"; do
    [ -f "$work/$name/best.pt" ] && cp "$work/$name/best.pt" "$out/.$name.tmp" && mv "$out/.$name.tmp" "$out/$name.best.pt"
    [ -f "$work/$name/last.pt" ] && python3 -m handsdk.train.state compact "$work/$name/last.pt" "$out/$name.state.pt" >/dev/null
  done
  tar -C "$work" -cf "$out/.logs.tmp" gpu.txt dmon.txt $(cd "$work" && ls -d */train.log */metrics.jsonl */curves.png 2>/dev/null) \
    && mv "$out/.logs.tmp" "$out/logs.tar"
}
(while sleep 30; do collect; done) &
collector=$!
for p in "${pids[@]}"; do wait "$p" || echo "a trainer ended with status $? (pid $p)"; done
kill "$dmon" "$collector" 2>/dev/null
collect
for name in "${names[@]}"; do
  echo "== $name"
  tail -n 1 "$work/$name/metrics.jsonl" 2>/dev/null \
    | python3 -c "import json,sys; m=json.load(sys.stdin); print(f\"{m['step']} steps in {m['elapsed_s']:.0f} s: {m['step']/m['elapsed_s']:.2f} steps/s\")"
  tail -n 2 "$work/$name/train.log"
done
ls -la "$out"
