"""PyTorch backend: runs the torch checkpoints of the manifest (``pip install 'handsdk[torch]'``)."""

from __future__ import annotations

import logging

import numpy as np

from handsdk.backend import note_fp32_only, thread_option
from handsdk.errors import ConfigError, ModelError
from handsdk.hookspecs import Register, hookimpl
from handsdk.models import ModelSpec
from handsdk.plugins import import_optional

log = logging.getLogger(__name__)
DEVICES = ("auto", "cpu", "cuda", "mps")


class TorchRunner:
    def __init__(self, model, device):
        self.model, self.device = model, device
        self.torch = import_optional("torch", "torch")

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        with self.torch.inference_mode():
            x = self.torch.from_numpy(np.ascontiguousarray(batch, np.float32)).to(self.device)
            return [o.float().cpu().numpy() for o in self.model(x)]


class TorchBackend:
    """``[backend] name = "torch"``; options ``device`` (auto, cpu, cuda, mps), ``threads``."""

    name = "torch"

    def __init__(self, device: str = "auto", threads: int = 0):
        self.torch = import_optional("torch", "torch")
        if device not in DEVICES:
            raise ConfigError(f"torch: unknown device {device!r}; valid: {', '.join(DEVICES)}")
        if device == "auto":
            if self.torch.cuda.is_available():
                device = "cuda"
            elif getattr(self.torch.backends, "mps", None) and self.torch.backends.mps.is_available():
                device = "mps"
            else:
                device = "cpu"
        elif device == "cuda" and not self.torch.cuda.is_available():
            raise ConfigError("torch: device 'cuda' requested but torch sees no CUDA device")
        self.device = device
        self.threads = thread_option("torch", threads)
        if device == "cpu":
            self.torch.set_num_threads(self.threads)
        log.info("torch backend on %s", self.device)

    def load(self, spec: ModelSpec, variant: str = "fp32") -> TorchRunner:
        from handsdk import nets  # the architectures; torch only

        note_fp32_only(self.name, variant)
        path = spec.path("torch")
        try:
            state = self.torch.load(path, map_location="cpu", weights_only=False)
            model = nets.build(state["arch"])
            model.load_state_dict(state["model"])
        except Exception as exc:
            raise ModelError(f"torch could not load {spec.name} checkpoint {str(path)!r}: {exc}") from exc
        model = model.eval().to(self.device)
        if self.device == "cpu":
            model = model.to(memory_format=self.torch.channels_last)
        return TorchRunner(model, self.device)


@hookimpl
def handsdk_register_backends(register: Register) -> None:
    register("torch", TorchBackend)
