"""Requirement templates (the "KYC constructor"): the fields and documents asked of a client
type in a country, and the levels they unlock. Templates are versioned data; an
application is always judged against the version it was started with."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from pipworks_platform.errors import Violations

DEFAULT_COUNTRY = ""
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_COUNTRY = re.compile(r"[A-Z]{2}")
MAX_FIELD_LENGTH = 500


class ClientType(StrEnum):
    INDIVIDUAL = "individual"
    CORPORATE = "corporate"


class FieldType(StrEnum):
    TEXT = "text"
    DATE = "date"
    COUNTRY = "country"
    CHOICE = "choice"
    NUMBER = "number"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: FieldType
    required: bool = False
    pattern: str = ""
    min: Decimal | None = None
    max: Decimal | None = None
    allowed_values: tuple[str, ...] = ()
    label: str = ""

    def check(self, value: str | None, violations: Violations, path: str) -> None:
        """Record why ``value`` does not satisfy this field, if it does not."""
        if value is None or value == "":
            violations.check(not self.required, path, "is required")
            return
        if len(value) > MAX_FIELD_LENGTH:
            violations.add(path, f"must be at most {MAX_FIELD_LENGTH} characters")
            return
        match self.type:
            case FieldType.TEXT:
                if self.pattern:
                    violations.check(
                        re.fullmatch(self.pattern, value), path, "does not match the format"
                    )
            case FieldType.DATE:
                violations.check(parse_date(value) is not None, path, "must be a date YYYY-MM-DD")
            case FieldType.COUNTRY:
                violations.check(
                    _COUNTRY.fullmatch(value), path, "must be an ISO 3166-1 alpha-2 code"
                )
            case FieldType.CHOICE:
                violations.check(
                    value in self.allowed_values,
                    path,
                    f"must be one of {', '.join(self.allowed_values)}",
                )
            case FieldType.NUMBER:
                number = parse_decimal(value)
                if number is None:
                    violations.add(path, "must be a decimal number")
                elif self.min is not None and number < self.min:
                    violations.add(path, f"must be at least {self.min}")
                elif self.max is not None and number > self.max:
                    violations.add(path, f"must be at most {self.max}")


@dataclass(frozen=True)
class DocumentSpec:
    key: str
    accepted_kinds: tuple[str, ...]
    max_age_days: int = 0
    identity: bool = False
    level: int = 1


@dataclass(frozen=True)
class LevelSpec:
    level: int
    description: str = ""
    deposit_limit: Decimal | None = None


@dataclass(frozen=True)
class Template:
    template_id: str
    version: int
    client_type: ClientType
    country_code: str
    fields: tuple[FieldSpec, ...]
    documents: tuple[DocumentSpec, ...]
    levels: tuple[LevelSpec, ...] = field(default=())

    def field(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)

    def validate_answers(self, answers: Mapping[str, str], *, complete: bool) -> None:
        """Raise InvalidArgument listing every answer that breaks the template.

        A draft (``complete=False``) may leave required fields empty; a submission may not.
        """
        violations = Violations()
        for name in answers:
            violations.check(self.field(name) is not None, f"fields.{name}", "is not asked")
        for spec in self.fields:
            value = answers.get(spec.name)
            if not complete and not value:
                continue
            spec.check(value, violations, f"fields.{spec.name}")
        violations.raise_if_any(reason="FIELD_INVALID")

    def document_spec_for(self, kind: str) -> DocumentSpec | None:
        return next((d for d in self.documents if kind in d.accepted_kinds), None)

    def reachable_level(self, satisfied: set[str]) -> int:
        """The highest level whose document requirements are all in ``satisfied`` (keys)."""
        reached = 0
        for level in sorted({lv.level for lv in self.levels} or {1}):
            needed = {d.key for d in self.documents if d.level <= level}
            if needed <= satisfied:
                reached = level
            else:
                break
        return reached


def validate_template(template: Template) -> None:
    """Raise InvalidArgument when a template definition is malformed."""
    v = Violations()
    v.check(_NAME.fullmatch(template.template_id), "template.template_id", "must be snake_case")
    v.check(
        template.country_code == DEFAULT_COUNTRY or _COUNTRY.fullmatch(template.country_code),
        "template.country_code",
        "must be empty (default) or an ISO 3166-1 alpha-2 code",
    )
    names: set[str] = set()
    for i, spec in enumerate(template.fields):
        path = f"template.fields[{i}]"
        v.check(_NAME.fullmatch(spec.name), f"{path}.name", "must be snake_case")
        v.check(spec.name not in names, f"{path}.name", "is repeated")
        names.add(spec.name)
        if spec.pattern:
            try:
                re.compile(spec.pattern)
            except re.error:
                v.add(f"{path}.pattern", "is not a valid regular expression")
        if spec.type is FieldType.CHOICE:
            v.check(spec.allowed_values, f"{path}.allowed_values", "a choice needs values")
        if spec.min is not None and spec.max is not None:
            v.check(spec.min <= spec.max, f"{path}.min", "must not exceed max")
    keys: set[str] = set()
    levels = {lv.level for lv in template.levels}
    v.check(levels, "template.levels", "at least one level is required")
    v.check(all(lv >= 1 for lv in levels), "template.levels", "levels start at 1")
    for i, doc in enumerate(template.documents):
        path = f"template.documents[{i}]"
        v.check(_NAME.fullmatch(doc.key), f"{path}.key", "must be snake_case")
        v.check(doc.key not in keys, f"{path}.key", "is repeated")
        keys.add(doc.key)
        v.check(doc.accepted_kinds, f"{path}.accepted_kinds", "at least one kind is required")
        v.check(
            all(_NAME.fullmatch(k) for k in doc.accepted_kinds),
            f"{path}.accepted_kinds",
            "kinds must be snake_case",
        )
        v.check(doc.max_age_days >= 0, f"{path}.max_age_days", "must not be negative")
        v.check(doc.level in levels, f"{path}.level", "must be one of the template's levels")
    v.raise_if_any(reason="TEMPLATE_INVALID")


def parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def parse_decimal(text: str) -> Decimal | None:
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


# -- serialisation (templates are stored as JSON documents) ------------------------------


def to_json(template: Template) -> dict[str, object]:
    return {
        "fields": [
            {
                "name": f.name,
                "type": f.type.value,
                "required": f.required,
                "pattern": f.pattern,
                "min": None if f.min is None else str(f.min),
                "max": None if f.max is None else str(f.max),
                "allowed_values": list(f.allowed_values),
                "label": f.label,
            }
            for f in template.fields
        ],
        "documents": [
            {
                "key": d.key,
                "accepted_kinds": list(d.accepted_kinds),
                "max_age_days": d.max_age_days,
                "identity": d.identity,
                "level": d.level,
            }
            for d in template.documents
        ],
        "levels": [
            {
                "level": lv.level,
                "description": lv.description,
                "deposit_limit": None if lv.deposit_limit is None else str(lv.deposit_limit),
            }
            for lv in template.levels
        ],
    }


def from_json(
    template_id: str,
    version: int,
    client_type: str,
    country_code: str,
    body: Mapping[str, Sequence[Mapping[str, object]]],
) -> Template:
    def dec(value: object) -> Decimal | None:
        return None if value is None else Decimal(str(value))

    return Template(
        template_id=template_id,
        version=version,
        client_type=ClientType(client_type),
        country_code=country_code,
        fields=tuple(
            FieldSpec(
                name=str(f["name"]),
                type=FieldType(str(f["type"])),
                required=bool(f.get("required")),
                pattern=str(f.get("pattern") or ""),
                min=dec(f.get("min")),
                max=dec(f.get("max")),
                allowed_values=tuple(str(x) for x in f.get("allowed_values") or ()),  # type: ignore[attr-defined]
                label=str(f.get("label") or ""),
            )
            for f in body.get("fields", ())
        ),
        documents=tuple(
            DocumentSpec(
                key=str(d["key"]),
                accepted_kinds=tuple(str(x) for x in d["accepted_kinds"]),  # type: ignore[attr-defined]
                max_age_days=int(d.get("max_age_days") or 0),  # type: ignore[call-overload]
                identity=bool(d.get("identity")),
                level=int(d.get("level") or 1),  # type: ignore[call-overload]
            )
            for d in body.get("documents", ())
        ),
        levels=tuple(
            LevelSpec(
                level=int(lv["level"]),  # type: ignore[call-overload]
                description=str(lv.get("description") or ""),
                deposit_limit=dec(lv.get("deposit_limit")),
            )
            for lv in body.get("levels", ())
        ),
    )


def default_template(client_type: ClientType) -> Template:
    """The built-in template used until compliance publishes one (version 0)."""
    if client_type is ClientType.CORPORATE:
        fields = (
            FieldSpec("company_name", FieldType.TEXT, required=True),
            FieldSpec("registration_number", FieldType.TEXT, required=True),
            FieldSpec("country_of_incorporation", FieldType.COUNTRY, required=True),
            FieldSpec(
                "source_of_funds",
                FieldType.CHOICE,
                required=True,
                allowed_values=SOURCES_OF_FUNDS,
            ),
            FieldSpec("expected_annual_deposits", FieldType.NUMBER, min=Decimal(0)),
            FieldSpec("annual_income", FieldType.NUMBER, min=Decimal(0)),
        )
        documents = (
            DocumentSpec("corporate_documents", ("certificate_of_incorporation",), level=1),
            DocumentSpec("director_identity", ("passport", "national_id"), identity=True),
            DocumentSpec("proof_of_address", ("proof_of_address",), max_age_days=90, level=2),
        )
    else:
        fields = (
            FieldSpec("first_name", FieldType.TEXT, required=True),
            FieldSpec("last_name", FieldType.TEXT, required=True),
            FieldSpec("date_of_birth", FieldType.DATE, required=True),
            FieldSpec("nationality", FieldType.COUNTRY, required=True),
            FieldSpec(
                "source_of_funds",
                FieldType.CHOICE,
                required=True,
                allowed_values=SOURCES_OF_FUNDS,
            ),
            FieldSpec("annual_income", FieldType.NUMBER, min=Decimal(0)),
            FieldSpec("expected_annual_deposits", FieldType.NUMBER, min=Decimal(0)),
        )
        documents = (
            DocumentSpec(
                "identity", ("passport", "national_id", "driving_licence"), identity=True, level=1
            ),
            DocumentSpec("proof_of_address", ("proof_of_address",), max_age_days=90, level=2),
        )
    return Template(
        template_id=f"{client_type.value}_default",
        version=0,
        client_type=client_type,
        country_code=DEFAULT_COUNTRY,
        fields=fields,
        documents=documents,
        levels=(
            LevelSpec(1, "deposits up to the level-1 limit", Decimal(2000)),
            LevelSpec(2, "full trading"),
        ),
    )


SOURCES_OF_FUNDS = ("salary", "business", "savings", "investments", "inheritance", "other")
