"""QR codes of provisioning URIs, as PNG images (segno)."""

from __future__ import annotations

import io

import segno

PNG_MEDIA_TYPE = "image/png"


def qr_png(data: str, *, scale: int = 5) -> bytes:
    """A PNG QR code with error correction M, large enough to scan from a screen."""
    buffer = io.BytesIO()
    segno.make_qr(data, error="m").save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()
