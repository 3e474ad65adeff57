"""Test configuration: the hypothesis profiles of plastic.testing (``ci``
deterministic and bounded, ``thorough`` for long runs), chosen by
HYPOTHESIS_PROFILE; one torch thread per test process."""

import torch

from plastic.testing import register_profiles

register_profiles()
torch.set_num_threads(1)


# ---------------------------------------------------------------- devices (issue 15)
# ``pytest --device cuda`` runs the device-parametrised tests (the ``device`` fixture,
# tests/test_devices.py) on that device; the default is the CPU, so nothing needs a GPU.

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device", default="cpu", help="torch device of the device-parametrised tests (cpu, cuda, cuda:1, ...)"
    )


@pytest.fixture(scope="session")
def device(request: pytest.FixtureRequest) -> torch.device:
    """The device named by ``--device``; the tests are skipped when it is CUDA and none is present."""
    chosen = torch.device(request.config.getoption("--device"))
    if chosen.type == "cuda" and not torch.cuda.is_available():
        pytest.skip(f"--device {chosen}: CUDA is not available")
    return chosen


# ---------------------------------------------------------------- plasticity-only tests
# Modules of plasticity tests mark themselves ``pytestmark = pytest.mark.usefixtures("no_grad")``:
# their cells step as a plasticity run should, with no autograd graph (plastic.GradModeWarning).


@pytest.fixture
def no_grad() -> Iterator[None]:
    """The test runs under ``torch.no_grad()``."""
    with torch.no_grad():
        yield
