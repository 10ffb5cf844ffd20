"""The endpoint config file: shape checks, Parsl objects built from it, a rendered Slurm script."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("yaml")

from globus_compute.endpoint.config import (  # noqa: E402
    build_parsl_executor,
    build_provider,
    load_endpoint_config,
    parse_endpoint_config,
    scaling_options,
)
from globus_compute.errors import EndpointConfigError  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_importing_the_endpoint_does_not_import_parsl():
    code = (
        "import sys, globus_compute.endpoint, globus_compute.endpoint.config;"
        "assert 'parsl' not in sys.modules, sorted(m for m in sys.modules if 'parsl' in m)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_unknown_top_level_key_is_named():
    with pytest.raises(EndpointConfigError, match=r"top-level option\(s\) \['allowed_functions'\]"):
        parse_endpoint_config("engine: {}\nallowed_functions: [abc]\n")


def test_non_parsl_engine_type_is_refused():
    with pytest.raises(EndpointConfigError, match="'ThreadPoolEngine' is not a Parsl engine"):
        parse_endpoint_config("engine:\n  type: ThreadPoolEngine\n")


def test_invalid_yaml_names_the_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("engine: [unclosed\n")
    with pytest.raises(EndpointConfigError, match="config.yaml is not valid YAML"):
        load_endpoint_config(path)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(EndpointConfigError, match="cannot read endpoint config"):
        load_endpoint_config(tmp_path / "absent.yaml")


def test_unknown_provider_lists_the_known_ones():
    pytest.importorskip("parsl")
    with pytest.raises(EndpointConfigError, match=r"provider type 'SlurmProvidr' is unknown.*"):
        build_provider({"type": "SlurmProvidr"})
    with pytest.raises(EndpointConfigError, match="PBSProProvider"):
        build_provider({"type": "Nope"})


def test_unknown_provider_option_is_named_with_the_valid_ones():
    pytest.importorskip("parsl")
    with pytest.raises(EndpointConfigError, match=r"\['partion'\] not recognised.*'partition'"):
        build_provider({"type": "SlurmProvider", "partion": "debug"})


def test_local_provider_has_no_walltime():
    pytest.importorskip("parsl")
    match = r"provider LocalProvider option\(s\) \['walltime'\]"
    with pytest.raises(EndpointConfigError, match=match):
        build_provider({"type": "LocalProvider", "walltime": "00:10:00"})


def test_wrong_value_type_is_reported_by_parsl_typechecks():
    pytest.importorskip("parsl")
    with pytest.raises(EndpointConfigError, match="nodes_per_block"):
        build_provider({"type": "SlurmProvider", "nodes_per_block": "two"})


def test_unknown_launcher_is_refused():
    pytest.importorskip("parsl")
    with pytest.raises(EndpointConfigError, match="launcher type 'SlurmLauncher' is unknown"):
        build_provider({"type": "SlurmProvider", "launcher": {"type": "SlurmLauncher"}})


def test_unquoted_walltime_is_written_back_as_hh_mm_ss():
    pytest.importorskip("parsl")
    config = parse_endpoint_config(
        "engine:\n  provider:\n    type: SlurmProvider\n    walltime: 1:30:00\n"
    )
    assert config.engine["provider"]["walltime"] == 5400  # what YAML 1.1 makes of it
    assert build_provider(config.engine["provider"]).walltime == "01:30:00"


def test_unknown_engine_option_is_named():
    pytest.importorskip("parsl")
    config = parse_endpoint_config("engine:\n  max_workers: 4\n")
    with pytest.raises(EndpointConfigError, match=r"engine option\(s\) \['max_workers'\]"):
        build_parsl_executor(config, workers=2)


def test_default_config_is_one_local_block_of_the_agents_workers():
    pytest.importorskip("parsl")
    from parsl.providers import LocalProvider

    htex = build_parsl_executor(parse_endpoint_config(""), workers=3)
    assert isinstance(htex.provider, LocalProvider)
    assert (htex.provider.init_blocks, htex.provider.max_blocks) == (1, 1)
    assert htex.max_workers_per_node == 3
    assert htex.address == "127.0.0.1"


def test_mpi_engine_type_builds_an_mpi_executor():
    pytest.importorskip("parsl")
    from parsl.executors import MPIExecutor

    config = parse_endpoint_config(
        "engine:\n  type: GlobusMPIEngine\n  max_workers_per_block: 2\n"
        "  mpi_launcher: srun\n  provider:\n    type: LocalProvider\n"
        "    launcher: {type: SimpleLauncher}\n"
    )
    assert isinstance(build_parsl_executor(config, workers=2), MPIExecutor)


def test_scaling_options_accept_the_reference_job_status_kwargs():
    config = parse_endpoint_config(
        "engine:\n  job_status_kwargs: {max_idletime: 30, strategy_period: 2}\n  strategy: none\n"
    )
    assert scaling_options(config) == {
        "strategy": None,
        "max_idletime": 30.0,
        "strategy_period": 2.0,
    }


def test_local_example_builds():
    pytest.importorskip("parsl")
    config = load_endpoint_config(EXAMPLES / "endpoint_config_local.yaml")
    htex = build_parsl_executor(config, workers=None)
    assert htex.max_workers_per_node == 2
    assert config.max_retries_on_system_failure == 0


def test_slurm_example_renders_a_submit_script(tmp_path, monkeypatch):
    """Parsl's own SlurmProvider.submit writes the script; a stand-in sbatch accepts it."""
    pytest.importorskip("parsl")
    from parsl.launchers import SrunLauncher
    from parsl.providers import SlurmProvider

    config = load_endpoint_config(EXAMPLES / "endpoint_config_slurm.yaml")
    htex = build_parsl_executor(config, workers=None)
    provider = htex.provider
    assert isinstance(provider, SlurmProvider)
    assert isinstance(provider.launcher, SrunLauncher)
    assert htex.max_workers_per_node == 8
    assert config.max_retries_on_system_failure == 1

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text("#!/bin/sh\necho 'Submitted batch job 4242'\n")
    sbatch.chmod(sbatch.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    provider.script_dir = str(tmp_path)

    job_id = provider.submit("process_worker_pool.py --max_workers_per_node=8", 1, "ep")

    assert job_id == "4242"
    (script_path,) = [p for p in tmp_path.iterdir() if p.name.startswith("ep.") and p.is_file()]
    script = script_path.read_text()
    assert "#SBATCH --partition=debug" in script
    assert "#SBATCH --account=proj123" in script
    assert "#SBATCH --qos=normal" in script
    assert "#SBATCH --nodes=2" in script
    assert "#SBATCH --time=60" in script  # Parsl writes the walltime in minutes
    assert "#SBATCH --exclusive" in script
    assert "#SBATCH --constraint=cpu" in script
    assert "module load python/3.11; source ~/venvs/compute/bin/activate" in script
    assert "srun --ntasks 2" in script and "--cpu-bind=none" in script
