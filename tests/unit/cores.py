"""Running a test module under every core implementation that loads here (anpr_stream/core/accel.py): the Python
reference and, when installed, its native twin. A module opts in with

    from tests.unit.cores import each_core  # noqa: F401 (the fixture, used by name)
    pytestmark = pytest.mark.usefixtures("each_core")
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from anpr_stream.core import accel


# Module scope: each implementation runs the whole module in one go, and hypothesis's tests see no function-scoped
# fixture.
@pytest.fixture(scope="module", params=accel.available())
def each_core(request: pytest.FixtureRequest) -> Iterator[str]:
    with accel.use(request.param):
        yield request.param
