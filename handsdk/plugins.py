"""The plugin manager: loads the ``handsdk`` entry-point group and collects registered components.

``HANDSDK_LOAD_PLUGINS`` (comma-separated entry-point names) loads only those plugins;
``HANDSDK_BLOCK_PLUGINS`` skips the named ones. First-party plugins load through the same entry
points as anybody else's.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import logging
import os
import sys
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
        dist, version = (ep.dist.metadata["Name"], ep.dist.version) if ep.dist is not None else ("?", "")
        if pm.has_plugin(ep.name):
            log.warning("handsdk plugin %r from %s is not loaded: a plugin registered in code "
                        "already took that name", ep.name, _describe_dist(dist, version))
            continue
        captured = io.StringIO()  # what a failing import prints (argparse's usage) joins its one warning
        try:
            with contextlib.redirect_stderr(captured):
                module = ep.load()
            pm.register(module, name=ep.name)
            if ep.dist is not None:
                _distributions[ep.name] = (dist, version)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: a broken plugin must not take the SDK down
            printed = [ln for ln in captured.getvalue().splitlines() if ln.strip()]
            _disable(ep.name, ep.value, (dist, version), exc, "failed to load", printed[-1] if printed else "")
        else:
            sys.stderr.write(captured.getvalue())
    for plugin, hook in unknown_hooks():
        log.warning("handsdk plugin %r implements %r, which is not a handsdk hook (a typo?); it is "
                    "never called. Hooks: %s", plugin, hook, ", ".join(hook_names()))


def _disable(name: str, value: str, dist: tuple[str, str], exc: BaseException, what: str,
             printed: str = "") -> None:
    """Record a plugin that failed, unregister it (if it was) and say so in one warning that
    names the distribution it came from."""
    if pm.has_plugin(name):
        pm.unregister(name=name)
    error = f"{type(exc).__name__}: {exc}" + (f" ({printed.strip()})" if printed else "")
    load_failures.append(LoadFailure(name, value, dist[0], error))
    log.warning("handsdk plugin %r from %s %s and is disabled: %s", name, _describe_dist(*dist),
                what, error)


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


    def describe(self) -> str:
        """``backend 'x' (plugin 'p' from mydist 0.1)``, for errors that blame a plugin."""
        return f"{self.kind} {self.name!r} (plugin {self.plugin!r} from {_describe_dist(self.distribution, self.version)})"


def plugin_distribution(plugin_name: str) -> tuple[str, str]:
    """(distribution, version) a plugin was installed from, or ``("(registered in code)", "")``."""
    return _distributions.get(plugin_name, ("(registered in code)", ""))


def components(kind: str) -> dict[str, Component]:
    """Every registered component of ``kind`` by name. One rule for a name two plugins register,
    whenever either was registered: handsdk's own plugins first, then installed plugins (entry
    points, in discovery order), then plugins registered in code (in the order of ``register``);
    the first keeps the name and the others are ignored, each named in one warning."""
    if kind not in _HOOKS:
        raise ValueError(f"unknown component kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    return _registry()[kind]


def _registry() -> dict[str, dict[str, Component]]:
    """Every plugin's components of every kind. A plugin whose registration hook raises anything
    (``SystemExit`` too) is disabled whole, with one warning; a name that is not a non-empty
    string without spaces, or a factory that is not callable, is ignored with one warning."""
    load_plugins()
    found: dict[str, dict[str, Component]] = {k: {} for k in KINDS}
    order = {name: i for i, (name, _) in enumerate(pm.list_name_plugin())}

    def rank(name: str) -> tuple[int, int]:
        dist = _distributions.get(name, ("",))[0]
        return (0 if dist.lower() == "handsdk" else 1 if name in _distributions else 2, order[name])

    for plugin_name in sorted(order, key=rank):
        plugin = pm.get_plugin(plugin_name)
        dist = plugin_distribution(plugin_name)
        try:
            mine = _collect(plugin_name, plugin)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            _disable(plugin_name, getattr(plugin, "__name__", type(plugin).__name__), dist, exc,
                     "failed to register its components")
            continue
        for comp in mine:
            taken = found[comp.kind].get(comp.name)
            if taken is None:
                found[comp.kind][comp.name] = comp
            elif (comp.kind, comp.name, comp.plugin) not in _told_clashes:  # once, not on every Tracker()
                _told_clashes.add((comp.kind, comp.name, comp.plugin))
                log.warning("%s %r from %s ignored: already registered by %s", comp.kind, comp.name,
                            comp.plugin, taken.plugin)
    return found


def _collect(plugin_name: str, plugin: Any) -> list[Component]:
    """What one plugin registers, of every kind (its hooks' exceptions propagate)."""
    dist, version = plugin_distribution(plugin_name)
    mine: list[Component] = []

    def register(kind: str, name: Any, factory: Any) -> None:
        if not isinstance(name, str) or not name or any(c.isspace() for c in name) or not callable(factory):
            if (kind, repr(name), plugin_name) not in _told_clashes:
                _told_clashes.add((kind, repr(name), plugin_name))
                log.warning("plugin %r (%s) registered %s %r with factory %r: ignored (a name is a "
                            "non-empty string without spaces, a factory is callable)", plugin_name,
                            _describe_dist(dist, version), kind, name, factory)
            return
        mine.append(Component(kind, name, factory, plugin_name, dist, version))

    for kind in KINDS:
        for impl in getattr(pm.hook, _HOOKS[kind]).get_hookimpls():
            if impl.plugin is plugin:
                impl.function(**_args(impl, register=functools.partial(register, kind)))
    return mine


def _describe_dist(dist: str, version: str) -> str:
    return f"{dist} {version}".strip()


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
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: a plugin cannot end the program from a hook
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
