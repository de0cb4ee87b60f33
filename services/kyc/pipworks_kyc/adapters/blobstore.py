"""Where encrypted document files live: a directory for local use and development, or an
S3-compatible bucket in production. Both only ever see ciphertext."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any, Protocol

_KEY = re.compile(r"[a-z0-9][a-z0-9/_.-]{0,200}")


class BlobNotFound(Exception):
    pass


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...


def _check(key: str) -> str:
    if not _KEY.fullmatch(key) or ".." in key:
        raise ValueError("invalid blob key")
    return key


class FilesystemBlobStore:
    """One file per blob under ``root``; written to a temporary name, then renamed."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def path_of(self, key: str) -> Path:
        return self._root / _check(key)

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, self.path_of(key), data)

    @staticmethod
    def _put(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_suffix(".part")
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)

    async def get(self, key: str) -> bytes:
        path = self.path_of(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path_of(key).unlink, True)


class S3BlobStore:
    """A bucket of an S3-compatible store (AWS S3, MinIO, Ceph ...) through boto3."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix

    @classmethod
    def connect(
        cls,
        bucket: str,
        *,
        endpoint_url: str | None,
        region: str | None,
        access_key_id: str | None,
        secret_access_key: str | None,
        prefix: str = "",
    ) -> S3BlobStore:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
        )
        return cls(client, bucket, prefix)

    def _key(self, key: str) -> str:
        return self._prefix + _check(key)

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(
            self._client.put_object, Bucket=self._bucket, Key=self._key(key), Body=data
        )

    async def get(self, key: str) -> bytes:
        def read() -> bytes:
            try:
                reply = self._client.get_object(Bucket=self._bucket, Key=self._key(key))
            except self._client.exceptions.NoSuchKey:
                raise BlobNotFound(key) from None
            return reply["Body"].read()  # type: ignore[no-any-return]

        return await asyncio.to_thread(read)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._client.delete_object, Bucket=self._bucket, Key=self._key(key))
