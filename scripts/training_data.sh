#!/usr/bin/env bash
# Everything the trainers and the per-photo evaluations read, rebuilt from scratch outside the
# work tree, so that a fresh machine is one command from training: the fetched sets that issue
# #20 allows, the teacher's labels (with the other hands and the verified hand-free strips), the
# faces off the hands, and the packs. A step whose output exists is skipped: after an
# interruption, run it again. About 3 minutes on 2 cores (2026-12-08: the sets ~1, the rest 2):
# the teacher's findings and the face cascades' boxes come from the committed
# scripts/teacher_labels.json.gz and scripts/faces_found.json.gz, and each runs only on photos
# they lack (the two took 18 and 18.5 of the 39 minutes of 2026-12-07, before the caches); labels
# and packs come out byte-identical.
# usage: scripts/training_data.sh OUT CLONES
#   CLONES: a folder holding a clone (or bare Git folder) of each allowed repository, named
#   OWNER+NAME (also looked for as OWNER+NAME/repo: the layout the tool library's fetch gives).
#   OUT gets fetched/ (the sets, also $HANDSDK_FETCHED for what reads them), labels.jsonl,
#   pack_full.npz (whole photos: the detector), pack_ctx5.npz (5 hand sizes around each hand:
#   the landmark trainer) and pack_gpu.npz (288 px, WebP 75, 31 MB: a device call carries 64 MiB,
#   the tree without the model files and the long run's committed state, 21 MB at width 1.5,
#   included; at JPEG 65, as attempt 2 trained on, it was 47 MB).
set -euo pipefail
out=$(realpath -m "$1"); clones=$(realpath "$2")
here=$(cd "$(dirname "$0")/.." && pwd)
export HANDSDK_FETCHED=${HANDSDK_FETCHED:-$out/fetched}
mkdir -p "$out" "$HANDSDK_FETCHED"

for name in closeup_hands counting_hands signer_home lab_gestures; do
  [ -f "$HANDSDK_FETCHED/$name/data.yaml" ] && continue
  repo=$(python3 -c "from handsdk.train.fetched import SOURCES; print(SOURCES['$name'].repo.replace('/', '+'))")
  for dir in "$clones/$repo/repo" "$clones/$repo"; do [ -d "$dir" ] && break; done
  [ -d "$dir" ] || { echo "no clone of $repo in $clones" >&2; exit 2; }
  python3 -m handsdk.train.fetched --name "$name" --repo "$dir"
done

# the teacher, one process per half of the photos, run only on photos whose bytes (and dataset box)
# scripts/teacher_labels.json.gz does not hold
if [ ! -f "$out/labels.jsonl" ]; then
  python3 -m handsdk.train.pseudolabel --out "$out/labels.a.jsonl" --cache "$here/scripts/teacher_labels.json.gz" \
    --datasets sign_digits asl_letters gesture_counts rock_paper_scissors closeup_hands > "$out/labels.a.log" 2>&1 &
  a=$!
  python3 -m handsdk.train.pseudolabel --out "$out/labels.b.jsonl" --cache "$here/scripts/teacher_labels.json.gz" \
    --datasets counting_hands signer_home lab_gestures > "$out/labels.b.log" 2>&1
  wait "$a"
  tail -n 1 "$out/labels.a.log" "$out/labels.b.log"
  cat "$out/labels.a.jsonl" "$out/labels.b.jsonl" > "$out/labels.tmp" && mv "$out/labels.tmp" "$out/labels.jsonl"
  rm "$out/labels.a.jsonl" "$out/labels.b.jsonl"
fi

# faces off the hands: OpenCV 4's Haar cascades, in a venv of their own (scripts/mine_faces.py),
# run only on photos whose bytes scripts/faces_found.json.gz does not hold
if ! head -n 1 "$out/labels.jsonl" | grep -q '"faces"'; then
  cv4=$out/.venv-cv4
  [ -x "$cv4/bin/python" ] || { python3 -m venv "$cv4" && "$cv4/bin/pip" install -q "opencv-python-headless<5" numpy; }
  python3 "$here/scripts/mine_faces.py" --python "$cv4/bin/python" --labels "$out/labels.jsonl" \
    --datasets signer_home counting_hands closeup_hands asl_letters gesture_counts
fi

[ -f "$out/pack_full.npz" ] || python3 -m handsdk.train.pack --labels "$out/labels.jsonl" --out "$out/pack_full.npz"
[ -f "$out/pack_ctx5.npz" ] || python3 -m handsdk.train.pack --labels "$out/labels.jsonl" --out "$out/pack_ctx5.npz" \
  --hand-context 5
[ -f "$out/pack_gpu.npz" ] || python3 -m handsdk.train.pack --labels "$out/labels.jsonl" --out "$out/pack_gpu.npz" \
  --hand-context 5 --max-side 288 --quality 75 --codec webp
ls -la "$out"
