"""The fuzz budget: 40 generated cases per reader in every CI run; ``POLYHEAD_FUZZ=long`` for the
nightly-style budget (2,000 per reader, or ``POLYHEAD_FUZZ_EXAMPLES``), run locally or on a schedule:

    POLYHEAD_FUZZ=long OMP_NUM_THREADS=1 pytest -q tests/shared/test_fuzz_readers.py tests/shared/test_fuzz_apps.py
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

LONG = os.environ.get("POLYHEAD_FUZZ", "").strip().lower() == "long"
LONG_EXAMPLES = int(os.environ.get("POLYHEAD_FUZZ_EXAMPLES", "2000"))


def budget(ci: int = 40) -> int:
    """Cases per reader: ``ci`` in CI, :data:`LONG_EXAMPLES` (at least ``ci``) with ``POLYHEAD_FUZZ=long``."""
    return max(ci, LONG_EXAMPLES) if LONG else ci


def fuzz(ci: int = 40) -> settings:
    """hypothesis settings for one reader's fuzz test (no deadline: the machine is shared)."""
    return settings(
        max_examples=budget(ci),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
