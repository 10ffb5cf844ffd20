"""The endpoint config file (YAML) and the Parsl objects it describes.

The file keeps the reference endpoint's ``config.yaml`` shape, so an existing single-user
endpoint config carries over::

    display_name: My cluster            # optional
    engine:
      type: GlobusComputeEngine         # Parsl HighThroughputExecutor; GlobusMPIEngine: MPI mode
      max_workers_per_node: 4           # any HighThroughputExecutor option
      max_retries_on_system_failure: 1  # re-runs of a task whose worker or node was lost
      strategy: simple                  # Parsl scaling strategy: none, simple, htex_auto_scale
      provider:
        type: SlurmProvider             # any class in parsl.providers
        partition: debug                # ...and its options, passed through
        walltime: "00:30:00"
        launcher:
          type: SrunLauncher            # any class in parsl.launchers

Checking happens in two steps, both before any process starts. :func:`load_endpoint_config`
checks the file's shape; :func:`build_parsl_executor` turns the ``engine`` section into Parsl
objects, naming the offending key on an unknown provider, launcher or option, and letting
Parsl's own type checks (typeguard) judge every value. Parsl is imported only by the builders,
so reading a config never imports it.
"""

from __future__ import annotations

import inspect
import logging
import os
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from globus_compute.errors import EndpointConfigError

if TYPE_CHECKING:
    from parsl.executors import HighThroughputExecutor

log = logging.getLogger(__name__)

#: ``engine.type`` values that select the Parsl engine -> Parsl executor class name.
PARSL_ENGINE_TYPES = {
    "GlobusComputeEngine": "HighThroughputExecutor",
    "HighThroughputExecutor": "HighThroughputExecutor",
    "GlobusMPIEngine": "MPIExecutor",
    "MPIExecutor": "MPIExecutor",
}

#: ``engine`` keys the Parsl engine reads itself instead of passing them to the executor.
ENGINE_OWN_KEYS = frozenset(
    {"type", "provider", "max_retries_on_system_failure", "strategy", "max_idletime",
     "strategy_period", "job_status_kwargs", "run_dir"}
)  # fmt: skip

#: Executor arguments a config cannot set: the engine owns them (or they take Python objects).
_EXECUTOR_RESERVED = frozenset(
    {"self", "provider", "launch_cmd", "interchange_launch_cmd", "storage_access",
     "remote_monitoring_radio", "manager_selector", "block_error_handler"}
)  # fmt: skip

_TOP_LEVEL_KEYS = frozenset({"display_name", "engine"})

#: Defaults for a config that leaves them out. Parsl's own (30 s heartbeats, 120 s threshold)
#: make a killed worker take half a minute to be noticed; an endpoint wants seconds.
DEFAULT_HEARTBEAT_PERIOD = 2
DEFAULT_HEARTBEAT_THRESHOLD = 20
DEFAULT_STRATEGY = "simple"
DEFAULT_STRATEGY_PERIOD = 5.0
DEFAULT_MAX_IDLETIME = 120.0


@dataclass
class EndpointConfig:
    """A parsed endpoint config file.

    Attributes:
        engine_type: The ``engine.type`` value (see :data:`PARSL_ENGINE_TYPES`).
        engine: The ``engine`` section without ``type``.
        display_name: The endpoint's display name, if the file gives one.
        source: Where the config came from, for error messages.
    """

    engine_type: str = "GlobusComputeEngine"
    engine: dict[str, Any] = field(default_factory=dict)
    display_name: str | None = None
    source: str = "<defaults>"

    @property
    def max_retries_on_system_failure(self) -> int | None:
        value = self.engine.get("max_retries_on_system_failure")
        return None if value is None else int(value)


def load_endpoint_config(path: str | os.PathLike[str]) -> EndpointConfig:
    """Read and shape-check an endpoint config file.

    Raises:
        EndpointConfigError: If the file cannot be read or has the wrong shape.
    """
    try:
        with open(path) as fh:
            text = fh.read()
    except OSError as exc:
        raise EndpointConfigError(f"cannot read endpoint config {path}: {exc}") from exc
    return parse_endpoint_config(text, source=str(path))


def parse_endpoint_config(text: str, source: str = "<string>") -> EndpointConfig:
    """Shape-check the YAML text of an endpoint config (see the module docstring)."""
    try:
        import yaml
    except ImportError as exc:
        raise EndpointConfigError(
            f"reading {source} needs PyYAML: pip install 'globus-compute[parsl]'"
        ) from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise EndpointConfigError(f"{source} is not valid YAML: {exc}") from exc
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise EndpointConfigError(f"{source}: expected a mapping at the top level")
    _reject_unknown(set(doc) - _TOP_LEVEL_KEYS, _TOP_LEVEL_KEYS, f"{source}: top-level")
    engine = doc.get("engine") or {}
    if not isinstance(engine, dict):
        raise EndpointConfigError(f"{source}: 'engine' must be a mapping")
    engine = dict(engine)
    engine_type = str(engine.pop("type", "GlobusComputeEngine"))
    if engine_type not in PARSL_ENGINE_TYPES:
        raise EndpointConfigError(
            f"{source}: engine type {engine_type!r} is not a Parsl engine; use one of "
            f"{sorted(PARSL_ENGINE_TYPES)} (the process and thread engines take no config file)"
        )
    provider = engine.get("provider")
    if provider is not None and not (isinstance(provider, dict) and "type" in provider):
        raise EndpointConfigError(f"{source}: 'engine.provider' must be a mapping with a 'type'")
    display_name = doc.get("display_name")
    return EndpointConfig(
        engine_type=engine_type,
        engine=engine,
        display_name=None if display_name is None else str(display_name),
        source=source,
    )


def build_provider(spec: dict[str, Any], source: str = "<config>") -> Any:
    """A Parsl execution provider from its config mapping (``type`` plus its options).

    Raises:
        EndpointConfigError: For an unknown provider, launcher or option, or a value Parsl
            rejects.
    """
    import parsl.providers

    options = dict(spec)
    name = str(options.pop("type", ""))
    cls = _parsl_class(parsl.providers, name, f"{source}: provider")
    if isinstance(options.get("launcher"), dict):
        options["launcher"] = build_launcher(options["launcher"], source)
    if "walltime" in options:
        options["walltime"] = _walltime(options["walltime"])
    return _construct(cls, options, f"{source}: provider {name}")


def build_launcher(spec: dict[str, Any], source: str = "<config>") -> Any:
    """A Parsl launcher (``SrunLauncher``, ``MpiExecLauncher``, ...) from its mapping."""
    import parsl.launchers

    if "type" not in spec:
        raise EndpointConfigError(f"{source}: 'launcher' must be a mapping with a 'type'")
    options = dict(spec)
    name = str(options.pop("type"))
    cls = _parsl_class(parsl.launchers, name, f"{source}: launcher")
    return _construct(cls, options, f"{source}: launcher {name}")


def build_parsl_executor(config: EndpointConfig, workers: int | None) -> HighThroughputExecutor:
    """The HighThroughputExecutor (or MPIExecutor) the ``engine`` section describes.

    Without a provider the executor runs one block of workers on this machine
    (``LocalProvider``); ``workers`` caps the workers per node unless the config does.
    """
    import parsl.executors
    from parsl.providers import LocalProvider

    executor_name = PARSL_ENGINE_TYPES[config.engine_type]
    cls = getattr(parsl.executors, executor_name)
    options = {k: v for k, v in config.engine.items() if k not in ENGINE_OWN_KEYS}
    allowed = _parameters(cls) - _EXECUTOR_RESERVED
    _reject_unknown(set(options) - allowed, allowed | ENGINE_OWN_KEYS, f"{config.source}: engine")

    provider_spec = config.engine.get("provider")
    if provider_spec is None:
        provider = LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1)  # type: ignore[no-untyped-call]
        options.setdefault("address", "127.0.0.1")
    else:
        provider = build_provider(provider_spec, config.source)
    if isinstance(provider, LocalProvider):
        options.setdefault("address", "127.0.0.1")
        _share_working_directory(provider)
    if "address" in options:
        options["address"] = _address(options["address"], config.source)
    for key in ("worker_port_range", "interchange_port_range"):
        if isinstance(options.get(key), list):
            options[key] = tuple(options[key])
    if executor_name == "HighThroughputExecutor" and workers:
        options.setdefault("max_workers_per_node", workers)
    options.setdefault("heartbeat_period", DEFAULT_HEARTBEAT_PERIOD)
    options.setdefault("heartbeat_threshold", DEFAULT_HEARTBEAT_THRESHOLD)
    options.setdefault("label", "globus-compute-htex")
    options["provider"] = provider
    executor: HighThroughputExecutor = _construct(
        cls, options, f"{config.source}: engine {config.engine_type}"
    )
    return executor


def scaling_options(config: EndpointConfig) -> dict[str, Any]:
    """Arguments for Parsl's ``JobStatusPoller``: strategy, max_idletime, strategy_period.

    Accepts them directly in ``engine`` or, as the reference config does, under
    ``engine.job_status_kwargs``.
    """
    nested = config.engine.get("job_status_kwargs") or {}
    if not isinstance(nested, dict):
        raise EndpointConfigError(f"{config.source}: 'engine.job_status_kwargs' must be a mapping")
    known = {"strategy", "max_idletime", "strategy_period"}
    _reject_unknown(set(nested) - known, known, f"{config.source}: engine.job_status_kwargs")
    merged = dict(nested)
    merged.update({k: config.engine[k] for k in known if k in config.engine})
    strategy = merged.get("strategy", DEFAULT_STRATEGY)
    return {
        "strategy": None if strategy in (None, "none") else str(strategy),
        "max_idletime": float(merged.get("max_idletime", DEFAULT_MAX_IDLETIME)),
        "strategy_period": float(merged.get("strategy_period", DEFAULT_STRATEGY_PERIOD)),
    }


def _share_working_directory(provider: Any) -> None:
    """Let workers on this machine import modules from the agent's working directory.

    HTEX workers start as a script, so unlike the process engine's workers (which inherit the
    agent's ``sys.path``) they would not see modules next to where the agent was started;
    functions serialized by reference to such a module would then fail to load. Blocks on other
    nodes keep the config's ``worker_init`` unchanged: their environment is the admin's choice.
    """
    export = f'export PYTHONPATH={shlex.quote(os.getcwd())}"${{PYTHONPATH:+:$PYTHONPATH}}"'
    provider.worker_init = f"{export}\n{provider.worker_init}".rstrip("\n")


def _parsl_class(module: Any, name: str, what: str) -> type:
    available = sorted(set(getattr(module, "__all__", ())))
    if name not in available:
        raise EndpointConfigError(f"{what} type {name!r} is unknown; choose one of {available}")
    cls: type = getattr(module, name)
    return cls


def _parameters(cls: type) -> set[str]:
    return set(inspect.signature(cls).parameters)


def _construct(cls: type, options: dict[str, Any], what: str) -> Any:
    allowed = _parameters(cls) - _EXECUTOR_RESERVED | {"provider"}
    _reject_unknown(set(options) - allowed, allowed - {"provider"}, what)
    try:
        return cls(**options)
    except Exception as exc:  # typeguard's TypeCheckError, or the class's own ValueError
        raise EndpointConfigError(f"{what}: {exc}") from exc


def _reject_unknown(unknown: set[str], allowed: set[str] | frozenset[str], what: str) -> None:
    if unknown:
        raise EndpointConfigError(
            f"{what} option(s) {sorted(unknown)} not recognised; valid options: {sorted(allowed)}"
        )


def _walltime(value: Any) -> str:
    """Walltime as ``HH:MM:SS``.

    YAML 1.1 reads an unquoted ``1:30:00`` as the base-60 integer 5400, so an integer is taken
    as seconds and written back in the form every scheduler template expects.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        hours, rest = divmod(value, 3600)
        return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return str(value)


def _address(value: Any, source: str) -> str:
    """An interchange address: a literal, or ``{type: address_by_interface, ifname: ib0}``."""
    if isinstance(value, str):
        return value
    if not (isinstance(value, dict) and "type" in value):
        raise EndpointConfigError(f"{source}: 'engine.address' must be a string or a mapping")
    import parsl.addresses

    options = dict(value)
    name = str(options.pop("type"))
    finders = sorted(n for n in dir(parsl.addresses) if n.startswith("address_by_"))
    if name not in finders:
        raise EndpointConfigError(
            f"{source}: address type {name!r} is unknown; use one of {finders}"
        )
    try:
        return str(getattr(parsl.addresses, name)(**options))
    except Exception as exc:
        raise EndpointConfigError(f"{source}: {name}({options}) failed: {exc}") from exc
