"""Answers to whatever KYC template applies: a plausible applicant for each field type.

Compliance may publish its own templates (the "KYC constructor"), so the demo reads the
client's requirements instead of assuming the built-in ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from pipworks.kyc.v1 import kyc_service_pb2 as kyc_pb
from pipworks_devstack.demo.files import pdf_document, png_image

__all__ = ["DocumentUpload", "answers_for", "documents_for"]

KNOWN_ANSWERS = {
    "first_name": "Anna",
    "last_name": "Lindqvist",
    "date_of_birth": "1988-05-14",
    "nationality": "CY",
    "source_of_funds": "salary",
    "annual_income": "85000",
    "expected_annual_deposits": "12000",
    "company_name": "Lindqvist Analytics Ltd",
    "registration_number": "HE412345",
    "country_of_incorporation": "CY",
}


@dataclass(frozen=True)
class DocumentUpload:
    requirement: str
    metadata: kyc_pb.DocumentMetadata
    content: bytes


def _number(field: kyc_pb.FieldRequirement, wanted: str) -> str:
    try:
        value = Decimal(wanted)
        if field.min and value < Decimal(field.min):
            value = Decimal(field.min)
        if field.max and value > Decimal(field.max):
            value = Decimal(field.max)
    except InvalidOperation:
        return field.min or "1"
    return format(value, "f")


def answers_for(template: kyc_pb.RequirementTemplate, country: str) -> dict[str, str]:
    """A value for every field of ``template`` (optional ones too: they inform the risk)."""
    answers: dict[str, str] = {}
    for field in template.fields:
        known = KNOWN_ANSWERS.get(field.name)
        if field.type == kyc_pb.FIELD_TYPE_CHOICE:
            allowed = list(field.allowed_values)
            answers[field.name] = known if known in allowed else allowed[0]
        elif field.type == kyc_pb.FIELD_TYPE_COUNTRY:
            answers[field.name] = country
        elif field.type == kyc_pb.FIELD_TYPE_DATE:
            answers[field.name] = known or "1988-05-14"
        elif field.type == kyc_pb.FIELD_TYPE_NUMBER:
            answers[field.name] = _number(field, known or "50000")
        elif field.required or known:
            answers[field.name] = known or "Demo"
    return answers


def documents_for(template: kyc_pb.RequirementTemplate, today: date) -> list[DocumentUpload]:
    """One file per document requirement: a PNG scan for identity documents, a PDF for
    the rest, issued recently enough for any maximum age."""
    uploads = []
    for index, requirement in enumerate(template.documents, start=1):
        kind = requirement.accepted_kinds[0]
        issued = today - timedelta(days=min(10, max(requirement.max_age_days - 1, 0)))
        if requirement.identity:
            content = png_image()
            expires = (today + timedelta(days=5 * 365)).isoformat()
        else:
            content = pdf_document(f"Anna Lindqvist - {kind} - issued {issued.isoformat()}")
            expires = ""
        metadata = kyc_pb.DocumentMetadata(
            kind=kind,
            document_number=f"DEMO{index:02d}{today:%m%d}",
            issued_on=issued.isoformat(),
            expires_on=expires,
        )
        uploads.append(DocumentUpload(requirement.key, metadata, content))
    return uploads
