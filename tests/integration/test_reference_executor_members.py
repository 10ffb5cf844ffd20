"""Public members of the reference SDK's Executor that code written for it uses.

Code written for ``globus_compute_sdk.Executor`` 4.19.0 (and frameworks reaching ours through
the ``globus_compute_sdk`` alias) uses these; an adversarial review found ours raising
``AttributeError`` for them.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from globus_compute.local import LocalCompute

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_executor_offers_get_worker_hardware_details_like_the_reference(
    local_stack: Callable[..., LocalCompute],
) -> None:
    # Reference: ``with Executor(ep) as gcx: print(gcx.get_worker_hardware_details())``.
    local = local_stack(workers=1)
    with local.executor() as ex:
        report = ex.get_worker_hardware_details()
    assert isinstance(report, str) and report
    assert "== Compute Endpoint worker == == python ==" in report


def test_executor_amqp_port_is_readable_like_the_reference(
    local_stack: Callable[..., LocalCompute],
) -> None:
    # Reference: a property, None by default; ours accepts the argument but has no attribute.
    local = local_stack(workers=1)
    with local.executor() as ex:
        assert ex.amqp_port is None
