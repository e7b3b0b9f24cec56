"""A minimal third-party inference backend: OpenCV's DNN module running the manifest's ONNX files.

The module is the plugin (its ``handsdk_register_backends`` hook is a module-level function), so
in a package the entry point ``[project.entry-points.handsdk] opencv_dnn = "backend_plugin"``
registers it; in code, ``handsdk.plugins.pm.register(backend_plugin)``. Then
``[backend] name = "opencv_dnn"`` selects it. Run this file to compare it with ONNX Runtime.
"""

from __future__ import annotations

import cv2
import numpy as np

from handsdk import ConfigError, hookimpl
from handsdk.backend import note_fp32_only, thread_option
from handsdk.hookspecs import Register
from handsdk.models import ModelSpec


class OpenCVRunner:
    def __init__(self, net: cv2.dnn.Net, outputs: list[str]):
        self.net, self.outputs = net, outputs

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        results = []
        for x in batch:  # OpenCV's importer fixes the batch size at 1
            self.net.setInput(np.ascontiguousarray(x[None], np.float32))
            results.append(self.net.forward(self.outputs))
        return [np.concatenate([r[i] for r in results]) for i in range(len(self.outputs))]


class OpenCVBackend:
    name = "opencv_dnn"

    def __init__(self, device: str = "auto", threads: int = 0):
        # check options the way the first-party backends do: a bad value fails here, by name
        if device not in ("auto", "cpu"):
            raise ConfigError(f"opencv_dnn: unknown device {device!r}; valid: auto, cpu")
        self.device = "cpu (OpenCV DNN)"
        self.threads = thread_option("opencv_dnn", threads)
        if threads:  # OpenCV's thread count is process-wide: change it only when asked
            cv2.setNumThreads(self.threads)

    def load(self, spec: ModelSpec, variant: str = "fp32") -> OpenCVRunner:
        note_fp32_only(self.name, variant)  # it runs the fp32 ONNX files only: say so for "int8"
        net = cv2.dnn.readNetFromONNX(str(spec.path("onnx")))
        return OpenCVRunner(net, spec.outputs)


@hookimpl
def handsdk_register_backends(register: Register) -> None:
    register("opencv_dnn", OpenCVBackend)


if __name__ == "__main__":
    import sys

    from handsdk import Tracker
    from handsdk.plugins import pm
    from handsdk.synthetic import synthetic_clip

    pm.register(sys.modules[__name__], name="opencv_dnn_example")
    frame = next(iter(synthetic_clip(1))).image
    ours = Tracker({"backend": {"name": "opencv_dnn"}}).detect(frame)
    ref = Tracker().detect(frame)
    diff = np.abs(ours[0].landmarks[:, :2] - ref[0].landmarks[:, :2]).mean()
    print(f"opencv_dnn vs onnxruntime: {len(ours)} vs {len(ref)} hands, mean difference {diff:.3f} px")
