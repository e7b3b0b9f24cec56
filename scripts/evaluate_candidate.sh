#!/usr/bin/env bash
# Candidate models against the shipped ones, photo by photo: the test every model change here
# passes before it ships (docs/models.md). Exports the candidate beside the shipped models (the
# shipped detector or landmark model fills in the one not given), scores both with `handsdk eval`
# on every valid photo (--per-photo) and on the ASL clip against MediaPipe full, and compares the
# two with scripts/compare_evals.py (paired bootstrap). The shipped models' scores are computed
# once per WORK folder and reused.
# usage: scripts/evaluate_candidate.sh NAME WORK [--landmark CKPT] [--detector CKPT] [--refit-presence]
#   CKPT: best.pt, or a trainer's last.pt (its EMA weights: handsdk.train.export.load_checkpoint).
#   --refit-presence: re-fit the landmark model's presence head first (handsdk.train.presence),
#     as every landmark model that shipped was; against the candidate's own detector if given.
#   WORK: outside the work tree; it gets m_NAME/ (the exported models), NAME.json, NAME.pp.jsonl,
#     NAME.asl.json, their logs, and NAME_vs_shipped.md.
# env: HANDSDK_TRAIN (default /root/handsdk-train): labels.jsonl and the packs from
#   scripts/training_data.sh; HANDSDK_DATA (default ../shared/data): the ASL clip.
set -euo pipefail
[ $# -ge 2 ] || { sed -n 2,15p "$0" >&2; exit 2; }
name=$1; work=$(realpath -m "$2"); shift 2
landmark=""; detector=""; refit=0
while [ $# -gt 0 ]; do
  case $1 in
    --landmark) landmark=$(realpath "$2"); shift 2 ;;
    --detector) detector=$(realpath "$2"); shift 2 ;;
    --refit-presence) refit=1; shift ;;
    *) echo "unknown option $1 (accepted: --landmark CKPT, --detector CKPT, --refit-presence)" >&2; exit 2 ;;
  esac
done
[ "$name" != shipped ] || { echo "NAME 'shipped' is the baseline's: pick another" >&2; exit 2; }
[ -n "$landmark$detector" ] || { echo "give --landmark and/or --detector: a candidate to score" >&2; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
train=${HANDSDK_TRAIN:-/root/handsdk-train}
clip=${HANDSDK_DATA:-$here/../shared/data}/asl_video
for f in "$train/labels.jsonl" "$train/pack_ctx5.npz" "$train/pack_full.npz" "$clip/asl_hand.25fps.mp4"; do
  [ -f "$f" ] || { echo "missing $f (scripts/training_data.sh builds the first three)" >&2; exit 2; }
done
mkdir -p "$work"; cd "$here"

score() {  # score NAME [handsdk eval options]: every valid photo, then the ASL clip
  local who=$1; shift
  handsdk eval --images "$train/labels.jsonl" --split valid --no-mediapipe "$@" \
    --per-photo "$work/$who.pp.jsonl" --out "$work/$who.json" > "$work/$who.eval.log" 2>&1
  handsdk eval --video "$clip/asl_hand.25fps.mp4" --reference "$clip/asl_hand.full.json" --no-mediapipe "$@" \
    --out "$work/$who.asl.json" > "$work/$who.asl.log" 2>&1
}

# the shipped models' scores, again whenever models/ changed since they were taken
if ! cmp -s models/manifest.json "$work/shipped.manifest.json"; then
  score shipped && cp models/manifest.json "$work/shipped.manifest.json"
fi

models=$work/m_$name
rm -rf "$models" "$work/$name".*; cp -r models "$models"
given=()  # the export's default for a model not given is the shipped one, copied into $models
[ -n "$detector" ] && given+=(--detector "$detector")
if [ -n "$landmark" ] && [ "$refit" = 1 ]; then
  proposer=()  # the presence head's hard negatives come from the detector that ships beside it
  if [ -n "$detector" ]; then
    python3 -m handsdk.train.export "${given[@]}" --out "$models" --detector-pack "$train/pack_full.npz" \
      > "$work/$name.proposer.log" 2>&1
    proposer=(--models "$models/manifest.json")
  fi
  python3 -m handsdk.train.presence --pack "$train/pack_ctx5.npz" --landmark "$landmark" "${proposer[@]}" \
    --out "$work/$name.presence.pt" > "$work/$name.presence.log" 2>&1
  landmark=$work/$name.presence.pt
fi
[ -n "$landmark" ] && given+=(--landmark "$landmark")
python3 -m handsdk.train.export "${given[@]}" --out "$models" --pack "$train/pack_ctx5.npz" \
  --detector-pack "$train/pack_full.npz" > "$work/$name.export.log" 2>&1
printf '[models]\nmanifest = "%s/manifest.json"\n' "$models" > "$work/$name.toml"
score "$name" --config "$work/$name.toml"
python3 scripts/compare_evals.py "$work/shipped.pp.jsonl" "$work/$name.pp.jsonl" > "$work/${name}_vs_shipped.md"
python3 - "$work" "$name" <<'PY'
import json, sys
work, name = sys.argv[1:]
for who in ("shipped", name):
    asl = json.load(open(f"{work}/{who}.asl.json"))["handsdk"]
    print(f"{who}: ASL clip mean error {100 * asl['epe_rel']:.2f} % of hand size, a hand in "
          f"{100 * asl['detection_rate']:.1f} % of frames")
print(f"every valid photo: {work}/{name}_vs_shipped.md")
PY
