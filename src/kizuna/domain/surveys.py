"""Survey definitions, answer classes and signed survey links: pure rules, no I/O.

A survey is NPS (0-10), CSAT (1-5) or CES (1-7), asked in Japanese and
English, with a "why?" comment box and optional extra questions. Answers are
classed the way journeys react to them: detractor, passive or promoter.

A survey link carries a *token*: ``<token id>.<survey id>.<customer id>.<expiry>``
plus an HMAC-SHA256 tag over those four fields. The tag makes the link
single-customer (editing the customer id breaks it) and expiring (so does
editing the expiry); the random token id names the one answer the link may
give, so a second submission edits that answer instead of adding another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kizuna.domain.vocabulary import LANGUAGES, SURVEY_KINDS, SURVEY_SCALES
from kizuna.errors import ValidationError

SURVEY_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
QUESTION_TYPES = ("text", "choice", "scale")
MAX_EXTRA_QUESTIONS = 10
MAX_COMMENT_CHARS = 4000

#: The question each kind asks when the definition does not word its own.
DEFAULT_QUESTIONS: dict[str, dict[str, str]] = {
    "nps": {
        "ja": "この店を友人や知人にすすめる可能性はどのくらいありますか？",
        "en": "How likely are you to recommend us to a friend or colleague?",
    },
    "csat": {
        "ja": "今回のご利用にどのくらい満足されましたか？",
        "en": "How satisfied were you with your experience?",
    },
    "ces": {
        "ja": "今回のお手続きはどのくらい簡単でしたか？",
        "en": "How easy was it to get what you needed?",
    },
}
DEFAULT_WHY: dict[str, str] = {
    "ja": "そのように評価された理由をお聞かせください。",
    "en": "What is the main reason for your score?",
}
#: The words under the two ends of each scale.
SCALE_ENDS: dict[str, dict[str, tuple[str, str]]] = {
    "nps": {"ja": ("すすめない", "ぜひすすめる"), "en": ("Not at all likely", "Extremely likely")},
    "csat": {"ja": ("不満", "大変満足"), "en": ("Very dissatisfied", "Very satisfied")},
    "ces": {"ja": ("とても難しい", "とても簡単"), "en": ("Very difficult", "Very easy")},
}

#: Answer classes per kind: (highest detractor score, highest passive score).
#: NPS is Reichheld's 0-6 / 7-8 / 9-10; CSAT counts 4-5 as satisfied and 1-2
#: as dissatisfied; CES (1 = very difficult, 7 = very easy) counts 6-7 as low effort.
CLASS_BOUNDS: dict[str, tuple[int, int]] = {"nps": (6, 8), "csat": (2, 3), "ces": (3, 5)}
ANSWER_CLASSES = ("detractor", "passive", "promoter")


def classify(kind: str, score: int) -> str:
    """``detractor``, ``passive`` or ``promoter`` for a score of a survey kind."""
    low, high = SURVEY_SCALES[kind]
    if not low <= score <= high:
        raise ValidationError(f"a {kind.upper()} score is between {low} and {high}, got {score}")
    detractor, passive = CLASS_BOUNDS[kind]
    if score <= detractor:
        return "detractor"
    return "passive" if score <= passive else "promoter"


def event_type(answer_class: str) -> str:
    """The system event an answer records, so journeys can react (``survey_detractor``)."""
    return f"survey_{answer_class}"


# --- definitions ------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """An extra question: free ``text``, one ``choice`` of several, or a 1-5 ``scale``."""

    id: str
    type: str
    label: Mapping[str, str]
    choices: tuple[Mapping[str, str], ...] = ()
    required: bool = False


@dataclass(frozen=True)
class SurveyDefinition:
    key: str
    kind: str
    title: Mapping[str, str]
    question: Mapping[str, str]
    why: Mapping[str, str]
    questions: tuple[Question, ...] = ()
    touchpoint: str | None = None

    def text(self, field: str, language: str) -> str:
        """A wording in ``language`` (definitions carry both, checked on parse)."""
        value: Mapping[str, str] = getattr(self, field)
        return value[language]

    def to_doc(self) -> dict[str, Any]:
        """The JSON document stored in ``surveys.definition`` (parse of it gives self)."""
        doc: dict[str, Any] = {
            "key": self.key,
            "kind": self.kind,
            "title": dict(self.title),
            "question": dict(self.question),
            "why": dict(self.why),
            "questions": [
                {
                    "id": q.id,
                    "type": q.type,
                    "label": dict(q.label),
                    "required": q.required,
                    **({"choices": [dict(c) for c in q.choices]} if q.choices else {}),
                }
                for q in self.questions
            ],
        }
        if self.touchpoint:
            doc["touchpoint"] = self.touchpoint
        return doc


def _bilingual(value: Any, path: str, default: Mapping[str, str] | None = None) -> dict[str, str]:
    if value is None and default is not None:
        return dict(default)
    if isinstance(value, str) and value.strip():
        raise ValidationError(
            f'survey {path}: give the wording in both languages, e.g. {{ja = "…", en = "…"}}'
        )
    if not isinstance(value, Mapping):
        raise ValidationError(f"survey {path}: needs a ja and an en wording")
    missing = [lang for lang in LANGUAGES if not str(value.get(lang) or "").strip()]
    if missing:
        raise ValidationError(f"survey {path}: the {' and '.join(missing)} wording is missing")
    extra = sorted(set(value) - set(LANGUAGES))
    if extra:
        raise ValidationError(f"survey {path}: unknown language {', '.join(extra)}; use ja and en")
    for lang in LANGUAGES:
        if len(str(value[lang])) > 500:
            raise ValidationError(f"survey {path}/{lang}: at most 500 characters")
    return {lang: str(value[lang]).strip() for lang in LANGUAGES}


def _question(doc: Any, index: int) -> Question:
    path = f"/questions/{index}"
    if not isinstance(doc, Mapping):
        raise ValidationError(f"survey {path}: a question is a table with id, type and label")
    qid = doc.get("id")
    if not isinstance(qid, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", qid):
        raise ValidationError(f"survey {path}/id: lower-case letters, digits and _ (like q1)")
    qtype = doc.get("type", "text")
    if qtype not in QUESTION_TYPES:
        raise ValidationError(f"survey {path}/type: one of {', '.join(QUESTION_TYPES)}")
    choices: tuple[dict[str, str], ...] = ()
    if qtype == "choice":
        raw = doc.get("choices")
        if not isinstance(raw, list) or not 2 <= len(raw) <= 12:
            raise ValidationError(f"survey {path}/choices: a choice question needs 2 to 12 choices")
        choices = tuple(_bilingual(c, f"{path}/choices/{i}") for i, c in enumerate(raw))
    return Question(
        qid,
        qtype,
        _bilingual(doc.get("label"), f"{path}/label"),
        choices,
        bool(doc.get("required", False)),
    )


def parse_definition(doc: Any) -> SurveyDefinition:
    """A checked definition; every problem names its path and the fix."""
    if not isinstance(doc, Mapping):
        raise ValidationError("a survey definition is a table (key, kind, title, ...)")
    key = doc.get("key")
    if not isinstance(key, str) or not SURVEY_KEY.match(key):
        raise ValidationError(
            "survey /key: 1-64 lower-case letters, digits, - or _ (like nps-after-purchase)"
        )
    kind = doc.get("kind")
    if kind not in SURVEY_KINDS:
        raise ValidationError(f"survey /kind: one of {', '.join(SURVEY_KINDS)}, got {kind!r}")
    unknown = sorted(
        set(doc) - {"key", "kind", "title", "question", "why", "questions", "touchpoint"}
    )
    if unknown:
        raise ValidationError(f"survey: unknown field {', '.join(unknown)}")
    raw_questions = doc.get("questions") or []
    if not isinstance(raw_questions, list) or len(raw_questions) > MAX_EXTRA_QUESTIONS:
        raise ValidationError(f"survey /questions: a list of at most {MAX_EXTRA_QUESTIONS}")
    questions = tuple(_question(q, i) for i, q in enumerate(raw_questions))
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise ValidationError("survey /questions: two questions share an id")
    touchpoint = doc.get("touchpoint")
    if touchpoint is not None and (not isinstance(touchpoint, str) or len(touchpoint) > 50):
        raise ValidationError("survey /touchpoint: text of at most 50 characters")
    return SurveyDefinition(
        key=key,
        kind=str(kind),
        title=_bilingual(doc.get("title"), "/title"),
        question=_bilingual(doc.get("question"), "/question", DEFAULT_QUESTIONS[str(kind)]),
        why=_bilingual(doc.get("why"), "/why", DEFAULT_WHY),
        questions=questions,
        touchpoint=touchpoint or None,
    )


def parse_extra(definition: SurveyDefinition, form: Mapping[str, str]) -> dict[str, Any]:
    """The answers to the extra questions from form fields ``q_<id>``, checked."""
    out: dict[str, Any] = {}
    for q in definition.questions:
        raw = (form.get(f"q_{q.id}") or "").strip()
        if not raw:
            if q.required:
                raise ValidationError(f"question {q.id} needs an answer")
            continue
        if q.type == "text":
            out[q.id] = raw[:MAX_COMMENT_CHARS]
        elif q.type == "scale":
            if raw not in {"1", "2", "3", "4", "5"}:
                raise ValidationError(f"question {q.id}: choose 1 to 5")
            out[q.id] = int(raw)
        else:
            if not raw.isdigit() or not 0 <= int(raw) < len(q.choices):
                raise ValidationError(f"question {q.id}: choose one of the options")
            out[q.id] = int(raw)
    return out


# --- signed links -------------------------------------------------------------------


class TokenInvalid(ValidationError):
    """A survey link that was edited, cut short or signed for another workspace."""


@dataclass(frozen=True)
class SurveyToken:
    token_id: str
    survey_id: int
    customer_id: int
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


def _tag(key: bytes, payload: str) -> str:
    mac = hmac.new(key, payload.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def sign_token(key: bytes, token: SurveyToken) -> str:
    """The URL-safe text of a token: its fields and their HMAC tag."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{8,64}", token.token_id):
        raise ValueError("token ids are 8-64 URL-safe characters")
    payload = (
        f"{token.token_id}.{token.survey_id}.{token.customer_id}."
        f"{int(token.expires_at.timestamp())}"
    )
    return f"{payload}.{_tag(key, payload)}"


def read_token(key: bytes, text: str) -> SurveyToken:
    """The token a link carries, if its tag is right; :class:`TokenInvalid` otherwise.

    Expiry is *not* checked here: the caller tells an expired link (a clear
    "expired" page) from a forged one.
    """
    parts = text.split(".")
    if len(parts) != 5:
        raise TokenInvalid("this survey link is incomplete; open the link from the email again")
    token_id, survey, customer, expiry, tag = parts
    if not hmac.compare_digest(_tag(key, ".".join(parts[:4])), tag):
        raise TokenInvalid("this survey link is not valid; it may have been changed")
    try:
        return SurveyToken(
            token_id, int(survey), int(customer), datetime.fromtimestamp(int(expiry), UTC)
        )
    except (ValueError, OverflowError):
        raise TokenInvalid("this survey link is not valid") from None
