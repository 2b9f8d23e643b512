"""The closed vocabularies of the data model.

Imports, the API and the sample generator all check values against these
tuples, so a typo such as ``call_center`` is reported instead of silently
creating a new touchpoint that no report knows about.
"""

from __future__ import annotations

GENDERS = ("female", "male", "other", "unknown")
CONSENT_CHANNELS = ("email", "sms", "line", "push", "phone", "post")
ORDER_CHANNELS = ("store", "online", "app", "phone", "b2b")
ORDER_STATUSES = ("completed", "cancelled")
EVENT_TYPES = (
    "page_view",
    "product_view",
    "search",
    "add_to_cart",
    "app_open",
    "app_session",
    "login",
    "feature_use",
    "email_open",
    "email_click",
    "download",
    "webinar_view",
    "custom",
)
SURVEY_KINDS = ("nps", "csat", "ces")
#: Inclusive score ranges per survey kind: NPS 0-10, CSAT 1-5, CES 1-7.
SURVEY_SCALES = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}
LANGUAGES = ("ja", "en")
TOUCHPOINTS = ("inquiry_form", "support_desk", "chatbot", "call_centre")
COMMUNITY_KINDS = ("event_registration", "event_attendance", "post", "comment")
COMMUNITY_EVENT_KINDS = ("meetup", "webinar", "user_group", "workshop", "conference")
TRAINING_KINDS = ("onboarding", "course", "certification")
REVIEW_KINDS = ("review", "ugc")
REFERRAL_STATUSES = ("pending", "qualified", "rewarded", "rejected")
