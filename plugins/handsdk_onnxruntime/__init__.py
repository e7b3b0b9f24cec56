"""The default inference backend: ONNX Runtime, fp32 or INT8 models from the manifest."""

from __future__ import annotations

import logging

import numpy as np

from handsdk.backend import thread_option
from handsdk.errors import ConfigError, ModelError
from handsdk.hookspecs import Register, hookimpl
from handsdk.models import ModelSpec
from handsdk.plugins import import_optional

log = logging.getLogger(__name__)

# execution providers tried by device="auto", best first
AUTO_PROVIDERS = ("CUDAExecutionProvider", "CoreMLExecutionProvider", "DmlExecutionProvider",
                  "CPUExecutionProvider")
DEVICES = {"auto": None, "cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
           "coreml": "CoreMLExecutionProvider", "directml": "DmlExecutionProvider"}


class OnnxRuntimeRunner:
    def __init__(self, session, spec: ModelSpec):
        self.session = session
        self.input = session.get_inputs()[0].name
        names = [o.name for o in session.get_outputs()]
        # the manifest's order where the file names its outputs as the manifest does, else the
        # file's own (the tracker checks the shapes it gets when it loads the model)
        self.outputs = spec.outputs if set(spec.outputs) <= set(names) else names

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self.outputs, {self.input: np.ascontiguousarray(batch, np.float32)})


class OnnxRuntimeBackend:
    """``[backend] name = "onnxruntime"``; options ``device`` (auto, cpu, cuda, coreml,
    directml) and ``threads`` (intra-op threads; 0 = all cores but one, 1 to 4)."""

    name = "onnxruntime"

    def __init__(self, device: str = "auto", threads: int = 0):
        self.ort = import_optional("onnxruntime", "onnxruntime")
        if device not in DEVICES:
            raise ConfigError(f"onnxruntime: unknown device {device!r}; valid: {', '.join(DEVICES)}")
        available = self.ort.get_available_providers()
        if device == "auto":
            self.providers = [p for p in AUTO_PROVIDERS if p in available]
        else:
            wanted = DEVICES[device]
            if wanted not in available:
                raise ConfigError(f"onnxruntime: device {device!r} needs {wanted}, which this onnxruntime "
                                  f"build lacks (available: {', '.join(available)})")
            self.providers = [wanted, "CPUExecutionProvider"]
        self.device = self.providers[0]
        # one core left to the tracker: ONNX Runtime's pool threads spin-wait, and with every core
        # taken they fight the calling thread (2 cores, ASL clip end to end, 3 runs each:
        # 1 thread 146-165 FPS, 2 threads 68-136)
        self.threads = thread_option("onnxruntime", threads, leave_free=1)
        log.info("onnxruntime backend on %s, %d threads", self.device, self.threads)

    def load(self, spec: ModelSpec, variant: str = "fp32") -> OnnxRuntimeRunner:
        fmt = "onnx_int8" if variant == "int8" else "onnx"
        if spec.override is not None:
            fmt = "onnx"
        path = spec.path(fmt)
        opts = self.ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            session = self.ort.InferenceSession(str(path), opts, providers=self.providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"onnxruntime could not load {spec.name} model {str(path)!r}: {exc}") from exc
        return OnnxRuntimeRunner(session, spec)


@hookimpl
def handsdk_register_backends(register: Register) -> None:
    register("onnxruntime", OnnxRuntimeBackend)
