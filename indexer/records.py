"""Patent and Demand: the record schema, its validation, and the canonical (English) field names."""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ApplicantType = Literal["university", "research_institute", "enterprise", "individual", "unknown"]
PatentType = Literal["发明", "实用新型", "外观设计", "unknown"]

#: Longest accepted id; ids are publication / application numbers or opaque source ids.
MAX_ID_LEN = 64
_ID_RE = re.compile(r"^[\w.\-/:]+$")
_HAN_RE = re.compile(r"[\u3400-\u9fff]")


class RecordError(ValueError):
    """A record that cannot be stored; `field` names the offending field for the user."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _check_id(value: str) -> str:
    value = str(value).strip()
    if not value:
        raise ValueError("is empty; every record needs an id (e.g. its publication number)")
    if len(value) > MAX_ID_LEN or not _ID_RE.match(value):
        raise ValueError(f"{value[:80]!r} is not a valid id (letters, digits and . - _ / : only, at most {MAX_ID_LEN} chars)")
    return value


def _split_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = re.split(r"[;；、,，|\n]+", value)
    return [str(v).strip() for v in value if str(v).strip()]


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    id: str

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: object) -> str:
        return _check_id("" if v is None else str(v))


class Patent(_Record):
    """A patent offered (or offerable) for transfer. `title` + `abstract` are what gets matched."""

    title: str = Field(min_length=1, max_length=500)
    abstract: str = Field(min_length=1)
    applicants: list[str] = Field(default_factory=list)
    applicant_type: ApplicantType = "unknown"
    ipc: list[str] = Field(default_factory=list)
    legal_status: str = ""
    patent_type: PatentType = "unknown"
    application_number: str = ""
    publication_number: str = ""
    application_date: date | None = None
    region: str = ""
    transferable: bool = True
    licence_terms: str = ""
    price_wan: float | None = Field(default=None, ge=0)  # asking price, 万元
    claims: str = ""
    keywords: list[str] = Field(default_factory=list)
    # Market and citation history from commercial exports; None = the export did not say (not zero).
    claim_count: int | None = Field(default=None, ge=0)
    citation_count: int | None = Field(default=None, ge=0)  # forward citations (被引用次数)
    transfer_count: int | None = Field(default=None, ge=0)
    licence_count: int | None = Field(default=None, ge=0)
    pledge_count: int | None = Field(default=None, ge=0)

    @field_validator("applicants", "ipc", "keywords", mode="before")
    @classmethod
    def _lists(cls, v: object) -> list[str]:
        return _split_list(v)

    def text(self) -> str:
        """The text that is embedded and BM25-indexed."""
        return f"{self.title}。{self.abstract}"


class Demand(_Record):
    """An enterprise technology demand (企业技术需求). `contact` is private to centre staff."""

    title: str = Field(default="", max_length=500)
    text: str = Field(min_length=1)
    enterprise: str = ""
    industry: str = ""
    region: str = ""
    budget_wan: float | None = Field(default=None, ge=0)
    contact: str = ""
    created_at: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))

    def full_text(self) -> str:
        return f"{self.title}。{self.text}" if self.title else self.text


def check_text(text: str, field: str, max_chars: int) -> str:
    """Refuse text that cannot be matched meaningfully; the message says what to fix."""
    text = (text or "").strip()
    if not text:
        raise RecordError(field, "is empty; write the technology need or abstract in Chinese")
    if len(text) > max_chars:
        raise RecordError(field, f"has {len(text):,} characters; the limit is {max_chars:,} — shorten it to the technical content")
    if "\x00" in text:
        raise RecordError(field, "contains NUL bytes; is this a binary file?")
    if not _HAN_RE.search(text):
        raise RecordError(field, "contains no Chinese characters; patents and demands are matched in Chinese")
    return text


def first_error(exc: ValidationError) -> RecordError:
    """Turn pydantic's error list into one RecordError naming the field."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err.get("loc", ())) or "record"
    return RecordError(field, err.get("msg", "invalid value"))
