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

import base64
import contextlib
import hashlib
import random
import re
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, parseaddr
from functools import lru_cache
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
    subject = _CRLF.sub(" ", render(params["subject"], variables, what="email subject"))
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


#: Addresses the byte-level builder takes; other ASCII ones (quoting and the
#: like) go through :func:`build_message`.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")
_CRLF = re.compile(r"[\r\n]+")


@dataclass(frozen=True)
class OutgoingEmail:
    """A message ready for the wire: its envelope and its exact bytes (CRLF lines)."""

    sender: str
    recipient: str
    data: bytes
    message_id: str


def message_id(msg: Message | OutgoingEmail) -> str:
    """The Message-ID the ledger records, whichever builder made the message."""
    return msg.message_id if isinstance(msg, OutgoingEmail) else str(msg["Message-ID"])


def _encoded_words(text: str) -> str:
    """RFC 2047 base64 encoded-words, folded so no line passes 78 characters.

    Chunks end on character boundaries (39 UTF-8 bytes at most, so a word
    stays within 64 characters): a mail client decodes each word alone.
    """
    words: list[str] = []
    chunk = b""
    for char in text:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > 39:
            words.append(_word(chunk))
            chunk = b""
        chunk += encoded
    if chunk or not words:
        words.append(_word(chunk))
    return "\r\n ".join(words)


def _word(chunk: bytes) -> str:
    return f"=?utf-8?b?{base64.b64encode(chunk).decode('ascii')}?="


def _mailbox(name: str, address: str) -> str:
    name = _CRLF.sub(" ", name)
    if not name:
        return address
    if name.isascii():
        return formataddr((name, address))
    # One word, however long, as ``formataddr`` writes it: parsers such as
    # Python's own put a space between adjacent words of a display name.
    return f"{_word(name.encode('utf-8'))} <{address}>"


@lru_cache(maxsize=16)
def _from_header(email_from: str) -> tuple[str, str, str]:
    """(From header, envelope sender, Message-ID domain) of the ``email_from`` setting."""
    name, address = parseaddr(email_from)
    header = formataddr((name, address), charset="utf-8").replace("\n", "\r\n")
    return header, address, address.partition("@")[2] or "kizuna.local"


def _body_part(text: str, subtype: str) -> bytes:
    body = base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode("ascii") + body


def build_email(
    settings: Settings,
    params: Mapping[str, Any],
    customer: Mapping[str, Any],
    key: str,
    run_variables: Mapping[str, Any] | None = None,
) -> Message | OutgoingEmail:
    """The message of :func:`build_message`, written straight to bytes when it can be.

    A campaign sends the same shape thousands of times; the ``email``
    package spends most of a message's CPU on generic machinery (charset
    objects, header folding, the generator, and ``send_message`` parsing the
    headers back). Here the same MIME — UTF-8 encoded-word headers, base64
    bodies, the same headers in the same order — is joined from strings.
    Unusual ASCII addresses (quoted local parts and the like) take
    :func:`build_message`; a non-ASCII one is a :class:`PermanentFailure`.
    """
    address = str(customer.get("email") or "")
    if not address.isascii():
        # ``build_message`` cannot write it either; a dead letter says why.
        raise PermanentFailure(
            "the email address is not plain ASCII; internationalised addresses are not supported"
        )
    if not _PLAIN_ADDRESS.fullmatch(address):
        return build_message(settings, params, customer, key, run_variables)
    topic = params.get("topic")
    channel = f"email:{topic}" if topic else "email"
    unsubscribe = unsubscribe_url(settings, int(customer["id"]), channel)
    variables = {**customer, **(run_variables or {}), "unsubscribe_url": unsubscribe}
    text = render(params["text"], variables, what="email text")
    subject = _CRLF.sub(" ", render(params["subject"], variables, what="email subject"))
    from_header, sender, domain = _from_header(settings.email_from)
    mid = f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"
    if subject.isascii() and len(subject) <= 68:
        subject_header = subject
    else:
        subject_header = _encoded_words(subject)
    headers = (
        f"Subject: {subject_header}\r\nFrom: {from_header}\r\n"
        f"To: {_mailbox(str(customer.get('name') or ''), address)}\r\n"
        f"Message-ID: {mid}\r\nList-Unsubscribe: <{unsubscribe}>\r\n"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    )
    if params.get("html"):
        html = render(params["html"], variables, html=True, what="email HTML")
        boundary = f"==============={random.randrange(10**18, 10**19)}=="
        data = (
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'
            f"MIME-Version: 1.0\r\n{headers}\r\n--{boundary}\r\n"
        ).encode()
        data += _body_part(text, "plain") + f"\r\n--{boundary}\r\n".encode("ascii")
        data += _body_part(html, "html") + f"\r\n--{boundary}--\r\n".encode("ascii")
    else:
        data = (
            'Content-Type: text/plain; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
            f"Content-Transfer-Encoding: base64\r\n{headers}\r\n"
        ).encode() + base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")
    return OutgoingEmail(sender, address, data, mid)


_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)


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
        smtp: smtplib.SMTP
        if settings.smtp_tls == "ssl":
            smtp = smtplib.SMTP_SSL(*target, timeout=30, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(*target, timeout=30)
            if settings.smtp_tls == "starttls":
                # Loading the system CAs takes ~0.1 s: only when TLS is used.
                smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_user:
            smtp.login(settings.smtp_user, str.__str__(settings.smtp_password))
        smtp.ehlo_or_helo_if_needed()
        self._smtp, self._target = smtp, target
        return smtp

    def send(self, settings: Settings, msg: Message | OutgoingEmail) -> None:
        try:
            smtp = self._connect(settings)
            if not isinstance(msg, OutgoingEmail):
                smtp.send_message(msg)
            elif smtp.has_extn("pipelining"):
                _pipelined(smtp, msg)
            else:
                smtp.sendmail(msg.sender, [msg.recipient], msg.data)
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


def _pipelined(smtp: smtplib.SMTP, msg: OutgoingEmail) -> None:
    """One SMTP transaction with RFC 2920 PIPELINING: two round trips instead of four.

    MAIL, RCPT and DATA leave in one write and their three replies are read
    in order; the message follows only on ``354``. Refusals raise the same
    exceptions as :meth:`smtplib.SMTP.sendmail`, so the caller's mapping to
    retry or dead letter is the same on both paths. ``smtplib`` does not
    pipeline, hence these few lines on top of its connection.
    """
    smtp.send(f"MAIL FROM:<{msg.sender}>\r\nRCPT TO:<{msg.recipient}>\r\nDATA\r\n")
    mail_code, mail_reply = smtp.getreply()
    rcpt_code, rcpt_reply = smtp.getreply()
    data_code, data_reply = smtp.getreply()
    if data_code == 354:
        # Only when MAIL or RCPT failed and the server still opened DATA:
        # an empty message it cannot deliver, just to get back in step.
        body = b"" if mail_code != 250 or rcpt_code not in (250, 251) else msg.data
        body = _LEADING_DOT.sub(b"..", body)
        if body and not body.endswith(b"\r\n"):
            body += b"\r\n"
        smtp.send(body + b".\r\n")
        data_code, data_reply = smtp.getreply()
    if mail_code != 250:
        raise smtplib.SMTPSenderRefused(mail_code, mail_reply, msg.sender)
    if rcpt_code not in (250, 251):
        raise smtplib.SMTPRecipientsRefused({msg.recipient: (rcpt_code, rcpt_reply)})
    if data_code != 250:
        raise smtplib.SMTPDataError(data_code, data_reply)


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

    def compose(self, ctx: ActionContext) -> Message | OutgoingEmail:
        """The message of this step for this customer (both send paths build it here)."""
        with customer_scope(ctx.conn, ctx.customer):  # for {{ recommendations(3) }} etc.
            return build_email(
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
        return Outcome("sent", message_id=message_id(msg))


#: The registered email action; :mod:`kizuna.automation.email_batch` composes with it too.
EMAIL = EmailAction()
register_action(EMAIL)
