"""The ``send_survey`` journey action: email a customer a signed survey link.

It is an external action, so the runner's send ledger gives it the same
"never twice" guarantee as ``email``. The link's token id is derived from the
step's idempotency key and the invitation row is written (idempotently) just
before the message goes out, in its own short transaction — the runner rolls
back whatever an external action writes on its own connection. A retry after
a crash therefore finds the same invitation and re-sends the very same link
with the same expiry and Message-ID.

Parameters: ``survey`` (a survey key), and optionally ``subject``, ``text``
and ``html`` templates that may use ``{{ survey_url }}`` and
``{{ survey_title }}``; without them a built-in message in the customer's
language (ja/en) is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kizuna.automation.actions import ActionContext, Outcome, PermanentFailure, register_action
from kizuna.automation.channels.email import SMTPSender, build_message, has_consent
from kizuna.automation.templates import check, render
from kizuna.domain.surveys import SURVEY_KEY
from kizuna.domain.vocabulary import LANGUAGES
from kizuna.errors import JourneyError, KizunaError
from kizuna.store import tables as t

DEFAULT_MESSAGES: dict[str, dict[str, str]] = {
    "ja": {
        "subject": "{{ survey_title }}へのご協力のお願い",
        "text": (
            "{{ name }} 様\n\nいつもご利用ありがとうございます。\n"
            "1分ほどで終わるアンケートにご協力ください。\n\n{{ survey_url }}\n\n"
            "回答の期限までは、同じリンクから回答を修正できます。\n\n"
            "配信停止: {{ unsubscribe_url }}\n"
        ),
    },
    "en": {
        "subject": "{{ survey_title }}: a minute of your time?",
        "text": (
            "Dear {{ name }},\n\nThank you for shopping with us.\n"
            "Would you answer a one-minute survey?\n\n{{ survey_url }}\n\n"
            "Until the link expires you can change your answer from the same link.\n\n"
            "Unsubscribe: {{ unsubscribe_url }}\n"
        ),
    },
}


class SendSurvey:
    name = "send_survey"
    external = True
    marketing = True

    def __init__(self) -> None:
        self.sender = SMTPSender()

    def validate(self, params: Mapping[str, Any], path: str) -> None:
        survey = params.get("survey")
        if not isinstance(survey, str) or not SURVEY_KEY.match(survey):
            raise JourneyError(f"journey {path}/survey: send_survey needs the key of a survey")
        if ("subject" in params) != ("text" in params):
            raise JourneyError(
                f"journey {path}: give both subject and text, or neither for the built-in message"
            )
        sample = {column.name: "" for column in t.customers.c} | {
            "unsubscribe_url": "",
            "survey_url": "",
            "survey_title": "",
        }
        for key in ("subject", "text", "html"):
            if key in params:
                if not isinstance(params[key], str):
                    raise JourneyError(f"journey {path}/{key}: a template string")
                check(params[key], what=f"journey {path}/{key}")
                render(params[key], sample, html=key == "html", what=f"journey {path}/{key}")

    def perform(self, ctx: ActionContext) -> Outcome:
        from kizuna.services.survey_links import issue_link, token_id_for
        from kizuna.services.surveys import latest

        customer_id = int(ctx.customer["id"])
        if not has_consent(ctx.conn, customer_id, "email"):
            return Outcome("skipped", "no email consent at send time")
        if not ctx.customer.get("email"):
            return Outcome("skipped", "no email address")
        try:
            with ctx.conn.engine.begin() as conn:
                link = issue_link(
                    conn, ctx.settings, str(ctx.params["survey"]), customer_id, now=ctx.now,
                    channel="email", source=f"journey:{ctx.journey}:{ctx.step_id}",
                    token_id=token_id_for(f"{ctx.journey_id}:{ctx.idempotency_key}"),
                )  # fmt: skip
                definition = latest(conn, link.survey).definition
        except KizunaError as exc:
            raise PermanentFailure(f"send_survey: {exc}") from exc
        language = ctx.customer.get("language")
        language = language if language in LANGUAGES else LANGUAGES[0]
        params: dict[str, Any] = dict(ctx.params)
        if "subject" not in params:
            params.update(DEFAULT_MESSAGES[language])
        variables = {
            **ctx.variables,
            "survey_url": link.url,
            "survey_title": definition.text("title", language),
        }
        msg = build_message(ctx.settings, params, ctx.customer, ctx.idempotency_key, variables)
        self.sender.send(ctx.settings, msg)
        return Outcome("sent", message_id=str(msg["Message-ID"]))


register_action(SendSurvey())
