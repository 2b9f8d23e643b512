"""A generated sample shared by the recommendation tests (the generator plants taste groups)."""

from __future__ import annotations

import pytest

from kizuna.ingest.sample import SampleSummary, generate


@pytest.fixture(scope="session")
def rec_sample(tmp_path_factory: pytest.TempPathFactory) -> SampleSummary:
    return generate(tmp_path_factory.mktemp("recommend-sample"), 3_000, seed=5)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Debian's chromium through Playwright")
