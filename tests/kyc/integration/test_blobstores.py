"""Both blob stores against real backends: a directory, and an S3 API served by moto."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from pipworks_kyc.adapters.blobstore import (
    BlobNotFound,
    BlobStore,
    FilesystemBlobStore,
    S3BlobStore,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(params=["filesystem", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "filesystem":
        return FilesystemBlobStore(tmp_path / "blobs")
    endpoint = request.getfixturevalue("s3_endpoint")
    credentials = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **credentials).create_bucket(
        Bucket="kyc-docs"
    )
    return S3BlobStore.connect(
        "kyc-docs",
        endpoint_url=endpoint,
        region="us-east-1",
        access_key_id="test",
        secret_access_key="test",
        prefix="tenant-a/",
    )


async def test_put_get_delete(store: BlobStore) -> None:
    key = "documents/u1/d1"
    await store.put(key, b"sealed bytes")
    assert await store.get(key) == b"sealed bytes"
    await store.put(key, b"replaced")
    assert await store.get(key) == b"replaced"
    await store.delete(key)
    with pytest.raises(BlobNotFound):
        await store.get(key)
    with pytest.raises(ValueError, match="invalid blob key"):
        await store.put("../escape", b"x")
