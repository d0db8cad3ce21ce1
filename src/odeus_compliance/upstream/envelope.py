"""The JSON envelope of a successful export call, checked against the contract.

A CSV route answers ``{"success": true, "data": {"filePath", "downloadUrl", "dataType", "recordCount",
"dateRange": {"from", "to"}}}``; the JSON route has ``data.rows`` instead of the file fields. ``dateRange``
may use ``Z`` or an offset such as ``+01:00``; ``recordCount`` may arrive as ``12``, ``12.0`` or ``"12"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from odeus_compliance.upstream.cells import to_int
from odeus_compliance.upstream.columns import ExportType
from odeus_compliance.upstream.errors import UpstreamProtocolError
from odeus_compliance.upstream.request import ExportFormat, ExportRequest
from odeus_compliance.upstream.result import ExportInfo


class _DateRange(msgspec.Struct):
    from_: str = msgspec.field(name="from")
    to: str = ""


class _Data(msgspec.Struct):
    dataType: str  # noqa: N815 - the contract's spelling
    recordCount: Any  # noqa: N815
    dateRange: _DateRange  # noqa: N815
    filePath: str | None = None  # noqa: N815
    downloadUrl: str | None = None  # noqa: N815
    rows: list[Any] | None = None


class _Envelope(msgspec.Struct):
    success: bool
    data: _Data


@dataclass(frozen=True, slots=True)
class Envelope:
    """A checked envelope. ``download_url`` is a credential: never log or display it."""

    info: ExportInfo
    download_url: str | None
    rows: list[Any] | None

    def __repr__(self) -> str:
        return f"Envelope(info={self.info!r}, download_url=<redacted>, rows={self.rows is not None})"


def parse_envelope(body: bytes, request: ExportRequest) -> Envelope:
    """Check a 2xx body against the contract; raise :class:`UpstreamProtocolError` with what is wrong."""
    what = f"the {request.export_type.value} export answer"
    try:
        envelope = msgspec.json.decode(body, type=_Envelope)
    except msgspec.ValidationError as error:
        msg = f"{what} does not match the contract ({_path_of(error)})"
        raise UpstreamProtocolError(msg) from None
    except msgspec.DecodeError:
        msg = f"{what} is not JSON"
        raise UpstreamProtocolError(msg) from None
    data = envelope.data
    if not envelope.success:
        msg = f"{what} says success=false"
        raise UpstreamProtocolError(msg)
    if data.dataType != request.export_type.data_type:
        known = {t.data_type for t in ExportType}
        got = repr(data.dataType) if data.dataType in known else "an unknown one"
        msg = f"{what} has dataType {got}, expected {request.export_type.data_type!r}"
        raise UpstreamProtocolError(msg)
    try:
        record_count = to_int(data.recordCount)
    except ValueError:
        record_count = -1
    if record_count < 0:
        msg = f"{what} has no usable recordCount"
        raise UpstreamProtocolError(msg)
    info = ExportInfo(
        export_type=request.export_type,
        data_type=data.dataType,
        record_count=record_count,
        date_from=_instant(data.dateRange.from_, what),
        date_to=_instant(data.dateRange.to, what),
        file_path=data.filePath,
    )
    if request.export_format is ExportFormat.JSON:
        if data.rows is None:
            msg = f"{what} (JSON route) has no data.rows"
            raise UpstreamProtocolError(msg)
        return Envelope(info, None, data.rows)
    if not data.downloadUrl:
        msg = f"{what} has no downloadUrl"
        raise UpstreamProtocolError(msg)
    return Envelope(info, data.downloadUrl, None)


def _instant(text: str, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        msg = f"{what} has a dateRange end that is not an ISO 8601 instant with an offset"
        raise UpstreamProtocolError(msg)
    return parsed


def _path_of(error: msgspec.ValidationError) -> str:
    # msgspec names the JSON path (e.g. "at `$.data.recordCount`") after the reason; keep only the path.
    text = str(error)
    return text[text.rfind("at `") :] if "at `" in text else "unexpected shape"
