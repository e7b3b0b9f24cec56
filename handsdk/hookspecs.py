"""The hooks a handsdk plugin can implement (pluggy, project name ``handsdk``).

Registration hooks receive a ``register(name, factory)`` callable; ``factory(**options)`` is
called with the options of the matching config section and must return the component.
Event hooks let a plugin watch the pipeline without being configured as a consumer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("handsdk")
hookimpl = HookimplMarker("handsdk")

Register = Callable[[str, Callable[..., Any]], None]


@hookspec
def handsdk_register_backends(register: Register) -> None:
    """Register inference backends: ``register("onnxruntime", OnnxRuntimeBackend)``.

    A backend factory takes ``device``, ``threads`` and its own options and returns an object
    following :class:`handsdk.backend.Backend`.
    """


@hookspec
def handsdk_register_filters(register: Register) -> None:
    """Register landmark filters: ``register("one_euro", OneEuroFilter)``.

    A filter factory takes its parameters and returns an object following
    :class:`handsdk.smoothing.Filter`; the tracker makes one per tracked hand.
    """


@hookspec
def handsdk_register_consumers(register: Register) -> None:
    """Register consumers: ``register("overlay", OverlayRenderer)``.

    A consumer follows :class:`handsdk.consumers.Consumer`: ``__call__(result, frame)``,
    optional ``close()``, and ``kind = "classifier"`` if it writes ``hand.labels``.
    """


@hookspec
def handsdk_register_sources(register: Register) -> None:
    """Register capture sources: ``register("video", VideoSource)``.

    A source follows :class:`handsdk.sources.Source`: ``accepts(spec)`` (classmethod) tells if it
    can open ``spec`` (a path, a camera index, an iterable…), and iterating it yields frames.
    """


@hookspec
def handsdk_register_commands(subparsers: Any) -> None:
    """Add ``handsdk`` subcommands: ``subparsers`` is argparse's; set ``func`` on the parser to a
    callable taking the parsed args and returning an exit code (as llm's register_commands)."""


@hookspec
def handsdk_on_result(result: Any) -> None:
    """Called with every :class:`~handsdk.types.FrameResult`, after the consumers ran (in live
    mode, after the classifiers: the sinks run on their own thread and may not have yet)."""


@hookspec
def handsdk_on_tracker_start(tracker: Any) -> None:
    """Called once when a :class:`~handsdk.Tracker` is built."""


@hookspec
def handsdk_on_tracker_close(tracker: Any) -> None:
    """Called once when a :class:`~handsdk.Tracker` is closed."""
