"""KYC applications and the review state machine.

draft → submitted → in_review → approved / rejected / information_requested →
(client edits) → submitted … A high-risk application needs two approvals by two
different reviewers; nobody may approve their own application; open screening hits
block approval.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from pipworks_kyc.domain.risk import Assessment, Rating
from pipworks_kyc.domain.templates import ClientType
from pipworks_platform.errors import FailedPrecondition, PermissionDenied


class State(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    INFORMATION_REQUESTED = "information_requested"


EDITABLE = frozenset({State.DRAFT, State.INFORMATION_REQUESTED})
OPEN = frozenset({State.DRAFT, State.SUBMITTED, State.IN_REVIEW, State.INFORMATION_REQUESTED})
PENDING = frozenset({State.SUBMITTED, State.IN_REVIEW})


@dataclass(frozen=True)
class Application:
    id: uuid.UUID
    user_id: uuid.UUID
    template_id: str
    template_version: int
    client_type: ClientType
    state: State
    answers: dict[str, str]
    country_code: str
    currency: str
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None = None
    submissions: int = 0
    reviewer_id: str | None = None
    first_approver_id: str | None = None
    reason: str = ""
    level: int = 0
    risk: Assessment | None = None
    extra: dict[str, str] = field(default_factory=dict)

    # -- client -------------------------------------------------------------------------

    def edited(self, answers: dict[str, str], currency: str, now: datetime) -> Application:
        if self.state not in EDITABLE:
            raise FailedPrecondition(
                f"an application in state {self.state} cannot be edited",
                reason="APPLICATION_NOT_EDITABLE",
            )
        return replace(self, answers=answers, currency=currency, updated_at=now)

    def submitted(self, now: datetime) -> Application:
        if self.state not in EDITABLE:
            raise FailedPrecondition(
                f"an application in state {self.state} cannot be submitted",
                reason="APPLICATION_NOT_EDITABLE",
            )
        return replace(
            self,
            state=State.SUBMITTED,
            submitted_at=now,
            submissions=self.submissions + 1,
            reviewer_id=None,
            first_approver_id=None,
            updated_at=now,
        )

    @property
    def is_resubmission(self) -> bool:
        return self.submissions > 1

    # -- reviewer -----------------------------------------------------------------------

    def _check_reviewer(self, reviewer: str) -> None:
        if reviewer == str(self.user_id):
            raise PermissionDenied(
                "a reviewer cannot review their own application", reason="OWN_APPLICATION"
            )

    def claimed(self, reviewer: str, now: datetime) -> Application:
        self._check_reviewer(reviewer)
        if self.state is State.IN_REVIEW and self.reviewer_id == reviewer:
            return self
        if self.state is not State.SUBMITTED:
            raise FailedPrecondition(
                f"an application in state {self.state} cannot be claimed",
                reason="APPLICATION_NOT_SUBMITTED",
            )
        return replace(self, state=State.IN_REVIEW, reviewer_id=reviewer, updated_at=now)

    def _check_decidable(self, reviewer: str) -> None:
        self._check_reviewer(reviewer)
        if self.state is not State.IN_REVIEW:
            raise FailedPrecondition(
                f"an application in state {self.state} must be claimed first",
                reason="APPLICATION_NOT_IN_REVIEW",
            )

    def approved(
        self, reviewer: str, level: int, open_hits: int, confirmed_sanctions: int, now: datetime
    ) -> tuple[Application, bool]:
        """(the application, True when it is now approved; False when a second approval is due)."""
        self._check_decidable(reviewer)
        if open_hits:
            raise FailedPrecondition(
                f"{open_hits} screening hit(s) must be cleared or confirmed first",
                reason="SCREENING_HIT_OPEN",
            )
        if confirmed_sanctions:
            raise FailedPrecondition(
                "a confirmed sanctions match cannot be approved", reason="SANCTIONS_CONFIRMED"
            )
        if level < 1:
            raise FailedPrecondition(
                "the documents required for level 1 are missing or expired",
                reason="DOCUMENTS_MISSING",
            )
        if self.risk is None:
            raise FailedPrecondition("the application has no risk rating", reason="NOT_RATED")
        if self.risk.rating is Rating.HIGH:
            if self.first_approver_id is None:
                return replace(self, first_approver_id=reviewer, updated_at=now), False
            if self.first_approver_id == reviewer:
                raise FailedPrecondition(
                    "a high-risk application needs a second, different approver",
                    reason="SECOND_APPROVER_REQUIRED",
                )
        return replace(self, state=State.APPROVED, level=level, updated_at=now), True

    def rejected(self, reviewer: str, reason: str, now: datetime) -> Application:
        self._check_decidable(reviewer)
        return replace(self, state=State.REJECTED, reason=reason, updated_at=now)

    def information_requested(self, reviewer: str, reason: str, now: datetime) -> Application:
        self._check_decidable(reviewer)
        return replace(
            self,
            state=State.INFORMATION_REQUESTED,
            reason=reason,
            first_approver_id=None,
            updated_at=now,
        )

    def rated(self, assessment: Assessment, now: datetime) -> Application:
        return replace(self, risk=assessment, updated_at=now)

    def risk_overridden(
        self, reviewer: str, rating: Rating, reason: str, now: datetime
    ) -> Application:
        self._check_reviewer(reviewer)
        if self.state not in PENDING:
            raise FailedPrecondition(
                f"the risk of an application in state {self.state} cannot be changed",
                reason="APPLICATION_NOT_PENDING",
            )
        if self.risk is None:
            raise FailedPrecondition("the application has no risk rating", reason="NOT_RATED")
        return replace(
            self,
            risk=self.risk.with_override(rating, reason),
            first_approver_id=None,
            updated_at=now,
        )


def new_application(
    user_id: uuid.UUID,
    template_id: str,
    template_version: int,
    client_type: ClientType,
    country_code: str,
    now: datetime,
) -> Application:
    return Application(
        id=uuid.uuid4(),
        user_id=user_id,
        template_id=template_id,
        template_version=template_version,
        client_type=client_type,
        state=State.DRAFT,
        answers={},
        country_code=country_code,
        currency="",
        created_at=now,
        updated_at=now,
    )
