"""Answering one export request: validate, apply the history and row limits, render, store, sign.

HTTP concerns (auth, ``Origin``, rate limit, status codes) live in ``api.py``; this module is the Odeus
behaviour behind them, callable without a server.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from odeus_compliance.upstream.columns import ExportType
from odeus_compliance.upstream.request import ExportFormat
from odeus_compliance.upstream.simulator.config import SimulatorConfig
from odeus_compliance.upstream.simulator.errors import OdeusError
from odeus_compliance.upstream.simulator.faults import FaultInjector
from odeus_compliance.upstream.simulator.period import (
    INVALID_RANGE,
    ExportQuery,
    history_start,
    parse_body,
    parse_query,
    utc_stamp,
)
from odeus_compliance.upstream.simulator.ratelimit import SlidingWindowLimiter
from odeus_compliance.upstream.simulator.render import (
    json_bytes,
    select,
    to_csv,
    to_json_rows,
    visible_columns,
)
from odeus_compliance.upstream.simulator.signing import UrlSigner
from odeus_compliance.upstream.simulator.storage import BlobStore
from odeus_compliance.upstream.simulator.usage import Privacy, build_table
from odeus_compliance.upstream.simulator.workspace import Workspace

NO_DATA = OdeusError(404, "No data found", "No usage data found for the selected period")


@dataclass
class Simulator:
    """One simulated Odeus deployment: its workspace and the state its two apps share."""

    config: SimulatorConfig
    workspace: Workspace
    storage_url: str
    faults: FaultInjector
    store: BlobStore
    signer: UrlSigner
    limiter: SlidingWindowLimiter
    _serial: itertools.count[int] = field(default_factory=itertools.count)
    _serial_lock: threading.Lock = field(default_factory=threading.Lock)

    def _suffix(self, path_stem: str) -> str:
        with self._serial_lock:
            serial = next(self._serial)
        return hashlib.sha256(f"{path_stem}/{serial}".encode()).hexdigest()[:8]

    def _check_period(self, query: ExportQuery) -> None:
        oldest = history_start(self.workspace.today, self.config.history_months)
        if query.start < oldest:
            msg = (
                f"from is older than {self.config.history_months} months; "
                f"the export history starts at {utc_stamp(oldest)}"
            )
            raise OdeusError(400, INVALID_RANGE, msg)
        created = datetime.combine(self.workspace.created, datetime.min.time(), tzinfo=UTC)
        if query.end < created:
            raise NO_DATA

    def export(self, export_type: ExportType, export_format: ExportFormat, raw_body: bytes) -> bytes:
        """The JSON response body of a successful export, or an ``OdeusError``."""
        config = self.config
        query = parse_query(parse_body(raw_body), export_type, byok=config.byok)
        self._check_period(query)
        privacy = Privacy(config.user_level_data, config.anonymisation)
        table = build_table(
            self.workspace,
            export_type,
            query.period,
            byok=config.byok,
            group_by=query.group_by,
            privacy=privacy,
        )
        if len(table.rows) > config.row_cap:
            msg = (
                f"The export would contain {len(table.rows)} rows, more than the limit of {config.row_cap}. "
                "Please narrow the date range."
            )
            raise OdeusError(400, "Export too large", msg)
        rendered = select(table, visible_columns(export_type, query.group_by, config))
        data: dict[str, Any] = {}
        if export_format is ExportFormat.CSV:
            name = export_type.value
            stem = f"{name}-usage-{query.period.start_date.isoformat()}-{query.period.end_date.isoformat()}"
            file_path = f"{name}-usage/{self.workspace.workspace_id}/{stem}-{self._suffix(stem)}.csv"
            expires, signature = self.signer.sign(file_path, config.url_ttl_seconds)
            self.store.put(file_path, to_csv(rendered, config), expires)
            data["filePath"] = file_path
            data["downloadUrl"] = (
                f"{self.storage_url}/files/{quote(file_path)}?expires={expires}&signature={signature}"
            )
        data["dataType"] = export_type.data_type
        data["recordCount"] = len(rendered.rows)
        offset = config.variant_offset_date_range
        data["dateRange"] = {
            "from": utc_stamp(query.start, offset_variant=offset),
            "to": utc_stamp(query.end, offset_variant=offset),
        }
        if export_format is ExportFormat.JSON:
            data["rows"] = to_json_rows(rendered, config)
        return json_bytes({"success": True, "data": data})
