"""The email channel: sandboxed templates, consent at send time, SMTP.

Consent is read in the same transaction that records the send, at the
moment of sending, not when the customer entered the journey: someone who
unsubscribed yesterday must not get today's step. Every message carries a
signed unsubscribe link and RFC 8058 one-click headers, and a Message-ID
derived from the ledger's idempotency key so that the one message that can
be repeated after a crash (sent, then the worker died before recording it)
is recognisable as the same message by receivers.
"""

from __future__ import annotations

import contextlib
import hashlib
import smtplib
import ssl
from collections.abc import Mapping
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, parseaddr
from typing import Any

import sqlalchemy as sa

from kizuna.automation.actions import (
    ActionContext,
    Outcome,
    PermanentFailure,
    RetryLater,
    register_action,
)
from kizuna.automation.templates import check, customer_scope, render
from kizuna.automation.unsubscribe import TOPIC, unsubscribe_url, unsubscribed_topics
from kizuna.config import Settings
from kizuna.errors import JourneyError
from kizuna.store import tables as t


def has_consent(conn: sa.Connection, customer_id: int, channel: str) -> bool:
    c = t.consents
    granted = conn.execute(
        sa.select(c.c.granted).where(c.c.customer_id == customer_id, c.c.channel == channel)
    ).scalar_one_or_none()
    return bool(granted)


def build_message(
    settings: Settings,
    params: Mapping[str, Any],
    customer: Mapping[str, Any],
    key: str,
    run_variables: Mapping[str, Any] | None = None,
) -> Message:
    """The MIME message: UTF-8 subject and bodies (Japanese included), text + HTML.

    Built with the classic ``email.mime`` classes (the ``compat32`` policy):
    they write encoded-word headers and base64 bodies directly, where
    ``EmailMessage`` re-parses every header it is given — about ten times
    the cost, which dominated a campaign's sending time.
    """
    topic = params.get("topic")
    channel = f"email:{topic}" if topic else "email"
    unsubscribe = unsubscribe_url(settings, int(customer["id"]), channel)
    variables = {**customer, **(run_variables or {}), "unsubscribe_url": unsubscribe}
    text = MIMEText(render(params["text"], variables, what="email text"), "plain", "utf-8")
    msg: Message
    if params.get("html"):
        html = render(params["html"], variables, html=True, what="email HTML")
        msg = MIMEMultipart("alternative")
        msg.attach(text)
        msg.attach(MIMEText(html, "html", "utf-8"))
    else:
        msg = text
    subject = render(params["subject"], variables, what="email subject").replace("\n", " ")
    msg["Subject"] = Header(subject, "utf-8").encode() if not subject.isascii() else subject
    sender_name, sender_address = parseaddr(settings.email_from)
    msg["From"] = formataddr((sender_name, sender_address), charset="utf-8")
    msg["To"] = formataddr(
        (str(customer.get("name") or ""), str(customer["email"])), charset="utf-8"
    )
    domain = sender_address.partition("@")[2] or "kizuna.local"
    msg["Message-ID"] = f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"
    msg["List-Unsubscribe"] = f"<{unsubscribe}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return msg


class SMTPSender:
    """One reusable SMTP connection per worker: reconnecting per message would cost more than sending."""

    def __init__(self) -> None:
        self._smtp: smtplib.SMTP | None = None
        self._target: tuple[str, int] | None = None

    def _connect(self, settings: Settings) -> smtplib.SMTP:
        target = (settings.smtp_host, settings.smtp_port)
        if self._smtp is not None and self._target == target:
            return self._smtp
        self.close()
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if settings.smtp_tls == "ssl":
            smtp = smtplib.SMTP_SSL(*target, timeout=30, context=context)
        else:
            smtp = smtplib.SMTP(*target, timeout=30)
            if settings.smtp_tls == "starttls":
                smtp.starttls(context=context)
        if settings.smtp_user:
            smtp.login(settings.smtp_user, str.__str__(settings.smtp_password))
        self._smtp, self._target = smtp, target
        return smtp

    def send(self, settings: Settings, msg: Message) -> None:
        try:
            self._connect(settings).send_message(msg)
        except smtplib.SMTPResponseException as exc:
            self.close()
            if 400 <= exc.smtp_code < 500:
                raise RetryLater(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
            raise PermanentFailure(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}") from exc
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            codes = [code for code, _ in exc.recipients.values()]
            if codes and all(400 <= code < 500 for code in codes):
                # A greylisting or full-mailbox answer: the server asks us to come back.
                raise RetryLater(f"recipient deferred: {exc.recipients}") from exc
            raise PermanentFailure(f"recipient refused: {exc.recipients}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise RetryLater(f"SMTP connection failed: {exc}") from exc

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._smtp.quit()
        self._smtp = None


class EmailAction:
    name = "email"
    external = True
    marketing = True

    def __init__(self) -> None:
        self.sender = SMTPSender()

    def validate(self, params: Mapping[str, Any], path: str) -> None:
        for key in ("subject", "text"):
            if not isinstance(params.get(key), str):
                raise JourneyError(f"journey {path}/{key}: email needs {key} (a template string)")
        topic = params.get("topic")
        if topic is not None and not (isinstance(topic, str) and TOPIC.match(topic)):
            raise JourneyError(
                f"journey {path}/topic: a topic is lower-case letters, digits, '_' or '-', "
                f"got {topic!r}"
            )
        sample = {column.name: "" for column in t.customers.c} | {
            "unsubscribe_url": "",
            "coupon_code": "",
        }
        for key in ("subject", "text", "html"):
            if isinstance(params.get(key), str):
                check(params[key], what=f"journey {path}/{key}")
                # A trial render catches sandbox escapes and misspelt variables now,
                # not at 09:00 on someone's birthday.
                render(params[key], sample, html=key == "html", what=f"journey {path}/{key}")

    def compose(self, ctx: ActionContext) -> Message:
        """The message of this step for this customer (both send paths build it here)."""
        with customer_scope(ctx.conn, ctx.customer):  # for {{ recommendations(3) }} etc.
            return build_message(
                ctx.settings, ctx.params, ctx.customer, ctx.idempotency_key, ctx.variables
            )

    def perform(self, ctx: ActionContext) -> Outcome:
        if not has_consent(ctx.conn, int(ctx.customer["id"]), "email"):
            return Outcome("skipped", "no email consent at send time")
        if not ctx.customer.get("email"):
            return Outcome("skipped", "no email address")
        topic = ctx.params.get("topic")
        if topic and unsubscribed_topics(ctx.conn, [int(ctx.customer["id"])], str(topic)):
            return Outcome("skipped", f"unsubscribed from topic {topic}")
        msg = self.compose(ctx)
        self.sender.send(ctx.settings, msg)
        return Outcome("sent", message_id=str(msg["Message-ID"]))


#: The registered email action; :mod:`kizuna.automation.email_batch` composes with it too.
EMAIL = EmailAction()
register_action(EMAIL)
