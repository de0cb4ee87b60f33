"""Documents on disk are ciphertext bound to their document; without the key nothing opens."""

from __future__ import annotations

import base64
import os
import uuid

import pytest

from pipworks.kyc.v1 import kyc_service_pb2 as pb
from pipworks_kyc.handlers.documents import blob_context
from pipworks_platform.crypto import DecryptionError, FieldCipher, Keyring
from tests.kyc.support import ENCRYPTION_KEY, ENCRYPTION_KEY_ID, PDF, Kyc


async def test_files_and_metadata_are_encrypted_at_rest(kyc: Kyc) -> None:
    user = await kyc.register()
    secret_number = "XK99887766"
    doc = await kyc.upload(user, PDF, kind="passport", number=secret_number)
    files = [p for p in kyc.blob_dir.rglob("*") if p.is_file()]
    assert len(files) == 1
    on_disk = files[0].read_bytes()
    assert PDF not in on_disk
    assert b"%PDF" not in on_disk
    assert b"Baker Street" not in on_disk
    assert len(on_disk) >= len(PDF) + 16  # nonce and tag

    # With the service's key and the right document id it opens ...
    right = FieldCipher(
        Keyring({ENCRYPTION_KEY_ID: base64.b64decode(ENCRYPTION_KEY)}, ENCRYPTION_KEY_ID)
    )
    assert right.decrypt(on_disk, context=blob_context(uuid.UUID(doc.document_id))) == PDF
    # ... a different key under the same id does not, nor the right key for another document.
    wrong = FieldCipher(Keyring({ENCRYPTION_KEY_ID: os.urandom(32)}, ENCRYPTION_KEY_ID))
    with pytest.raises(DecryptionError):
        wrong.decrypt(on_disk, context=blob_context(uuid.UUID(doc.document_id)))
    with pytest.raises(DecryptionError):
        right.decrypt(on_disk, context=blob_context(uuid.uuid4()))

    row = (await kyc.sql("SELECT * FROM documents"))[0]
    assert secret_number.encode() not in bytes(row["number_encrypted"])
    assert b"2031" not in bytes(row["expires_on_encrypted"])

    # The draft's answers are sealed too.
    await kyc.stub.SaveDraft(
        pb.SaveDraftRequest(fields={"first_name": "Zebediah"}), metadata=kyc.client(user)
    )
    sealed = await kyc.scalar("SELECT answers_encrypted FROM applications")
    assert b"Zebediah" not in bytes(sealed)
