"""One generated sample, imported once per backend, for the tests that check planted truths.

The generator plants at-risk accounts (usage fades from a known day) and
in-market accounts (a research surge on one topic); the health and intent
tests must find them from what was imported, not from the simulator.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from tests.conftest import POSTGRES_URL, _reset_postgres

from kizuna.bootstrap import Context
from kizuna.ingest.sample import SampleSummary, generate
from kizuna.services.imports import ImportFiles, files_in_folder, import_paths
from kizuna.services.workspace import init_workspace

#: The generator's default last day: at-risk decline and intent surges are dated from it.
LAST_DAY = date(2026, 10, 31)
CUSTOMERS = 20_000


@pytest.fixture(scope="session")
def success_sample(tmp_path_factory: pytest.TempPathFactory) -> SampleSummary:
    return generate(tmp_path_factory.mktemp("success-sample"), CUSTOMERS, seed=5)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def loaded(
    request: pytest.FixtureRequest,
    success_sample: SampleSummary,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Context]:
    """A workspace holding the sample, shared by the tests of one module."""
    if request.param == "postgresql" and not POSTGRES_URL:
        if os.environ.get("KIZUNA_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail("KIZUNA_TEST_REQUIRE_POSTGRES=1 but KIZUNA_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL case: set KIZUNA_TEST_POSTGRES_URL to run it")
    folder = tmp_path_factory.mktemp(f"loaded-{request.param}") / "ws"
    saved = os.environ.pop("KIZUNA_DATABASE_URL", None)
    try:
        if request.param == "postgresql":
            _reset_postgres(POSTGRES_URL)
            ctx = init_workspace(folder, database_url=POSTGRES_URL)
        else:
            ctx = init_workspace(folder)
    finally:
        if saved is not None:
            os.environ["KIZUNA_DATABASE_URL"] = saved
    load_sample(ctx, success_sample.out_dir)
    yield ctx
    ctx.dispose()


def load_sample(ctx: Context, folder: Path) -> None:
    import_paths(ctx, ImportFiles(files_in_folder(folder)))
