"""Where the landmark model's time goes: the MobileNetV3-Small backbone alone vs the whole model,
and what a larger backbone would cost.

    python scripts/backbone_latency.py [--threads N]   # ONNX Runtime, batch 1; N default 1

``--threads`` defaults to 1, the tracker's default for ONNX Runtime; the figures in
docs/benchmarks.md before 2026-12-07's end-to-end check were taken with ``--threads 2``, which
flattered the wide backbones (width 1.5: an estimated 3.4× MediaPipe full, measured 2.47×, before
the tracker's ``overlap_detector``; 3.90× with it).
A model's cost is settled end to end with ``handsdk bench``, not here.

Exports the backbone of ``handsdk/nets.py`` (random weights: speed does not depend on
them) at several input sizes, and at 224² at several widths (issue #20's capacity lever: the
landmark trainer's ``--width``), and times each beside the shipped ``models/landmark.onnx``. The
numbers go into docs/benchmarks.md and docs/models.md (the ≤ 0.6 ms per crop target, the
width of the long run).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from handsdk.models import bundled_models_dir
from handsdk.nets import MobileNetV3Small
from handsdk.script import ArgumentParser, positive_int


def median_ms(path: Path, shape: tuple[int, ...], threads: int, n: int = 400) -> float:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    for _ in range(50):
        sess.run(None, {name: x})
    times = []
    for _ in range(n):
        t = time.perf_counter()
        sess.run(None, {name: x})
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=positive_int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    threads = ap.parse_args(argv).threads
    print(f"onnxruntime {ort.__version__}, {threads} thread(s), batch 1, median of 400")
    print(f"  shipped landmark.onnx (224², backbone + SimCC head): "
          f"{median_ms(bundled_models_dir() / 'landmark.onnx', (1, 224, 224, 3), threads):.3f} ms")
    net = MobileNetV3Small().eval()
    with tempfile.TemporaryDirectory() as tmp:
        for size in (224, 192, 160, 128):
            path = Path(tmp) / f"backbone{size}.onnx"
            torch.onnx.export(net, torch.rand(1, 3, size, size), str(path), dynamo=False, opset_version=17)
            print(f"  MobileNetV3-Small backbone alone, {size}²: {median_ms(path, (1, 3, size, size), threads):.3f} ms")
        for width in (1.25, 1.5, 2.0):
            wide = MobileNetV3Small(width).eval()
            path = Path(tmp) / f"backbone224_w{width}.onnx"
            torch.onnx.export(wide, torch.rand(1, 3, 224, 224), str(path), dynamo=False, opset_version=17)
            params = sum(p.numel() for p in wide.parameters()) / 1e6
            print(f"  MobileNetV3-Small backbone alone, 224², width {width} ({params:.2f} M parameters): "
                  f"{median_ms(path, (1, 3, 224, 224), threads):.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
