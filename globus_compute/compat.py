"""An opt-in alias: ``import globus_compute_sdk`` gives this package, for code written against it.

Frameworks that wrap the reference SDK's Executor (Parsl's ``GlobusComputeExecutor``, Cubed's
and Colmena's executors) ``import globus_compute_sdk`` and check what they are given against
``globus_compute_sdk.Executor``. With the alias on, those names are ours, so such code runs
unchanged over our Executor::

    GLOBUS_COMPUTE_SDK_ALIAS=1 python my_parsl_workflow.py

or, from code that prefers a call, before anything imports ``globus_compute_sdk``::

    import globus_compute.compat
    globus_compute.compat.alias_reference_sdk()

    import parsl
    from parsl.executors import GlobusComputeExecutor
    from globus_compute_sdk import Executor     # globus_compute.Executor

    gce = GlobusComputeExecutor(executor=Executor(endpoint_id=..., client=...))

How: a finder placed first on ``sys.meta_path`` answers every import of ``globus_compute_sdk``
and its submodules, whether or not the reference SDK is installed too (it never loads then).
Each alias module forwards attribute reads to one of our modules (the table below), so
``globus_compute_sdk.Executor is globus_compute.Executor``; a reference module we have no
counterpart for, or a name our module lacks, fails with an ``ImportError`` /
``AttributeError`` that says the alias is on. ``globus_compute_sdk.__version__`` is the
reference release whose API (and wire format) we reproduce, ``REFERENCE_SDK_VERSION``.

The environment variable works in an unchanged interpreter because installing this package
puts ``globus_compute_alias.pth`` in site-packages; its one line runs at start-up and, only
when the variable is set, imports this module and calls :func:`install_from_environment`.
When it is unset, the line costs one dictionary lookup. Without the variable nothing changes
and ``import globus_compute_sdk`` finds the real reference SDK, if installed. ``python -S``
(no site) skips ``.pth`` files, and with them the variable; the function still works there.
"""

from __future__ import annotations

# Start-up imports only what the interpreter has already loaded (``importlib.abc`` would pull
# in importlib.resources, pathlib, tempfile...): this module runs in every interpreter started
# with the variable set.
import importlib
import importlib.machinery
import os
import sys
import types
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.abc import Loader

__all__ = ["ALIAS_ENV_VAR", "alias_reference_sdk", "install_from_environment", "is_aliased"]

#: Set to 1 (or true/yes/on) to alias ``globus_compute_sdk`` in every interpreter started.
ALIAS_ENV_VAR = "GLOBUS_COMPUTE_SDK_ALIAS"

_ROOT = "globus_compute_sdk"

#: Alias module -> the module of ours it forwards to, for the reference modules dependents
#: import. ``globus_compute_sdk.sdk`` has no counterpart of its own: it is a bare package.
_LAYOUT: dict[str, str | None] = {
    _ROOT: "globus_compute",
    f"{_ROOT}.version": "globus_compute.version",
    f"{_ROOT}.errors": "globus_compute.errors",
    f"{_ROOT}.errors.error_types": "globus_compute.errors",
    f"{_ROOT}.serialize": "globus_compute.serialize",
    f"{_ROOT}.serialize.base": "globus_compute.serialize.base",
    f"{_ROOT}.serialize.concretes": "globus_compute.serialize",
    f"{_ROOT}.serialize.facade": "globus_compute.serialize.facade",
    f"{_ROOT}.sdk": None,
    f"{_ROOT}.sdk.client": "globus_compute.client",
    f"{_ROOT}.sdk.executor": "globus_compute.executor",
    f"{_ROOT}.sdk.batch": "globus_compute.client.batch",
}

_PACKAGES = frozenset(name.rpartition(".")[0] for name in _LAYOUT if "." in name)


def _reference_version() -> str:
    from globus_compute.version import REFERENCE_SDK_VERSION

    return REFERENCE_SDK_VERSION


#: Names an alias module answers itself, whatever its target has.
_OWN_NAMES = {
    _ROOT: {"__version__": _reference_version},
    f"{_ROOT}.version": {"__version__": _reference_version},
}


class _AliasModule(types.ModuleType):
    """A module of the alias: reads its attributes from one of our modules, on first use."""

    def __init__(self, name: str, target: str | None) -> None:
        super().__init__(name, f"Alias of {target or 'nothing'} ({ALIAS_ENV_VAR}).")
        self.__alias_target__ = target

    def __getattr__(self, attribute: str) -> Any:
        own = _OWN_NAMES.get(self.__name__, {}).get(attribute)
        if own is not None:
            return own()
        submodule = f"{self.__name__}.{attribute}"
        if submodule in _LAYOUT:  # globus_compute_sdk.errors is the alias module, as imported
            return importlib.import_module(submodule)
        target = self.__alias_target__
        if target is None or attribute.startswith("__"):
            raise AttributeError(f"module {self.__name__!r} has no attribute {attribute!r}")
        try:
            return getattr(importlib.import_module(target), attribute)
        except AttributeError:
            raise AttributeError(
                f"{self.__name__}.{attribute}: globus_compute_sdk is aliased to globus_compute "
                f"({ALIAS_ENV_VAR} or alias_reference_sdk()), and {target} has no {attribute!r}"
            ) from None

    def __dir__(self) -> list[str]:
        target = self.__alias_target__
        names = set(super().__dir__()) | set(_OWN_NAMES.get(self.__name__, {}))
        if target is not None:
            module = importlib.import_module(target)
            names |= set(getattr(module, "__all__", None) or dir(module))
        return sorted(names)

    @property
    def __all__(self) -> list[str]:  # type: ignore[override]
        target = self.__alias_target__
        if target is None:
            return []
        module = importlib.import_module(target)
        return list(getattr(module, "__all__", ()))


class _ReferenceSdkAlias:
    """The meta-path finder and loader of the alias modules (the import protocol's duck types);
    refuses any other ``globus_compute_sdk.*`` name."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _ROOT and not fullname.startswith(_ROOT + "."):
            return None
        if fullname not in _LAYOUT:
            # Never fall through to the real reference SDK: half of each would be a mess.
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: globus_compute_sdk is aliased to globus_compute "
                f"({ALIAS_ENV_VAR} or alias_reference_sdk()), which has no counterpart for it",
                name=fullname,
            )
        # A package's spec gets an empty search path: its submodules come from here too.
        loader = cast("Loader", self)  # a Loader by duck type (see the imports)
        return importlib.machinery.ModuleSpec(fullname, loader, is_package=fullname in _PACKAGES)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _AliasModule(spec.name, _LAYOUT[spec.name])

    def exec_module(self, module: types.ModuleType) -> None:
        pass  # nothing to run: an alias module reads its target on first use


def is_aliased() -> bool:
    """True if ``import globus_compute_sdk`` gives this package in this process."""
    return any(isinstance(finder, _ReferenceSdkAlias) for finder in sys.meta_path)


def alias_reference_sdk() -> None:
    """Make ``import globus_compute_sdk`` (and its submodules) give this package from now on.

    Idempotent. Call it before anything imports ``globus_compute_sdk``.

    Raises:
        RuntimeError: The reference SDK is already imported in this process; aliasing now
            would leave two SDKs side by side.
    """
    if is_aliased():
        return
    loaded = sys.modules.get(_ROOT)
    if loaded is not None and not isinstance(loaded, _AliasModule):
        raise RuntimeError(
            "The reference globus_compute_sdk is already imported; call "
            "globus_compute.compat.alias_reference_sdk() before anything imports it, or set "
            f"{ALIAS_ENV_VAR}=1 in the environment."
        )
    sys.meta_path.insert(0, _ReferenceSdkAlias())


def install_from_environment() -> None:
    """Alias the reference SDK if ``GLOBUS_COMPUTE_SDK_ALIAS`` says so (interpreter start-up).

    Never raises: a ``.pth`` line that raises only prints a traceback, and start-up goes on.
    """
    if os.environ.get(ALIAS_ENV_VAR, "").strip().lower() not in {"1", "true", "yes", "on"}:
        return
    try:
        alias_reference_sdk()
    except RuntimeError as exc:
        print(f"globus_compute: {ALIAS_ENV_VAR} ignored: {exc}", file=sys.stderr)
