"""The plugin registry: loads plugins and collects the backends they register.

Third-party plugins come from the ``gradio_diffusion_preview`` entry-point group (limited by the
``DIFFUSION_PREVIEW_PLUGINS`` allow-list when it is set), then the built-in backends load as
default plugins in exactly the same way. A plugin that fails to load is skipped with a warning.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import itertools
import os
import re
import warnings
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .backend import Backend
from .hookspecs import hookimpl

ENTRY_POINT_GROUP = hookspecs.PROJECT
ALLOW_LIST_VARIABLE = "DIFFUSION_PREVIEW_PLUGINS"
DEFAULT_PLUGINS = (
    "gradio_diffusion_preview.backends.diffusers.plugin",
    "gradio_diffusion_preview.backends.remote_gradio.plugin",
    "gradio_diffusion_preview.backends.a1111.plugin",
    "gradio_diffusion_preview.backends.comfyui.plugin",
    "gradio_diffusion_preview.backends.hf_inference.plugin",
    "gradio_diffusion_preview.backends.ray.plugin",
)
BUILTIN_DISTRIBUTION = "gradio-diffusion-preview"


class PluginLoadWarning(UserWarning):
    """A plugin could not be loaded or raised while registering; the others still load."""


class DuplicateBackendError(RuntimeError):
    """Kept for compatibility: two backends with one id no longer raise; the second is
    disabled with a ``PluginLoadWarning`` and listed in ``Registry.problems``."""


class UnknownBackendError(KeyError):
    """No registered backend has the id asked for."""

    def __str__(self) -> str:  # KeyError would print the repr of its argument
        return str(self.args[0])


@dataclass
class PluginInfo:
    """One loaded plugin: its name, the distribution it came from, and its backends."""

    name: str
    distribution: str
    version: str | None
    backends: list[str] = field(default_factory=list)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def allowed_distributions() -> set[str] | None:
    """The normalised allow-list from ``DIFFUSION_PREVIEW_PLUGINS``; None when unset (all)."""
    raw = os.environ.get(ALLOW_LIST_VARIABLE)
    if raw is None:
        return None
    return {_normalize(part.strip()) for part in raw.split(",") if part.strip()}


class Registry:
    """A plugin manager plus the backends its plugins registered."""

    def __init__(self, load_entry_points: bool = True, default_plugins=DEFAULT_PLUGINS) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._backends: dict[str, tuple[Backend, str]] | None = None
        self._load_problems: list[str] = []
        self._collect_problems: list[str] = []
        if load_entry_points:
            self._load_entry_points()
        for module_name in default_plugins:
            self._load_default(module_name)
        self.manager.check_pending()

    def _load_entry_points(self) -> None:
        allowed = allowed_distributions()
        for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = entry_point.dist
            dist_name = dist.metadata["Name"] if dist else entry_point.value
            if allowed is not None and _normalize(dist_name) not in allowed:
                continue
            try:
                plugin = entry_point.load()
            except Exception as error:
                self._warn(
                    f"Plugin '{entry_point.name}' from {dist_name} failed to load and was "
                    f"skipped: {type(error).__name__}: {error}",
                    at_load=True,
                )
                continue
            if self.manager.has_plugin(entry_point.name):
                other = self.plugins.get(entry_point.name)
                self._warn(
                    f"Plugin '{entry_point.name}' from {dist_name} was skipped: a plugin of that "
                    f"name is already loaded from {other.distribution if other else '?'}. "
                    "Plugin names (entry-point names) must be unique.",
                    at_load=True,
                )
                continue
            self.add_plugin(plugin, entry_point.name, dist_name, dist.version if dist else None)

    def _load_default(self, module_name: str) -> None:
        module = importlib.import_module(module_name)
        version = importlib.metadata.version(BUILTIN_DISTRIBUTION) if _installed() else None
        self.add_plugin(module, module_name, BUILTIN_DISTRIBUTION, version)

    def add_plugin(
        self,
        plugin: ModuleType | object,
        name: str,
        distribution: str = "(registered in code)",
        version: str | None = None,
    ) -> None:
        """Register a plugin object (a module or any object with hook implementations).

        Raises ``pluggy.PluginValidationError`` naming the plugin and its package when it
        implements a hook that does not exist (a misspelt hook would otherwise never be called).
        """
        self.manager.register(plugin, name=name)
        unknown = [
            caller.name
            for caller in self.manager.get_hookcallers(plugin) or []
            if not caller.has_spec()
            for impl in caller.get_hookimpls()
            if impl.plugin is plugin and not impl.optionalhook
        ]
        if unknown:
            self.manager.unregister(plugin)
            known = ", ".join(_hook_names(self.manager))
            raise pluggy.PluginValidationError(
                plugin,
                f"Plugin '{name}' ({distribution}) implements unknown hook '{unknown[0]}'. "
                f"The hooks are: {known}. Check the spelling (see docs/plugins.md).",
            )
        self.plugins[name] = PluginInfo(name, distribution, version)
        self._backends = None

    def add_backends(self, *backends: Backend, name: str | None = None) -> None:
        """Register backend instances made in code (e.g. a remote endpoint configured by the
        app) through a plugin named ``name``, exactly as a package's plugin would. Without a
        name, each call gets one of its own ("app", "app-2", ...), so an app may call this
        once per endpoint; a name already taken raises ``ValueError``."""
        if name is None:
            names = itertools.chain(["app"], (f"app-{n}" for n in itertools.count(2)))
            name = next(n for n in names if self.manager.get_plugin(n) is None)
        elif self.manager.get_plugin(name) is not None:
            raise ValueError(
                f"A plugin named '{name}' is already registered. Fix: give another name to "
                "add_backends(..., name=...), or leave the name out (each call then gets one)."
            )

        class _CodePlugin:
            @hookimpl
            def register_backends(self, register) -> None:
                for backend in backends:
                    register(backend)

        self.add_plugin(_CodePlugin(), name)

    def remove_plugin(self, name: str) -> None:
        self.manager.unregister(name=name)
        self.plugins.pop(name, None)
        self._backends = None

    def _collect(self) -> dict[str, tuple[Backend, str]]:
        if self._backends is not None:
            return self._backends
        found: dict[str, tuple[Backend, str]] = {}
        self._collect_problems = []
        for info in self.plugins.values():
            info.backends.clear()
        # Built-in plugins first, so they keep their ids whatever third-party packages claim.
        impls = sorted(
            self.manager.hook.register_backends.get_hookimpls(),
            key=lambda impl: self._distribution(impl.plugin_name) != BUILTIN_DISTRIBUTION,
        )
        for impl in impls:
            plugin_name = impl.plugin_name
            info = self.plugins.get(plugin_name) or PluginInfo(plugin_name, "(unknown)", None)
            staged: dict[str, Backend] = {}  # kept only if the whole hook call succeeds

            def register(
                backend: Backend, _info: PluginInfo = info, _staged: dict = staged
            ) -> None:
                if not isinstance(backend, Backend):
                    raise TypeError(
                        f"register() takes a gradio_diffusion_preview.Backend instance, got "
                        f"{type(backend).__name__}"
                    )
                if backend.id in found or backend.id in _staged:
                    self._clash(backend.id, found, _info)
                    return
                _staged[backend.id] = backend

            try:
                impl.function(register)
            except Exception as error:
                self._warn(
                    f"Plugin '{plugin_name}' ({info.distribution}) raised in register_backends "
                    f"and was skipped: {type(error).__name__}: {error}"
                )
                continue
            for backend_id, backend in staged.items():
                found[backend_id] = (backend, plugin_name)
                info.backends.append(backend_id)
        self._backends = found
        return found

    def _distribution(self, plugin_name: str) -> str | None:
        info = self.plugins.get(plugin_name)
        return info.distribution if info else None

    def _clash(self, backend_id: str, found: dict, second: PluginInfo) -> None:
        """A second registration of ``backend_id``: disabled, with a warning naming both."""
        first = self.plugins.get(found[backend_id][1]) if backend_id in found else second
        first_name = first.name if first else "?"
        first_dist = first.distribution if first else "?"
        self._warn(
            f"Backend id '{backend_id}' from plugin '{second.name}' (package "
            f"{second.distribution}) was disabled: plugin '{first_name}' (package "
            f"{first_dist}) already registered it. The other backends still load. Fix: "
            f"uninstall one of the packages, or limit plugins with {ALLOW_LIST_VARIABLE}."
        )

    def _warn(self, message: str, at_load: bool = False) -> None:
        (self._load_problems if at_load else self._collect_problems).append(message)
        warnings.warn(message, PluginLoadWarning, stacklevel=3)

    @property
    def problems(self) -> list[str]:
        """Why plugins or backends were skipped or disabled (each also given as a warning)."""
        self._collect()
        return [*self._load_problems, *self._collect_problems]

    def backends(self) -> dict[str, Backend]:
        """All registered backends by id."""
        return {bid: backend for bid, (backend, _) in self._collect().items()}

    def get(self, backend_id: str) -> Backend:
        """The backend with this id, or an ``UnknownBackendError`` listing the known ids."""
        backends = self.backends()
        if backend_id not in backends:
            known = ", ".join(sorted(backends)) or "none"
            raise UnknownBackendError(
                f"No backend named '{backend_id}'. Registered backends: {known}. Install the "
                "plugin that provides it (and check DIFFUSION_PREVIEW_PLUGINS if it is set)."
            )
        return backends[backend_id]

    def describe(self, include_models: bool = True) -> list[dict[str, Any]]:
        """Every plugin with its version and backends (models and capabilities included)."""
        backends = self._collect()
        result = []
        for info in self.plugins.values():
            described = []
            for bid in info.backends:
                entry = _describe(backends[bid][0])
                if include_models:
                    entry["models"] = _models_of(backends[bid][0])
                described.append(entry)
            result.append(
                {
                    "name": info.name,
                    "distribution": info.distribution,
                    "version": info.version,
                    "backends": described,
                }
            )
        return result


def _models_of(backend: Backend) -> list[dict[str, Any]] | str:
    try:
        return [model.model_dump(mode="json") for model in backend.list_models()]
    except Exception as error:  # listing models may need a network or a cache
        return f"unavailable: {error}"


def _describe(backend: Backend) -> dict[str, Any]:
    """``backend.describe()``, which a third-party backend may break, never raising."""
    try:
        return backend.describe()
    except Exception as error:
        return {
            "id": backend.id,
            "display_name": getattr(backend, "display_name", backend.id),
            "location": getattr(backend, "location", "?"),
            "availability": {
                "state": "unavailable",
                "message": f"describe() raised {type(error).__name__}: {error}",
            },
            "capabilities": backend.capabilities.model_dump(mode="json"),
        }


def _hook_names(manager: pluggy.PluginManager) -> list[str]:
    return [name for name in dir(hookspecs) if manager.parse_hookspec_opts(hookspecs, name)]


def _installed() -> bool:
    try:
        importlib.metadata.version(BUILTIN_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


_default: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _default
    if _default is None:
        _default = Registry()
    return _default


def reset_registry() -> None:
    """Forget the process-wide registry so the next use reloads plugins (for tests)."""
    global _default
    _default = None


def get_backend(backend_id: str) -> Backend:
    return get_registry().get(backend_id)


def list_plugins(include_models: bool = True) -> list[dict[str, Any]]:
    """Installed plugins, their versions, backends, models and capabilities, as JSON-ready data."""
    return get_registry().describe(include_models)
