"""TFLite backend: ``ai-edge-litert`` (or ``tflite-runtime``) on the manifest's ``.tflite``
files (``pip install 'handsdk[tflite]'``)."""

from __future__ import annotations

import importlib

import numpy as np

from handsdk.backend import note_fp32_only, thread_option
from handsdk.errors import ConfigError, MissingDependencyError, ModelError
from handsdk.hookspecs import Register, hookimpl
from handsdk.models import ModelSpec


def _interpreter_class():
    for module in ("ai_edge_litert.interpreter", "tflite_runtime.interpreter"):
        try:
            return importlib.import_module(module).Interpreter
        except ImportError:
            continue
    raise MissingDependencyError("no TFLite runtime is installed (ai-edge-litert or tflite-runtime); "
                                 "install it with: pip install 'handsdk[tflite]'")


class TFLiteRunner:
    """One interpreter with batch size 1: a batch runs crop by crop (XNNPACK refuses to
    reshape the exported graphs to other batch sizes)."""

    def __init__(self, interpreter, spec: ModelSpec):
        self.it = interpreter
        self.input = interpreter.get_input_details()[0]["index"]
        by_name = {d["name"]: d["index"] for d in interpreter.get_output_details()}
        # litert-torch names outputs output_0…; the manifest order is the model's return order
        self.outputs = [by_name[k] for k in sorted(by_name, key=_natural)]

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        per_item = []
        for x in np.ascontiguousarray(batch, np.float32):
            self.it.set_tensor(self.input, x[None])
            self.it.invoke()
            per_item.append([self.it.get_tensor(i).copy() for i in self.outputs])
        return [np.concatenate([p[k] for p in per_item]) for k in range(len(self.outputs))]


def _natural(name: str):
    digits = "".join(c for c in name if c.isdigit())
    return (int(digits) if digits else -1, name)


class TFLiteBackend:
    """``[backend] name = "tflite"``; options ``device`` (cpu only) and ``threads``."""

    name = "tflite"

    def __init__(self, device: str = "auto", threads: int = 0):
        if device not in ("auto", "cpu"):
            raise ConfigError(f"tflite: device {device!r} is not supported; valid: auto, cpu")
        self.interpreter_cls = _interpreter_class()
        self.device = "cpu (XNNPACK)"
        self.threads = thread_option("tflite", threads)

    def load(self, spec: ModelSpec, variant: str = "fp32") -> TFLiteRunner:
        note_fp32_only(self.name, variant)
        path = spec.path("tflite")
        try:
            it = self.interpreter_cls(model_path=str(path), num_threads=self.threads)
            it.allocate_tensors()
        except Exception as exc:
            raise ModelError(f"TFLite could not load {spec.name} model {str(path)!r}: {exc}") from exc
        return TFLiteRunner(it, spec)


@hookimpl
def handsdk_register_backends(register: Register) -> None:
    register("tflite", TFLiteBackend)
