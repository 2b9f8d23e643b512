"""schemathesis against this area's /v1 operations: no 5xx and responses fit the schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, not_a_server_error
from tests.api.apiclient import add_members, make_key

from kizuna.api import create_app
from kizuna.bootstrap import Context
from kizuna.services.programme import config
from kizuna.services.workspace import init_workspace

OURS = "^/v1/(referrals|members/[^/]+/referral-code|ambassador|community|reviews)"
EXAMPLES = {GenerationMode.POSITIVE: 8, GenerationMode.NEGATIVE: 4}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Context, str]]:
    mp = pytest.MonkeyPatch()
    mp.delenv("KIZUNA_DATABASE_URL", raising=False)
    ctx = init_workspace(Path(tmp_path_factory.mktemp("fuzz")) / "ws")
    config.forget_cache()
    add_members(ctx, 3)
    key = make_key(ctx, "admin")
    yield ctx, key
    ctx.dispose()
    config.forget_cache()
    mp.undo()


def test_no_advocacy_operation_answers_5xx(fuzzed: tuple[Context, str]) -> None:
    ctx, key = fuzzed
    app = create_app(ctx)
    with TestClient(app) as client:
        h = {"Authorization": f"Bearer {key}"}
        client.post("/v1/community/events", headers=h, json={
            "event_id": "e1", "name": "x", "kind": "meetup", "starts_at": "2026-03-02T10:00:00+09:00"})  # fmt: skip
        client.post(
            "/v1/reviews", headers=h, json={"review_id": "r1", "member_id": "M00000", "rating": 4}
        )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=OURS)
    failures: list[str] = []
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=EXAMPLES[mode], deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])  # fmt: skip
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: schemathesis.Case) -> None:
                case.call_and_validate(
                    headers={"Authorization": f"Bearer {key}"},
                    checks=[not_a_server_error, content_type_conformance],
                )

            try:
                run()
            except Exception as exc:  # noqa: BLE001 - every failing operation is reported
                failures.append(f"[{mode.value}] {operation.label}: {str(exc)[:1200]}")
                break
    assert not failures, "\n\n".join(failures)
