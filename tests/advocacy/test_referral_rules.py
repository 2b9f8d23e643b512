"""The pure rules of referrals: codes, identity normalisation and the fraud verdict."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kizuna.domain import referrals as rules

KEY = b"k" * 32


def test_codes_are_short_unambiguous_and_random() -> None:
    codes = {rules.new_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(rules.looks_like_code(c) for c in codes)
    assert not set("01ILOU") & set("".join(codes))


@given(st.text(alphabet=rules.ALPHABET, min_size=8, max_size=8))
def test_a_typed_code_normalises_back(code: str) -> None:
    typed = f" {code[:4].lower()}-{code[4:]}\u3000"
    assert rules.normalise_code(typed) == code
    full_width = "".join(chr(ord(ch) + 0xFEE0) for ch in code)
    assert rules.normalise_code(full_width) == code


def test_identities_match_across_spellings_and_never_show_the_value() -> None:
    a = rules.fingerprints(KEY, email="Taro.Y+shop@GMAIL.com", phone="+81 90-1234-5678",
                           address="渋谷区神宮前1-2-3", postal_code="150-0001")  # fmt: skip
    b = rules.fingerprints(KEY, email="taroy@gmail.com", phone="09012345678",
                           address="渋谷区神宮前１－２－３", postal_code="1500001")  # fmt: skip
    assert a == b
    assert "09012345678" not in "".join(a.values())
    other_key = rules.fingerprints(b"x" * 32, email="taroy@gmail.com", phone=None,
                                   address=None, postal_code=None)  # fmt: skip
    assert other_key["email"] != a["email"]
    assert rules.fingerprints(KEY, email="", phone="12", address=None, postal_code=None) == {}


def _facts(**kw: object) -> rules.ReferralFacts:
    base: dict[str, object] = dict(referrer_id=1, referee_id=2, referrer_prints={}, referee_prints={},
                                   earlier_orders=0, order_cancelled=False, order_returned=False,
                                   rewarded_this_month=0, rewarded_lifetime=0)  # fmt: skip
    return rules.ReferralFacts(**{**base, **kw})  # type: ignore[arg-type]


def test_the_verdict_lists_every_reason() -> None:
    caps = rules.Caps(per_month=2, lifetime=5)
    assert rules.fraud_reasons(_facts(), caps) == []
    assert rules.fraud_reasons(_facts(referee_id=1), caps) == ["self_referral"]
    both = _facts(referrer_prints={"email": "x", "phone": "p"}, referee_prints={"email": "x", "phone": "q"},
                  earlier_orders=1, order_returned=True, rewarded_this_month=2)  # fmt: skip
    assert rules.fraud_reasons(both, caps) == ["same_email", "already_customer", "order_returned",
                                               "cap_monthly"]  # fmt: skip
    assert rules.fraud_reasons(_facts(rewarded_lifetime=5, rewarded_this_month=9), caps) == [
        "cap_lifetime"
    ]
