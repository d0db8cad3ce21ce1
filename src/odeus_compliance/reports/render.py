"""Report content to an unsigned PDF/A-3b with its attachments embedded.

Jinja2 renders ``report.html.j2`` from the template folder with autoescape on and ``StrictUndefined`` (a
missing value is an error, never an empty cell); WeasyPrint lays it out with :class:`BundledAssetFetcher`
as its only way to load anything, so a template that asks for a URL outside the bundle aborts the render.
The PDF is PDF/A-3b: fonts embedded, XMP with ``pdfaid``, an sRGB output intent, and each attachment an
associated file (``/AF``, ``/AFRelationship``). The Info dictionary carries no ``Producer``, so a later
signature writes the same producer into Info and XMP (see docs/report-verification.md).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from importlib import resources
from io import BytesIO
from pathlib import Path
from typing import Any

import jinja2
import weasyprint
from weasyprint.css import ColorProfile
from weasyprint.urls import FatalURLFetchingError

from odeus_compliance.reports.content import ReportContent
from odeus_compliance.reports.fetcher import BASE_URL, BundledAssetFetcher, attachment_url

TEMPLATE = "report.html.j2"
PDF_VARIANT = "pdf/a-3b"
MISSING = "\u2013"  # an en dash: "no figure" in a table cell
SRGB_INTENT = "srgb-iec61966-2-1"
_DATA_RELATIONSHIPS = {"text/csv": "Data"}  # the dataset is data; the policy and manifest are sources

logger = logging.getLogger(__name__)


class RenderError(RuntimeError):
    """The report could not be rendered (the message quotes no data and no URL)."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file embedded in the PDF as an associated file."""

    name: str  # file name inside the PDF, e.g. "data.csv", "policy.toml", "manifest.json"
    data: bytes
    media_type: str  # "text/csv", "application/toml", "application/json"
    description: str

    @property
    def relationship(self) -> str:
        """``/AFRelationship``: ``Data`` for the dataset, ``Source`` for what produced the report."""
        return _DATA_RELATIONSHIPS.get(self.media_type, "Source")

    @property
    def size(self) -> int:
        """The file's length in bytes."""
        return len(self.data)

    @property
    def sha256(self) -> str:
        """The file's SHA-256 (hex)."""
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True, slots=True)
class DeflatedAttachment:
    """A file embedded as it was already deflated where it was written (the dataset: the policy engine's
    :class:`~odeus_compliance.policy.csvout.CsvSink` deflates it while writing it), so rendering copies
    bytes instead of compressing them and its cost does not grow with the file.

    ``deflated`` is one zlib stream of the file (what ``/FlateDecode`` reads); ``size``, ``md5`` and
    ``sha256`` are those of the plain file (``/Params /Size`` and ``/CheckSum``; the manifest). They are
    not checked against each other here: the worker verifies the signed PDF, whose check inflates every
    attachment and compares it with the manifest's SHA-256 and size.
    """

    name: str
    deflated: bytes
    size: int
    md5: str
    sha256: str
    media_type: str
    description: str

    @property
    def relationship(self) -> str:
        """``/AFRelationship``, as for :class:`Attachment`."""
        return _DATA_RELATIONSHIPS.get(self.media_type, "Source")

    @property
    def placeholder(self) -> bytes:
        """What WeasyPrint is given to embed in place of the file (swapped for ``deflated`` when the PDF
        is finished); unique per attachment, so WeasyPrint's MD5 of it still tells the attachments apart."""
        return f"odeus-compliance deflated attachment {self.name} {self.sha256}".encode()


AnyAttachment = Attachment | DeflatedAttachment


def template_environment(template_dir: Path) -> jinja2.Environment:
    """The Jinja2 environment of the report templates: autoescape everywhere, undefined is an error."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["count"] = format_count
    env.filters["amount"] = format_amount
    env.filters["utc"] = format_utc
    return env


def format_count(value: Any) -> str:
    """A whole number with thousands separators (``12,345``); ``None`` as :data:`MISSING`."""
    if value is None:
        return MISSING
    return f"{int(Decimal(str(value))):,}"


def format_amount(value: Any) -> str:
    """A decimal with thousands separators, its precision kept (``1,234.5``); ``None`` as :data:`MISSING`."""
    if value is None or value == "":
        return MISSING
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    whole, _, fraction = format(number, "f").partition(".")
    sign = "-" if whole.startswith("-") else ""
    grouped = f"{int(whole.lstrip('-')):,}"
    return f"{sign}{grouped}.{fraction}" if fraction else f"{sign}{grouped}"


def format_utc(value: datetime) -> str:
    """An aware instant as ``YYYY-MM-DD HH:MM:SS UTC``."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def render_html(
    content: ReportContent, *, template_dir: Path, attachments: Sequence[AnyAttachment] = ()
) -> str:
    """The report's HTML (what WeasyPrint lays out)."""
    try:
        template = template_environment(template_dir).get_template(TEMPLATE)
        return template.render(content=content, attachments=attachments)
    except jinja2.TemplateError as exc:
        msg = f"the report template failed: {type(exc).__name__}"
        raise RenderError(msg) from exc


def render_pdf(content: ReportContent, *, template_dir: Path, attachments: Sequence[AnyAttachment]) -> bytes:
    """Unsigned PDF/A-3b with the attachments embedded (AFRelationship Data/Source); a
    :class:`DeflatedAttachment`'s stream is embedded as it is."""
    names = [a.name for a in attachments]
    if len(set(names)) != len(names):
        msg = "two attachments share a name"
        raise RenderError(msg)
    fetcher = BundledAssetFetcher(
        template_dir, attachments={a.name: (_served_bytes(a), a.media_type) for a in attachments}
    )
    prepared = {a.placeholder: a for a in attachments if isinstance(a, DeflatedAttachment)}
    html = render_html(content, template_dir=template_dir, attachments=attachments)
    stamp = content.meta.generated_at.astimezone(UTC)
    embedded = [
        weasyprint.Attachment(
            url=attachment_url(a.name),
            url_fetcher=fetcher,
            name=a.name,
            description=a.description,
            created=stamp,
            modified=stamp,
            relationship=a.relationship,
        )
        for a in attachments
    ]
    # the large attachments (the dataset) are deflated in a thread while WeasyPrint lays out the pages:
    # zlib releases the GIL, so their cost, the only one that grows with the workspace, mostly overlaps
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pdf-deflate") as deflater:
        early = [
            (a.data, deflater.submit(zlib.compress, a.data, ATTACHMENT_ZLIB_LEVEL))
            for a in attachments
            if isinstance(a, Attachment) and len(a.data) >= EARLY_DEFLATE_BYTES
        ]
        try:
            document = weasyprint.HTML(string=html, base_url=BASE_URL, url_fetcher=fetcher).render()
            # the PDF/A output intent, loaded by us: WeasyPrint's own "srgb" loading leaves its ICC file open
            document.color_profiles[SRGB_INTENT] = _srgb_profile()
            document.output_intent = SRGB_INTENT
            pdf: bytes = document.write_pdf(
                pdf_variant=PDF_VARIANT,
                output_intent=SRGB_INTENT,
                attachments=embedded,
                finisher=functools.partial(_finish, early=early, prepared=prepared),
                uncompressed_pdf=False,
            )
        except FatalURLFetchingError:
            for _data, future in early:
                future.cancel()
            logger.warning(
                "report render aborted: a non-bundled URL was requested", extra={"refused": fetcher.refused}
            )
            msg = "the report asked for a resource outside the bundled assets; render aborted"
            raise RenderError(msg) from None
    if fetcher.refused:  # never reached with a strict fetcher; kept so a lenient one cannot slip through
        msg = "the report asked for a resource outside the bundled assets; render aborted"
        raise RenderError(msg)
    return pdf


def _served_bytes(attachment: AnyAttachment) -> bytes:
    return attachment.placeholder if isinstance(attachment, DeflatedAttachment) else attachment.data


def _srgb_profile() -> Any:
    icc = resources.files("weasyprint.pdf").joinpath("sRGB2014.icc").read_bytes()
    return ColorProfile(BytesIO(icc), "sRGB2014.icc", "relative-colorimetric", (["r"], ["g"], ["b"]))


ATTACHMENT_ZLIB_LEVEL = 1  # pydyf uses level 9: 3x the time for a 100,000-row dataset, ~20 % fewer bytes
EARLY_DEFLATE_BYTES = 1 << 18  # attachments this large are deflated in a thread during the layout

_Early = Sequence[tuple[bytes, "Future[bytes]"]]


def _finish(
    _document: Any,
    pdf: Any,
    *,
    early: _Early = (),
    prepared: Mapping[bytes, DeflatedAttachment] | None = None,
) -> None:
    """Drop Info's Producer (a signer rewrites it) and the duplicate ``/AF`` entries WeasyPrint writes;
    compress embedded files at a fast level (a 28 MB dataset: ~0.3 s instead of ~1.5 s), taking the ones
    deflated during the layout from ``early``, and put each :class:`DeflatedAttachment`'s stream (and its
    plain size and MD5) in place of its placeholder."""
    pdf.info.pop("Producer", None)
    for item in pdf.objects:
        extra = getattr(item, "extra", None)
        if isinstance(extra, dict) and extra.get("Type") == "/EmbeddedFile" and item.compress:
            data = b"\n".join(part if isinstance(part, bytes) else str(part).encode() for part in item.stream)
            ready = (prepared or {}).get(data)
            if ready is None:
                item.stream = [_deflated(data, early)]
            else:
                item.stream = [ready.deflated]
                extra["Params"]["Size"] = ready.size
                extra["Params"]["CheckSum"] = f"<{ready.md5}>"
            item.compress = False
            extra["Filter"] = "/FlateDecode"
    files = pdf.catalog.get("AF")
    if files is not None:
        unique: list[Any] = []
        for reference in files:
            if str(reference) not in {str(u) for u in unique}:
                unique.append(reference)
        files.clear()
        files.extend(unique)


def _deflated(data: bytes, early: _Early) -> bytes:
    """``data`` deflated: the result made during the layout if ``data`` is one of those, else now."""
    for original, future in early:
        if len(original) == len(data) and original == data:
            return future.result()
    return zlib.compress(data, ATTACHMENT_ZLIB_LEVEL)
