"""Personal data masks: enough to tell rows apart, nothing that identifies a person."""

from __future__ import annotations

from datetime import date

import pytest

from kizuna.web.masking import PERSONAL_FIELDS, masked


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("email", "taro@example.jp", "t***@example.jp"),
        ("name", "山田 太郎", "山田 *"),
        ("name", "Jane Q Doe", "Jane * *"),
        ("name", "マドンナ", "マ*"),
        ("phone", "090-1234-5678", "***-****-**78"),
        ("birthday", date(1990, 4, 1), "****-**-**"),
        ("postal_code", "150-0001", "150-****"),
        ("email", None, None),
        ("name", "", ""),
    ],
)
def test_masks(field: str, value: object, expected: object) -> None:
    assert masked(field, value, visible=False) == expected
    assert masked(field, value, visible=True) == value


def test_only_personal_fields_are_masked() -> None:
    assert masked("region", "東京都", visible=False) == "東京都"
    assert set(PERSONAL_FIELDS) == {"name", "email", "phone", "birthday", "postal_code"}
