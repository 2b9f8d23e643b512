"""Timeline lines in the reader's language, written from each item's ``detail``.

:func:`kizuna.services.customers.customer_360` gives every item a short
English ``title`` and a ``detail`` mapping; the dashboard writes its own line
from the detail through the catalogue (``tl.*`` keys) so Japanese readers get
Japanese. A kind without a catalogue line, or a detail missing a field, falls
back to the English title rather than failing the page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kizuna.services.customers import TimelineItem
from kizuna.web.format import Formatter
from kizuna.web.i18n import Translator


def _short(text: Any, width: int = 50) -> str:
    if not text:
        return ""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _order(d: Mapping[str, Any], t: Translator, f: Formatter) -> str:
    line = t(
        "tl.order",
        order_id=d["order_id"],
        amount=f.money(d["total_amount"]),
        lines=f.number(d["lines"]),
    )
    if d.get("status") and d["status"] != "completed":
        line += f" ({d['status']})"
    return line


def _return(d: Mapping[str, Any], t: Translator, f: Formatter) -> str:
    line = t("tl.return", order_id=d["order_id"], amount=f.money(d["refund_amount"]))
    return line + (f": {_short(d.get('reason'), 40)}" if d.get("reason") else "")


def _survey(d: Mapping[str, Any], t: Translator, f: Formatter) -> str:
    line = t("tl.survey", survey=str(d["kind"]).upper(), score=d["score"])
    return line + (f": “{_short(d.get('comment'))}”" if d.get("comment") else "")


def _contact(d: Mapping[str, Any], t: Translator, f: Formatter) -> str:
    state = t("tl.resolved") if d.get("resolved") else t("tl.open")
    topic = f": {_short(d.get('topic'), 40)}" if d.get("topic") else ""
    return f"{d['touchpoint']}{topic} ({state})"


def _training(d: Mapping[str, Any], t: Translator, f: Formatter) -> str:
    state = t("tl.completed") if d.get("completed_at") else t("tl.enrolled")
    if d.get("completed_at") and d.get("score") is not None:
        state += f", {t('tl.score', score=d['score'])}"
    return f"{d['kind']}: {_short(d['course'])} ({state})"


def _review(d: Mapping[str, Any], t: Translator, f: Formatter) -> str:
    stars = f" {'★' * int(d['rating'])}" if d.get("rating") else ""
    if d.get("product_name"):
        line = t("tl.review_of", kind=d["kind"], stars=stars, product=_short(d["product_name"], 40))
    else:
        line = t("tl.review", kind=d["kind"], stars=stars)
    text = d.get("title") or d.get("body")
    return line + (f": {_short(text, 40)}" if text else "")


def _referral_made(d: Mapping[str, Any], t: Translator, f: Formatter) -> str:
    if d.get("referee_id"):
        return t("tl.referred", other=d["referee_id"], status=d["status"])
    return t("tl.shared_code", code=d.get("code") or "?", status=d["status"])


def _referral_received(d: Mapping[str, Any], t: Translator, f: Formatter) -> str:
    return t("tl.referred_by", other=d["referrer_id"], status=d["status"])


def _consent(d: Mapping[str, Any], t: Translator, f: Formatter) -> str:
    key = "tl.consent_granted" if d["granted"] else "tl.consent_withdrawn"
    return t(key, channel=d["channel"], source=d.get("source") or "")


WRITERS: dict[str, Callable[[Mapping[str, Any], Translator, Formatter], str]] = {
    "order": _order,
    "return": _return,
    "survey": _survey,
    "contact": _contact,
    "training": _training,
    "review": _review,
    "referral_made": _referral_made,
    "referral_received": _referral_received,
    "consent": _consent,
}


def describe(item: TimelineItem, t: Translator, fmt: Formatter) -> str:
    """The item's line in ``t``'s language (its English title when no writer fits)."""
    writer = WRITERS.get(item.kind)
    if writer is None:
        return item.title
    try:
        return writer(item.detail, t, fmt)
    except (KeyError, TypeError, ValueError):
        return item.title
