"""The advocacy commands end to end on a SQLite workspace: referral, ambassador, community, review."""

from __future__ import annotations

import json
from pathlib import Path

from tests.advocacy.conftest import T0, customer, order, points_of
from typer.testing import CliRunner

from kizuna.bootstrap import Context
from kizuna.cli import app
from kizuna.errors import KizunaError
from kizuna.services.programme import config

runner = CliRunner()


def run(ws: Path, *args: str) -> str:
    result = runner.invoke(app, ["-w", str(ws), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def fail(ws: Path, *args: str) -> str:
    """The Kizuna error a command ends with (``kizuna.cli.run`` prints it, with its exit code)."""
    result = runner.invoke(app, ["-w", str(ws), *args])
    assert isinstance(result.exception, KizunaError), result.output
    return f"{result.exception} (exit {result.exception.exit_code})"


def test_referral_commands(sqlite_workspace: Context) -> None:
    config.forget_cache()
    ctx, ws = sqlite_workspace, sqlite_workspace.settings.workspace
    a, b = customer(ctx, "a"), customer(ctx, "b")
    code = json.loads(run(ws, "referral", "code", "a"))["code"]
    captured = json.loads(run(ws, "referral", "capture", "b", code.lower(), "--at", T0.isoformat()))
    assert captured["status"] == "pending"
    order(ctx, "o1", b, T0)
    assert "rewarded 1" in run(ws, "referrals", "settle", "--at", "2026-05-01T00:00:00+09:00")
    rows = json.loads(run(ws, "referral", "list", "--json"))
    assert rows[0]["status"] == "rewarded"
    assert points_of(ctx, a) == points_of(ctx, b) == 500
    assert "unknown referral code" in fail(ws, "referral", "capture", "b", "ZZZZZZZZ")


def test_ambassador_community_and_review_commands(
    sqlite_workspace: Context, tmp_path: Path
) -> None:
    config.forget_cache()
    ctx, ws = sqlite_workspace, sqlite_workspace.settings.workspace
    a = customer(ctx, "a")
    customer(ctx, "b")
    run(ws, "review", "add", "r1", "a", "--rating", "5", "--text", "配送が早い", "--channel", "x")
    assert "r1" in run(ws, "review", "queue")
    assert json.loads(run(ws, "review", "approve", "r1", "--by", "mod"))["points"] == 50
    run(ws, "review", "add", "r2", "b", "--url", "https://example.jp/p")
    assert (
        json.loads(run(ws, "review", "reject", "r2", "--reason", "off topic", "--by", "mod"))[
            "reason"
        ]
        == "off topic"
    )
    run(ws, "review", "export", str(tmp_path / "reviews.csv"))
    assert "off topic" in (tmp_path / "reviews.csv").read_text(encoding="utf-8-sig")

    run(ws, "community", "event", "ev1", "Tea night", "--starts-at", "2026-03-02T19:00", "--online")
    run(ws, "community", "register", "ev1", "a")
    (tmp_path / "in.csv").write_text("member_id\na\nb\n", encoding="utf-8")
    assert "checked in 2 (walk-ins 1)" in run(
        ws, "community", "check-in", "ev1", "--csv", str(tmp_path / "in.csv")
    )
    (tmp_path / "bad.csv").write_text("member_id\nghost\n", encoding="utf-8")
    assert "ghost" in fail(ws, "community", "check-in", "ev1", "--csv", str(tmp_path / "bad.csv"))
    assert json.loads(run(ws, "community", "metrics"))["attendees"] == 2
    assert "Tea night" in run(ws, "community", "events")

    assert json.loads(run(ws, "ambassador", "candidates", "--json"))[0]["member_id"] in ("a", "b")
    run(ws, "ambassador", "invite", "a", "--by", "hanako")
    run(ws, "ambassador", "accept", "a", "--by", "a")
    run(ws, "ambassador", "activate", "a", "--by", "hanako")
    assert "next steps are: alumni" in fail(ws, "ambassador", "invite", "a", "--by", "hanako")
    run(ws, "ambassador", "task", "add", "t1", "a", "--title", "Speak at the meetup",
        "--kind", "event_speaker", "--points", "200", "--by", "hanako")  # fmt: skip
    run(ws, "ambassador", "task", "done", "t1", "--by", "hanako", "--reach", "300")
    run(ws, "ambassador", "task", "done", "t1", "--by", "hanako", "--reach", "300")
    shown = json.loads(run(ws, "ambassador", "show", "a"))
    assert shown["status"] == "active" and shown["impact"]["reach"] == 300
    assert points_of(ctx, a) == 250
