"""The plugin manager: loads the ``handsdk`` entry-point group and collects registered components.

``HANDSDK_LOAD_PLUGINS`` (comma-separated entry-point names) loads only those plugins;
``HANDSDK_BLOCK_PLUGINS`` skips the named ones. First-party plugins load through the same entry
points as anybody else's.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginNotFoundError, worth_logging

log = logging.getLogger(__name__)

KINDS = ("backend", "filter", "consumer", "source")
_HOOKS = {
    "backend": "handsdk_register_backends",
    "filter": "handsdk_register_filters",
    "consumer": "handsdk_register_consumers",
    "source": "handsdk_register_sources",
}

pm = pluggy.PluginManager("handsdk")
pm.add_hookspecs(hookspecs)


@dataclass
class LoadFailure:
    """An entry point that could not be imported: reported by ``handsdk plugins``, not fatal."""

    name: str
    value: str
    distribution: str
    error: str


load_failures: list[LoadFailure] = []
_distributions: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)
_loaded = False
_told_clashes: set[tuple[str, str, str]] = set()  # (kind, name, ignored plugin) already warned about


def _env_names(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


def load_plugins() -> None:
    """Import and register every ``handsdk`` entry point (once), honouring the env vars."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    only = _env_names("HANDSDK_LOAD_PLUGINS")
    block = _env_names("HANDSDK_BLOCK_PLUGINS") or set()
    def first_party_first(ep: metadata.EntryPoint) -> bool:
        return ep.dist is None or (ep.dist.metadata["Name"] or "").lower() != "handsdk"

    # handsdk's own plugins register first, so a third-party plugin cannot take over a built-in
    # name (``one_euro``, ``video`` …) by being discovered earlier
    eps = sorted(metadata.entry_points(group="handsdk"), key=first_party_first)
    for var, names in (("HANDSDK_LOAD_PLUGINS", only or set()), ("HANDSDK_BLOCK_PLUGINS", block)):
        unknown = sorted(names - {ep.name for ep in eps})
        if unknown:
            log.warning("%s names %s, which no installed plugin has (a typo?); installed: %s", var,
                        ", ".join(unknown), ", ".join(sorted(ep.name for ep in eps)))
    for ep in eps:
        if (only is not None and ep.name not in only) or ep.name in block:
            continue
        if pm.has_plugin(ep.name):
            continue
        dist = ep.dist.name if ep.dist is not None else "?"
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
            if ep.dist is not None:
                _distributions[ep.name] = (ep.dist.metadata["Name"], ep.dist.version)
        except Exception as exc:  # a broken plugin must not take the SDK down
            log.warning("handsdk plugin %r (%s) failed to load: %s", ep.name, ep.value, exc)
            load_failures.append(LoadFailure(ep.name, ep.value, dist, f"{type(exc).__name__}: {exc}"))
    for plugin, hook in unknown_hooks():
        log.warning("handsdk plugin %r implements %r, which is not a handsdk hook (a typo?); it is "
                    "never called. Hooks: %s", plugin, hook, ", ".join(hook_names()))


def hook_names() -> list[str]:
    """The hooks a plugin can implement (``handsdk/hookspecs.py``)."""
    return sorted(n for n, caller in vars(pm.hook).items() if caller.has_spec())


def unknown_hooks() -> list[tuple[str, str]]:
    """(plugin, hook) for each ``@hookimpl`` that matches no hookspec, e.g. the typo
    ``handsdk_register_consumer``: pluggy would leave it uncalled without a word."""
    return [(pm.get_name(impl.plugin) or "?", name) for name, caller in vars(pm.hook).items()
            if not caller.has_spec() for impl in caller.get_hookimpls() if not impl.optionalhook]


@dataclass(frozen=True)
class Component:
    """A registered backend, filter, consumer or source."""

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    distribution: str
    version: str


def plugin_distribution(plugin_name: str) -> tuple[str, str]:
    """(distribution, version) a plugin was installed from, or ``("(registered in code)", "")``."""
    return _distributions.get(plugin_name, ("(registered in code)", ""))


def components(kind: str) -> dict[str, Component]:
    """Every registered component of ``kind`` by name (later registrations do not override)."""
    if kind not in _HOOKS:
        raise ValueError(f"unknown component kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    load_plugins()
    found: dict[str, Component] = {}
    hook = getattr(pm.hook, _HOOKS[kind])
    for impl in hook.get_hookimpls():  # registration order: the first name registered wins
        plugin_name = pm.get_name(impl.plugin) or "?"
        dist, version = plugin_distribution(plugin_name)

        def register(name: str, factory: Callable[..., Any], _p=plugin_name, _d=dist, _v=version):
            if name in found:
                if (kind, name, _p) not in _told_clashes:  # once, not on every Tracker()
                    _told_clashes.add((kind, name, _p))
                    log.warning("%s %r from %s ignored: already registered by %s", kind, name, _p,
                                found[name].plugin)
                return
            found[name] = Component(kind, name, factory, _p, _d, _v)

        try:
            impl.function(**_args(impl, register=register))
        except Exception as exc:
            log.warning("plugin %r failed to register its %ss: %s", plugin_name, kind, exc)
    return found


def env_note() -> str:
    """`` (HANDSDK_LOAD_PLUGINS=… is set)`` when an env var limits the plugins, for error messages
    that list what is registered (else empty)."""
    set_vars = [f"{v}={os.environ[v]!r}" for v in ("HANDSDK_LOAD_PLUGINS", "HANDSDK_BLOCK_PLUGINS")
                if os.environ.get(v) is not None]
    verb = "limit" if len(set_vars) > 1 else "limits"
    return f" ({' and '.join(set_vars)} {verb} which plugins load)" if set_vars else ""


def get_component(kind: str, name: str, where: str | None = None) -> Component:
    """The component ``name`` of ``kind``, or an error listing the valid names (prefixed with
    ``where``, e.g. the config file and section that named it)."""
    found = components(kind)
    if name not in found:
        valid = ", ".join(sorted(found)) or "(none registered)"
        prefix = f"{where}: " if where else ""
        raise PluginNotFoundError(f"{prefix}unknown {kind} {name!r}; registered {kind}s: {valid}{env_note()}")
    return found[name]


def _args(impl: Any, **kwargs: Any) -> dict[str, Any]:
    """Only the hook arguments an implementation asks for (pluggy lets it take fewer)."""
    return {k: v for k, v in kwargs.items() if k in impl.argnames}


#: (plugin name, hook name) → how many times it raised, this process
hook_errors: Counter[tuple[str, str]] = Counter()


def call_hook_safely(hook_name: str, **kwargs: Any) -> None:
    """Call an event hook on every plugin, logging (not raising) each plugin's failure: the first
    three with their traceback, then every 100th (a per-frame hook must not flood the log)."""
    load_plugins()
    hook = getattr(pm.hook, hook_name)
    for impl in hook.get_hookimpls():
        try:
            impl.function(**_args(impl, **kwargs))
        except Exception as exc:
            name = pm.get_name(impl.plugin)
            hook_errors[name, hook_name] += 1
            n = hook_errors[name, hook_name]
            if worth_logging(n):
                log.exception("handsdk plugin %r raised in %s (%d errors so far): %s", name, hook_name, n, exc)


def import_optional(module: str, extra: str) -> Any:
    """Import an optional dependency or raise an error naming the extra that provides it."""
    from .errors import MissingDependencyError

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module!r} is not installed ({exc}); install it with: pip install 'handsdk[{extra}]'"
        ) from exc
