"""Your own strategies: files in the configured ``strategy_paths`` and installed entry points.

Both register when the pipeline's definitions load, so a user strategy is backtested, swept and
paper-traded exactly like a built-in one. A file needs no decorator: every concrete
:class:`~quantdag.strategies.Strategy` subclass it defines is registered (``@register`` works too).
Files whose names start with ``_`` or ``test_`` are skipped (helpers and tests live beside them).
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import logging
import sys
from collections.abc import Iterable
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from quantdag.errors import ConfigurationError, QuantdagError
from quantdag.strategies.base import Strategy, register

log = logging.getLogger(__name__)

#: Installed packages declare strategies under this entry-point group (a class or a module).
ENTRY_POINT_GROUP = "quantdag.strategies"


def _module_name(path: Path) -> str:
    digest = hashlib.sha256(str(path.parent).encode()).hexdigest()[:8]
    return f"quantdag_user_strategies_{digest}.{path.stem}"


def _register_defined(module: ModuleType) -> list[str]:
    names = []
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if cls.__module__ != module.__name__ or not issubclass(cls, Strategy) or inspect.isabstract(cls):
            continue
        if not getattr(cls, "name", None):
            continue
        register(cls)
        names.append(cls.name)
    return names


def load_strategy_file(path: str | Path) -> list[str]:
    """Import one strategy file and register the strategies it defines; their names.

    Raises
    ------
    ConfigurationError
        If the file is missing or fails to import (the file and the error named).
    """
    p = Path(path).resolve()
    if not p.is_file():
        raise ConfigurationError(f"strategy file {p} does not exist")
    name = _module_name(p)
    module = sys.modules.get(name)
    if module is None or getattr(module, "__file__", None) != str(p):
        spec = importlib.util.spec_from_file_location(name, p)
        if spec is None or spec.loader is None:
            raise ConfigurationError(f"strategy file {p} cannot be imported")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except QuantdagError as exc:
            sys.modules.pop(name, None)
            raise ConfigurationError(f"strategy file {p}: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - user code: report any failure as a configuration error
            sys.modules.pop(name, None)
            raise ConfigurationError(f"strategy file {p} failed to import: {type(exc).__name__}: {exc}") from exc
    try:
        return _register_defined(module)
    except QuantdagError as exc:
        raise ConfigurationError(f"strategy file {p}: {exc}") from exc


def load_strategy_class(path: str | Path, class_name: str) -> type[Strategy]:
    """Class ``class_name`` of strategy file ``path`` (the file's strategies are registered too).

    Raises
    ------
    ConfigurationError
        If the file fails to load or has no Strategy subclass of that name (the ones it has named).
    """
    load_strategy_file(path)
    module = sys.modules[_module_name(Path(path).resolve())]
    obj = getattr(module, class_name, None)
    if not (isinstance(obj, type) and issubclass(obj, Strategy)):
        have = sorted(n for n, c in inspect.getmembers(module, inspect.isclass) if issubclass(c, Strategy) and c is not Strategy)
        raise ConfigurationError(f"{path} defines no Strategy class {class_name!r}; it has: {', '.join(have) or 'none'}")
    return obj


def load_strategy_paths(folders: Iterable[str | Path]) -> list[str]:
    """Register the strategies of every ``*.py`` file in ``folders`` (sorted, not recursive).

    Raises
    ------
    ConfigurationError
        If a folder is missing or one of its files fails to import.
    """
    names: list[str] = []
    for folder in folders:
        d = Path(folder).resolve()
        if not d.is_dir():
            raise ConfigurationError(f"strategy_paths: {d} is not a folder")
        for f in sorted(d.glob("*.py")):
            if not f.name.startswith(("_", "test_")):
                names += load_strategy_file(f)
    return names


def load_entry_points(group: str = ENTRY_POINT_GROUP) -> list[str]:
    """Register strategies that installed packages declare in entry-point ``group``.

    Raises
    ------
    ConfigurationError
        If an entry point fails to load or names something that is not a strategy or a module.
    """
    names: list[str] = []
    for ep in entry_points(group=group):
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - third-party code
            raise ConfigurationError(f"entry point {ep.name} = {ep.value} failed to load: {exc}") from exc
        if isinstance(obj, ModuleType):
            names += _register_defined(obj)
        elif isinstance(obj, type) and issubclass(obj, Strategy):
            names.append(register(obj).name)
        else:
            raise ConfigurationError(f"entry point {ep.name} = {ep.value} is not a Strategy subclass or module")
    return names


def load_user_strategies(folders: Iterable[str | Path] = ()) -> list[str]:
    """Entry points, then the configured folders; the names registered (built-ins are always there)."""
    names = load_entry_points() + load_strategy_paths(folders)
    if names:
        log.info("user strategies registered: %s", ", ".join(names))
    return names
