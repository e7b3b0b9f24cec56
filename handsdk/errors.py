"""Every error the public API raises on bad input derives from :class:`HandSDKError`."""

from __future__ import annotations


class HandSDKError(Exception):
    """Base class: catch this to handle anything handsdk refuses."""


class ConfigError(HandSDKError, ValueError):
    """A config file or dict is malformed, or names something unknown."""


class PluginNotFoundError(ConfigError, LookupError):
    """A config names a plugin that is not registered."""


class MissingDependencyError(HandSDKError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class ModelError(HandSDKError):
    """A model file is missing, truncated, corrupt or does not match its manifest."""


class PluginError(HandSDKError):
    """A plugin does not keep its side of the contract: a backend factory that returns None or an
    object without ``load``, a ``load`` that returns no runner. The message names the plugin and
    the distribution it came from."""


class FrameError(HandSDKError, ValueError):
    """An image or frame has a shape, dtype or type that handsdk cannot interpret."""


class SourceError(HandSDKError):
    """A capture source cannot be opened or failed mid-stream."""


class OutputError(HandSDKError):
    """An output (a jsonl, a video, any file a writer makes) cannot be written: a bad path, a
    path that is an input or another output, a full disk, a closed pipe. Unlike other consumer
    errors it is not isolated: the tracker stops the run with it, so no output is lost silently."""


def worth_logging(count: int) -> bool:
    """Whether the ``count``-th repeat of one failure (a consumer, hook or filter failing on every
    frame) goes to the log: the first three and every 100th, so a per-frame bug cannot flood it."""
    return count <= 3 or count % 100 == 0
