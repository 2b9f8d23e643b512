"""The segment commands end to end through the real ``kizuna`` CLI."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import CUSTOMERS_CSV, write
from tests.test_cli import kizuna


def test_segment_preview_create_list_refresh(tmp_path: Path) -> None:
    assert kizuna("init", "shop", cwd=tmp_path).returncode == 0
    shop = tmp_path / "shop"
    write(tmp_path / "customers.csv", CUSTOMERS_CSV)
    assert (
        kizuna(
            "-w", str(shop), "import", "customers", str(tmp_path / "customers.csv"), cwd=tmp_path
        ).returncode
        == 0
    )
    seg = write(
        tmp_path / "women.yaml",
        "name: women\ndescription: 女性のお客様\nrule:\n  field: gender\n  value: female\n",
    )
    preview = kizuna("-w", str(shop), "segment", "preview", str(seg), cwd=tmp_path)
    assert preview.returncode == 0, preview.stderr
    assert "2 customers match" in preview.stdout and "佐藤 花子" in preview.stdout

    created = kizuna("-w", str(shop), "segment", "create", str(seg), cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    assert "women: 2 members (+2 entered, -0 exited)" in created.stdout
    listed = kizuna("-w", str(shop), "segment", "list", cwd=tmp_path)
    assert "women" in listed.stdout and "女性のお客様" in listed.stdout
    again = kizuna("-w", str(shop), "segment", "refresh", cwd=tmp_path)
    assert "women: 2 members (+0 entered, -0 exited)" in again.stdout

    bad = write(
        tmp_path / "bad.json",
        '{"name": "b", "rule": {"and": [{"field": "shoe_size", "value": 1}]}}',
    )
    failed = kizuna("-w", str(shop), "segment", "preview", str(bad), cwd=tmp_path)
    assert failed.returncode == 5
    assert "/rule/and/0/field" in failed.stderr and "unknown field 'shoe_size'" in failed.stderr


def test_journey_commands_worker_and_measures(tmp_path: Path) -> None:
    assert kizuna("init", "shop", cwd=tmp_path).returncode == 0
    shop = tmp_path / "shop"
    write(tmp_path / "customers.csv", CUSTOMERS_CSV)
    assert (
        kizuna(
            "-w", str(shop), "import", "customers", str(tmp_path / "customers.csv"), cwd=tmp_path
        ).returncode
        == 0
    )
    doc = write(
        tmp_path / "bday.yaml",
        "name: bday\nholdout_percent: 0\ntrigger: {birthday: {}}\nsteps:\n"
        "  - {id: tag, action: set_attribute, key: greeted, value: true}\n"
        "  - {id: mail, action: email, subject: 'おめでとう {{ name }}', text: hi}\n",
    )
    w = ["-w", str(shop)]
    assert "is valid: 2 steps" in kizuna(*w, "journey", "validate", str(doc), cwd=tmp_path).stdout
    dry = kizuna(
        *w, "journey", "dry-run", str(doc), "--now", "2025-04-01T10:00+09:00", cwd=tmp_path
    )
    assert dry.returncode == 0, dry.stderr
    assert (
        "1 customers would enter" in dry.stdout
        and "C1" in dry.stdout
        and "mail:email" in dry.stdout
    )
    assert kizuna(*w, "journey", "create", str(doc), cwd=tmp_path).returncode == 0
    assert "activated" in kizuna(*w, "journey", "activate", "bday", cwd=tmp_path).stdout
    run = kizuna(*w, "worker", "--once", "--now", "2025-04-01T10:00+09:00", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "1 runs claimed, 1 enrolled" in run.stdout
    stats = kizuna(*w, "journey", "stats", "bday", cwd=tmp_path).stdout
    assert "treated:completed" in stats and "send email:skipped" in stats  # no consent imported
    assert "send set_attribute:sent" in stats
    set_ = kizuna(
        *w, "measures", "set", "bday", "--objective", "repeat", "--target", "0.02", cwd=tmp_path
    )
    assert set_.returncode == 0, set_.stderr
    rep = kizuna(*w, "measures", "report", "--json", cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr and '"journey": "bday"' in rep.stdout
    bad = write(
        tmp_path / "pts.yaml",
        "name: p\ntrigger: {birthday: {}}\nsteps: [{id: g, action: grant_points}]\n",
    )
    refused = kizuna(*w, "journey", "validate", str(bad), cwd=tmp_path)
    # A points step must say how many points (or which reward) and why.
    assert refused.returncode == 5 and "either points" in refused.stderr
