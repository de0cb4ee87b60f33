"""gRPC surface of the kyc service: proto in, use case, proto out.

Who may call what is decided before any of this runs, by the platform's AuthInterceptor
from each method's ``(pipworks.common.v1.policy)``; here the caller is only *read*:
client calls act on the caller's own profile (the token subject), reviewer calls record
the caller as the actor.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import grpc

from pipworks.common.v1 import service_info_pb2
from pipworks.kyc.v1 import kyc_service_pb2 as pb
from pipworks.kyc.v1 import kyc_service_pb2_grpc as pb_grpc
from pipworks_kyc import validation as conv
from pipworks_kyc.domain.documents import SNIFF_BYTES, sniff_content_type
from pipworks_kyc.handlers import Deps, applications, documents, reports, screening, templates
from pipworks_kyc.handlers.documents import UploadMetadata
from pipworks_platform.auth import require_principal
from pipworks_platform.errors import InvalidArgument

Context = grpc.aio.ServicerContext
DOWNLOAD_CHUNK = 64 * 1024
HIT_RESOLUTIONS = {
    pb.HIT_STATUS_CLEARED: screening.CLEARED,
    pb.HIT_STATUS_CONFIRMED: screening.CONFIRMED,
}


def _actor() -> str:
    return require_principal().subject


class KycApi(pb_grpc.KycServiceServicer):
    def __init__(self, deps: Deps, describe: Callable[[], service_info_pb2.ServiceInfo]) -> None:
        self._deps = deps
        self._describe = describe

    async def GetServiceInfo(
        self, request: pb.GetServiceInfoRequest, context: Context
    ) -> pb.GetServiceInfoResponse:
        return pb.GetServiceInfoResponse(info=self._describe())

    # -- client ---------------------------------------------------------------------------

    async def GetMyRequirements(
        self, request: pb.GetMyRequirementsRequest, context: Context
    ) -> pb.GetMyRequirementsResponse:
        user = conv.caller_id(_actor())
        if request.client_type not in conv.CLIENT_TYPES:
            raise InvalidArgument.for_field("client_type", "is not a known client type")
        template = await applications.my_requirements(
            self._deps, user, conv.CLIENT_TYPES[request.client_type]
        )
        return pb.GetMyRequirementsResponse(template=conv.template_to_proto(template))

    async def SaveDraft(
        self, request: pb.SaveDraftRequest, context: Context
    ) -> pb.SaveDraftResponse:
        user = conv.caller_id(_actor())
        if request.client_type not in conv.CLIENT_TYPES:
            raise InvalidArgument.for_field("client_type", "is not a known client type")
        app = await applications.save_draft(
            self._deps,
            user,
            conv.CLIENT_TYPES[request.client_type],
            conv.answers(dict(request.fields)),
            request.currency,
        )
        return pb.SaveDraftResponse(application=conv.client_view(app))

    async def UploadDocument(
        self, request_iterator: AsyncIterator[pb.UploadDocumentRequest], context: Context
    ) -> pb.UploadDocumentResponse:
        user = conv.caller_id(_actor())
        limit = self._deps.config.max_document_bytes
        meta: UploadMetadata | None = None
        buffer = bytearray()
        try:
            async for message in request_iterator:
                part = message.WhichOneof("part")
                if meta is None:
                    if part != "metadata":
                        raise InvalidArgument.for_field(
                            "metadata", "the first message must carry the metadata"
                        )
                    m = message.metadata
                    number = m.document_number.strip()
                    meta = UploadMetadata(m.kind, number, m.issued_on, m.expires_on)
                    continue
                if part != "chunk":
                    raise InvalidArgument.for_field(
                        "metadata", "only the first message carries metadata"
                    )
                buffer.extend(message.chunk)
                if len(buffer) > limit:
                    raise InvalidArgument.for_field(
                        "chunk", f"the file exceeds {limit} bytes", reason="DOCUMENT_TOO_LARGE"
                    )
                sniffable = len(buffer) >= SNIFF_BYTES > len(buffer) - len(message.chunk)
                if sniffable and sniff_content_type(bytes(buffer[:SNIFF_BYTES])) is None:
                    raise InvalidArgument.for_field(
                        "chunk",
                        "must be a JPEG, PNG or PDF file",
                        reason="DOCUMENT_TYPE_NOT_ALLOWED",
                    )
        except InvalidArgument:
            await _read_out(request_iterator, limit)
            raise
        if meta is None:
            raise InvalidArgument.for_field("metadata", "is required")
        doc = await documents.upload(self._deps, user, meta, bytes(buffer))
        return pb.UploadDocumentResponse(
            document=conv.document_to_proto(doc, self._deps.clock(), with_number=True)
        )

    async def ListMyDocuments(
        self, request: pb.ListMyDocumentsRequest, context: Context
    ) -> pb.ListMyDocumentsResponse:
        user = conv.caller_id(_actor())
        size = conv.page_size(request.page_size)
        query = f"docs:{user}"
        rows = await documents.list_mine(
            self._deps, user, conv.cursor(request.page_token, query), size + 1
        )
        page, more = rows[:size], len(rows) > size
        return pb.ListMyDocumentsResponse(
            documents=[conv.document_to_proto(d, at, with_number=True) for d, at in page],
            next_page_token=conv.next_token(page[-1][1], page[-1][0].id, query) if more else "",
        )

    async def SubmitApplication(
        self, request: pb.SubmitApplicationRequest, context: Context
    ) -> pb.SubmitApplicationResponse:
        app = await applications.submit(self._deps, conv.caller_id(_actor()))
        return pb.SubmitApplicationResponse(application=conv.client_view(app))

    async def GetMyStatus(
        self, request: pb.GetMyStatusRequest, context: Context
    ) -> pb.GetMyStatusResponse:
        status = await applications.my_status(self._deps, conv.caller_id(_actor()))
        response = pb.GetMyStatusResponse(level=status.level)
        if status.application is not None:
            response.application.CopyFrom(conv.client_view(status.application))
        return response

    async def DownloadDocument(
        self, request: pb.DownloadDocumentRequest, context: Context
    ) -> AsyncIterator[pb.DownloadDocumentResponse]:
        principal = require_principal()
        document_id = conv.uuid_field(request.document_id, "document_id")
        doc, uploaded_at, data = await documents.download(
            self._deps, principal.subject, principal.roles, document_id
        )
        yield pb.DownloadDocumentResponse(
            document=conv.document_to_proto(doc, uploaded_at, with_number=True),
            chunk=data[:DOWNLOAD_CHUNK],
        )
        for start in range(DOWNLOAD_CHUNK, len(data), DOWNLOAD_CHUNK):
            yield pb.DownloadDocumentResponse(chunk=data[start : start + DOWNLOAD_CHUNK])

    # -- reviewer -------------------------------------------------------------------------

    async def ListApplications(
        self, request: pb.ListApplicationsRequest, context: Context
    ) -> pb.ListApplicationsResponse:
        states = []
        for i, state in enumerate(request.states):
            if state not in conv.STATES:
                raise InvalidArgument.for_field(f"states[{i}]", "is not a known state")
            states.append(conv.STATES[state])
        country = (
            conv.country(request.country_code, "country_code") if request.country_code else None
        )
        rating = conv.rating(request.risk_rating, "risk_rating") if request.risk_rating else None
        size = conv.page_size(request.page_size)
        query = conv.page_tokens.fingerprint(sorted(states), request.reviewer_id, country, rating)
        apps = await applications.queue(
            self._deps,
            states=states,
            reviewer=request.reviewer_id or None,
            country=country,
            rating=rating,
            after=conv.cursor(request.page_token, query),
            limit=size + 1,
        )
        page, more = apps[:size], len(apps) > size
        token = ""
        if more:
            last = page[-1]
            token = conv.next_token(last.submitted_at or last.created_at, last.id, query)
        return pb.ListApplicationsResponse(
            applications=[conv.application_to_proto(a, with_answers=False) for a in page],
            next_page_token=token,
        )

    async def GetApplication(
        self, request: pb.GetApplicationRequest, context: Context
    ) -> pb.GetApplicationResponse:
        app_id = conv.uuid_field(request.application_id, "application_id")
        found = await applications.review(self._deps, app_id)
        return pb.GetApplicationResponse(
            application=conv.application_to_proto(found.application),
            documents=[conv.document_to_proto(d, None, with_number=True) for d in found.documents],
            hits=[conv.hit_to_proto(h) for h in found.hits],
        )

    async def ClaimApplication(
        self, request: pb.ClaimApplicationRequest, context: Context
    ) -> pb.ClaimApplicationResponse:
        app_id = conv.uuid_field(request.application_id, "application_id")
        app = await applications.claim(self._deps, _actor(), app_id)
        return pb.ClaimApplicationResponse(application=conv.application_to_proto(app))

    async def ApproveApplication(
        self, request: pb.ApproveApplicationRequest, context: Context
    ) -> pb.ApproveApplicationResponse:
        app_id = conv.uuid_field(request.application_id, "application_id")
        app, done = await applications.approve(self._deps, _actor(), app_id, request.reason.strip())
        return pb.ApproveApplicationResponse(
            application=conv.application_to_proto(app), awaiting_second_approval=not done
        )

    async def RejectApplication(
        self, request: pb.RejectApplicationRequest, context: Context
    ) -> pb.RejectApplicationResponse:
        app_id = conv.uuid_field(request.application_id, "application_id")
        app = await applications.reject(self._deps, _actor(), app_id, request.reason)
        return pb.RejectApplicationResponse(application=conv.application_to_proto(app))

    async def RequestInformation(
        self, request: pb.RequestInformationRequest, context: Context
    ) -> pb.RequestInformationResponse:
        app_id = conv.uuid_field(request.application_id, "application_id")
        app = await applications.request_information(self._deps, _actor(), app_id, request.reason)
        return pb.RequestInformationResponse(application=conv.application_to_proto(app))

    async def ResolveScreeningHit(
        self, request: pb.ResolveScreeningHitRequest, context: Context
    ) -> pb.ResolveScreeningHitResponse:
        hit_id = conv.uuid_field(request.hit_id, "hit_id")
        if request.resolution not in HIT_RESOLUTIONS:
            raise InvalidArgument.for_field("resolution", "must be CLEARED or CONFIRMED")
        hit = await screening.resolve_hit(
            self._deps, _actor(), hit_id, HIT_RESOLUTIONS[request.resolution], request.reason
        )
        return pb.ResolveScreeningHitResponse(hit=conv.hit_to_proto(hit))

    async def OverrideRisk(
        self, request: pb.OverrideRiskRequest, context: Context
    ) -> pb.OverrideRiskResponse:
        app_id = conv.uuid_field(request.application_id, "application_id")
        rating = conv.rating(request.rating, "rating")
        app = await applications.override_risk(self._deps, _actor(), app_id, rating, request.reason)
        return pb.OverrideRiskResponse(application=conv.application_to_proto(app))

    async def GetComplianceReport(
        self, request: pb.GetComplianceReportRequest, context: Context
    ) -> pb.GetComplianceReportResponse:
        pending_hours, expiring_days = conv.report_horizons(
            request.pending_older_than_hours, request.expiring_within_days
        )
        report = await reports.compliance_report(self._deps, pending_hours, expiring_days)
        return pb.GetComplianceReportResponse(
            by_state=[
                pb.StateCount(
                    state=conv.STATE_TO_PROTO[conv.STATES[s]],
                    count=report.by_state.get(conv.STATES[s].value, 0),
                )
                for s in sorted(conv.STATES)
            ],
            pending_older=report.pending_older,
            expiring_documents=report.expiring_documents,
            open_hits=report.open_hits,
        )

    # -- admin ----------------------------------------------------------------------------

    async def PutTemplate(
        self, request: pb.PutTemplateRequest, context: Context
    ) -> pb.PutTemplateResponse:
        template = conv.template_from_proto(request.template)
        stored = await templates.put_template(self._deps, _actor(), template)
        return pb.PutTemplateResponse(template=conv.template_to_proto(stored))

    async def ListTemplates(
        self, request: pb.ListTemplatesRequest, context: Context
    ) -> pb.ListTemplatesResponse:
        found = await templates.list_templates(self._deps)
        return pb.ListTemplatesResponse(templates=[conv.template_to_proto(t) for t in found])

    async def SetCountryRisk(
        self, request: pb.SetCountryRiskRequest, context: Context
    ) -> pb.SetCountryRiskResponse:
        country = conv.country(request.country_code, "country_code")
        await templates.set_country_risk(
            self._deps, _actor(), country, conv.rating(request.rating, "rating")
        )
        return pb.SetCountryRiskResponse()

    async def ReloadLists(
        self, request: pb.ReloadListsRequest, context: Context
    ) -> pb.ReloadListsResponse:
        counts, rescreened, new_hits = await screening.reload_lists(self._deps, _actor())
        return pb.ReloadListsResponse(entries=counts, rescreened=rescreened, new_hits=new_hits)


async def _read_out(requests: AsyncIterator[pb.UploadDocumentRequest], budget: int) -> None:
    """Read, up to ``budget`` bytes, what the caller still sends of a refused upload.

    Answering while the caller is still writing makes a grpc.aio caller (the gateway is
    one) report its failed write as INTERNAL instead of this status (grpc/grpc#36066);
    once the caller has sent everything, the status arrives intact. Past the budget the
    rest of the stream is abandoned.
    """
    read = 0
    with contextlib.suppress(InvalidArgument):  # a malformed tail changes no answer
        async for message in requests:
            read += message.ByteSize()
            if read > budget:
                return
