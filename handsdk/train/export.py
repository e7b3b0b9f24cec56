"""Export trained checkpoints to ONNX (fp32 and INT8), TFLite (optional) and torch, and write
``models/manifest.json`` with each file's sha256, input size, normalisation and outputs.

``python -m handsdk.train.export --landmark best.pt --detector best.pt --out models``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from handsdk.script import ArgumentParser

from ..errors import ModelError
from ..models import bundled_models_dir, sha256
from ..nets import build
from .calibration import calibration_batches

MANIFEST_VERSION = 1
CALIBRATION_CROPS = 256  # real crops (or letterboxed frames) that set the INT8 activation ranges
OUTPUTS = {
    "landmark": ["landmarks", "confidence", "presence", "handedness"],
    "detector": ["heatmap", "geometry"],
}


def load_checkpoint(path: Path, kind: str) -> tuple[torch.nn.Module, dict]:
    """The ``kind`` model ("landmark" or "detector") in a checkpoint: best.pt or an exported .pt
    (``model``), or a trainer's last.pt, whose EMA weights (``ema``) are the ones its validation
    scored. A missing file or one holding the other model is a :class:`ModelError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{kind} checkpoint {str(path)!r} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=False)
    arch = state.get("arch", {}) if isinstance(state, dict) else {}
    try:
        if kind == "landmark":  # checkpoints from before sizes were saved: the size from the head's shape
            size = arch.get("input_size") or _landmark_size_from_state(state["model"])
        else:  # fully convolutional: export it at the size it was trained at (192 before sizes were saved)
            size = arch.get("input_size", 192)
        model = build({"class": "LandmarkNet" if kind == "landmark" else "DetectorNet", "input_size": size,
                       **({"width": arch["width"]} if "width" in arch else {})})
        model.load_state_dict(state["ema"] if "ema" in state else state["model"])
    except (KeyError, RuntimeError, TypeError) as exc:
        raise ModelError(f"{str(path)!r} is not a {kind} checkpoint ({arch.get('class', 'unknown model')}: "
                         f"{type(exc).__name__}: {str(exc)[:200]})") from exc
    return model.eval(), state.get("metrics", {})


def _landmark_size_from_state(sd: dict) -> int:
    cells = sd["kp_fc.0.weight"].shape[1] // 8
    return int(round(cells ** 0.5)) * 32


def export_onnx(model: torch.nn.Module, size: int, out: Path, names: list[str]) -> None:
    x = torch.rand(1, size, size, 3)
    torch.onnx.export(model, (x,), str(out), input_names=["image"], output_names=names,
                      dynamic_axes={"image": {0: "batch"}, **{n: {0: "batch"} for n in names}},
                      opset_version=17, dynamo=False)


def quantize_int8(src: Path, dst: Path, calibration: np.ndarray) -> None:
    """Static QDQ INT8 quantisation with real crops as calibration data.

    Activation ranges by percentile, not min / max: a few extreme activations set the min / max
    ranges and cost the INT8 landmark model 0.028 crop PCK against fp32 (0.901 vs 0.928 on every
    valid photo, models 0.2.4); percentile ranges on 256 crops give 0.914 (docs/models.md)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calibration[i:i + 1] for i in range(len(calibration)))

        def get_next(self):
            batch = next(self.it, None)
            return None if batch is None else {"image": batch.astype(np.float32)}

    pre = dst.with_suffix(".pre.onnx")
    quant_pre_process(str(src), str(pre))
    options = dict(quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                   weight_type=QuantType.QInt8, per_channel=True)
    try:
        quantize_static(str(pre), str(dst), Reader(), calibrate_method=CalibrationMethod.Percentile, **options)
    except ValueError as exc:
        # a tensor that is constant to within a float32 step over every calibration crop (a
        # saturated sigmoid: presence 1.0 everywhere) cannot be cut into histogram bins
        if "bins" not in str(exc):
            raise
        print(f"{src.name}: percentile calibration failed ({exc}); the INT8 activation ranges are "
              "min / max instead", file=sys.stderr)
        quantize_static(str(pre), str(dst), Reader(), calibrate_method=CalibrationMethod.MinMax, **options)
    pre.unlink()


def _tflite_converter():
    try:
        import litert_torch
    except ImportError:
        try:
            import ai_edge_torch as litert_torch
        except ImportError:
            return None
    return litert_torch


def tflite_exporter_available() -> bool:
    return _tflite_converter() is not None


def export_tflite(model: torch.nn.Module, size: int, out: Path) -> bool:
    """TFLite through ``litert-torch`` (the ``export-tflite`` extra); False when it is missing."""
    litert_torch = _tflite_converter()
    if litert_torch is None:
        return False
    edge = litert_torch.convert(model, (torch.rand(1, size, size, 3),))
    edge.export(str(out))
    return True


def file_entry(path: Path, root: Path) -> dict:
    return {"path": str(path.relative_to(root)), "sha256": sha256(path), "bytes": path.stat().st_size}


def _entry(kind: str, model: torch.nn.Module, size: int, metrics: dict, version: str,
           presence_threshold: float | None = None) -> dict:
    entry = {
        "version": version, "input_size": size, "input_layout": "NHWC",
        "input": "float32 RGB in [0, 1]", "normalisation": "(x - 0.5) / 0.25, inside the graph",
        "outputs": OUTPUTS[kind], "arch": model.arch,
        "params": int(sum(p.numel() for p in model.parameters())),
        "train_metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
    }
    if kind == "landmark":
        entry["crop_scale"] = 1.5
        if presence_threshold is not None:
            entry["presence_threshold"] = presence_threshold
        entry["output_layout"] = {
            "landmarks": "(N, 21, 3): x, y in crop units [0, 1], z / crop side, wrist-relative",
            "confidence": "(N, 21) per-landmark confidence", "presence": "(N, 1) hand presence",
            "handedness": "(N, 1) probability of a right hand (unmirrored image)"}
    else:
        entry["stride"] = 8
        entry["output_layout"] = {
            "heatmap": "(N, 1, S/8, S/8) hand-centre score (sigmoid)",
            "geometry": "(N, 7, S/8, S/8): centre offset in cells (2), log(side / S), "
                        "wrist and middle-MCP offsets from the centre in sides (4)"}
    return entry


FILE_NAMES = {"onnx": "{k}.onnx", "onnx_int8": "{k}_int8.onnx", "tflite": "{k}.tflite", "torch": "{k}.pt"}


def write_manifest(out: Path, entries: dict[str, dict]) -> dict:
    """List every exported file that exists in ``out`` with its sha256 and size."""
    manifest = {"manifest_version": MANIFEST_VERSION, "models": {}}
    for kind, entry in entries.items():
        entry["files"] = {fmt: file_entry(out / name.format(k=kind), out)
                          for fmt, name in FILE_NAMES.items() if (out / name.format(k=kind)).exists()}
        manifest["models"][kind] = entry
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _manifest_field(path: Path, kind: str, key: str) -> Any:
    """``key`` of ``kind``'s entry in the manifest already at ``path``, or None."""
    try:
        return json.loads(path.read_text())["models"][kind].get(key)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(prog="python -m handsdk.train.export", description=__doc__)
    ap.add_argument("--landmark", type=Path, help="training checkpoint (default: the exported models/landmark.pt)")
    ap.add_argument("--detector", type=Path, help="training checkpoint (default: models/detector.pt)")
    ap.add_argument("--out", type=Path, default=None, help="models folder (default: the bundled one)")
    ap.add_argument("--pack", type=Path, help="pack for INT8 calibration crops")
    ap.add_argument("--detector-pack", type=Path,
                    help="pack of whole photos for the detector's INT8 calibration frames (default: --pack). "
                         "A pack cut to the hands (--hand-context) shows the detector big, centred hands "
                         "only; calibrated on whole photos its INT8 file finds more small hands (models 0.2.6)")
    ap.add_argument("--version", help="model version in the manifest (default: the one already in --out's "
                                      "manifest, so a --tflite-only re-export keeps it; else 0.1.0)")
    ap.add_argument("--presence-threshold", type=float,
                    help="the landmark model's presence threshold, measured with the detector it ships with "
                         "(the tracker's default min_presence_confidence; default: the one already in --out's "
                         "manifest, else none and the tracker's fallback)")
    ap.add_argument("--tflite-only", action="store_true",
                    help="only (re)export TFLite from the torch files in --out (needs litert-torch)")
    args = ap.parse_args(argv)
    if args.presence_threshold is not None and not 0.0 <= args.presence_threshold <= 1.0:
        print(f"error: --presence-threshold must be in [0, 1], got {args.presence_threshold}", file=sys.stderr)
        return 2
    out = args.out or bundled_models_dir()
    if args.tflite_only and not tflite_exporter_available():
        print("error: --tflite-only needs litert-torch (pip install 'handsdk[export-tflite]'); nothing "
              "was changed", file=sys.stderr)
        return 2
    # both checkpoints load before anything is written: a wrong path leaves the folder as it was
    try:
        models = {kind: load_checkpoint(getattr(args, kind) or out / f"{kind}.pt", kind)
                  for kind in ("landmark", "detector")}
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    entries = {}
    for kind, (model, metrics) in models.items():
        size = model.input_size
        if not args.tflite_only:
            export_onnx(model, size, out / f"{kind}.onnx", OUTPUTS[kind])
            quantize_int8(out / f"{kind}.onnx", out / f"{kind}_int8.onnx",
                          calibration_batches(kind, size, (args.detector_pack or args.pack) if kind == "detector"
                                              else args.pack, n=CALIBRATION_CROPS))
            torch.save({"model": model.state_dict(), "arch": model.arch,
                        "metrics": metrics}, out / f"{kind}.pt")
        tfl = out / f"{kind}.tflite"
        if not export_tflite(model, size, tfl) and tfl.exists():
            tfl.unlink()  # a TFLite file from older weights must not stay listed
            print(f"{tfl} removed: litert-torch is not installed, so it could not be re-exported")
        version = args.version or _manifest_field(out / "manifest.json", kind, "version") or "0.1.0"
        presence = None
        if kind == "landmark":  # the landmark model's presence head is what the threshold is for
            presence = (args.presence_threshold if args.presence_threshold is not None
                        else _manifest_field(out / "manifest.json", kind, "presence_threshold"))
        entries[kind] = _entry(kind, model, size, metrics, version, presence)
    manifest = write_manifest(out, entries)
    print(json.dumps({k: {f: v["bytes"] for f, v in e["files"].items()} for k, e in manifest["models"].items()}))
    return 0


if __name__ == "__main__":
    from handsdk.script import run_script

    raise SystemExit(run_script(main))
