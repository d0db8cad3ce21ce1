"""Keeping a signed report PDF/A-3b: the writer that signs without touching metadata, and the smoke check.

Signing is an incremental update. By default pyHanko rewrites the document metadata in that update: the
Info dictionary's ``/Producer`` becomes ``WeasyPrint ...; pyHanko ...`` while the XMP ``pdf:Producer``
becomes ``pyHanko ...``, and both ``ModDate`` values are set from two separate clock reads. PDF/A-2/3
require each Info entry to equal its XMP twin, so the signed file would stop being PDF/A.
:class:`MetadataKeepingWriter` leaves the metadata exactly as the renderer wrote it (consistent), which is
also what an archive wants: the signature dictionary records who signed and when.

:func:`pdfa_problems` is the regression net run on every signed file: it is not a PDF/A validator (veraPDF
is), only the handful of facts signing can break: the ``pdfaid`` identification, Info/XMP equality, and a
catalog ``/Version`` within PDF 1.7.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any, Final

from lxml import etree
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import isoparse
from pyhanko.pdf_utils.reader import PdfFileReader

__all__ = ["MetadataKeepingWriter", "PdfaMetadata", "pdfa_problems", "read_pdfa_metadata"]

_NS: Final = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
}
# Info entry -> (XMP namespace prefix, property); dates are compared as instants, the rest as text
_TEXT_TWINS: Final = {
    "Title": ("dc", "title"),
    "Author": ("dc", "creator"),
    "Subject": ("dc", "description"),
    "Keywords": ("pdf", "Keywords"),
    "Creator": ("xmp", "CreatorTool"),
    "Producer": ("pdf", "Producer"),
}
_DATE_TWINS: Final = {"CreationDate": ("xmp", "CreateDate"), "ModDate": ("xmp", "ModifyDate")}
_HEADER: Final = re.compile(rb"%PDF-(\d\.\d)")
_MAX_PDF_VERSION: Final = (1, 7)  # PDF/A-3 is based on ISO 32000-1 (PDF 1.7)
_XMP_PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


class MetadataKeepingWriter(IncrementalPdfFileWriter):
    """An incremental writer that leaves the Info dictionary and the XMP stream as they are.

    Overrides pyHanko's ``_update_meta`` hook (the way its maintainer suggests in pyHanko issue #223).
    Should a pyHanko upgrade rename the hook, :func:`pdfa_problems` catches the mismatch on the signed file
    and signing fails loudly instead of producing a non-PDF/A report.
    """

    def _update_meta(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class PdfaMetadata:
    """What the PDF says about itself, read from the newest revision."""

    header_version: str | None
    catalog_version: str | None
    pdfaid_part: str | None
    pdfaid_conformance: str | None
    info: dict[str, str] = field(default_factory=dict)
    """Text entries of the Info dictionary (dates as their raw PDF strings)."""
    xmp: dict[str, str] = field(default_factory=dict)
    """``prefix:Property`` -> first value, for the properties that have an Info twin."""


def _xmp_properties(xml: bytes) -> dict[str, str]:
    root = etree.fromstring(xml, parser=_XMP_PARSER)
    found: dict[str, str] = {}
    wanted = [("pdfaid", "part"), ("pdfaid", "conformance"), *_TEXT_TWINS.values(), *_DATE_TWINS.values()]
    for description in root.iter(f"{{{_NS['rdf']}}}Description"):
        for prefix, name in wanted:
            key = f"{prefix}:{name}"
            tag = f"{{{_NS[prefix]}}}{name}"
            attribute = description.get(tag)
            if attribute is not None:
                found.setdefault(key, attribute)
            element = description.find(tag)
            if element is not None:
                items = element.findall(f".//{{{_NS['rdf']}}}li")
                text = (items[0].text if items else element.text) or ""
                found.setdefault(key, text.strip())
    return found


def _text(value: Any) -> str:
    return str(value)


def read_pdfa_metadata(pdf: bytes) -> PdfaMetadata:
    """Read the identification and metadata of ``pdf``; raises on a file that is not a PDF."""
    header = _HEADER.match(pdf[:16])
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    root = reader.root
    catalog_version = root.get("/Version")
    info: dict[str, str] = {}
    if "/Info" in reader.trailer:
        info_dict = reader.trailer["/Info"]
        for key in (*_TEXT_TWINS, *_DATE_TWINS):
            if f"/{key}" in info_dict:
                info[key] = _text(info_dict[f"/{key}"])
    xmp: dict[str, str] = {}
    if "/Metadata" in root:
        stream = root["/Metadata"]
        if isinstance(stream, generic.StreamObject):
            xmp = _xmp_properties(stream.data)
    return PdfaMetadata(
        header_version=header.group(1).decode() if header else None,
        catalog_version=str(catalog_version).lstrip("/") if catalog_version is not None else None,
        pdfaid_part=xmp.pop("pdfaid:part", None),
        pdfaid_conformance=xmp.pop("pdfaid:conformance", None),
        info=info,
        xmp=xmp,
    )


def _same_instant(pdf_date: str, xmp_date: str) -> bool:
    try:
        return bool(generic.parse_pdf_date(pdf_date) == isoparse(xmp_date))
    except (ValueError, TypeError):
        return False


def _version_ok(version: str | None) -> bool:
    if version is None:
        return True
    try:
        major, minor = (int(part) for part in version.split("."))
    except ValueError:
        return False
    return (major, minor) <= _MAX_PDF_VERSION


def pdfa_problems(meta: PdfaMetadata, *, part: str = "3", conformance: str = "B") -> list[str]:
    """Why ``meta`` is not the PDF/A file (``part`` + ``conformance``) it claims to be; empty if it is."""
    problems: list[str] = []
    if meta.pdfaid_part != part or (meta.pdfaid_conformance or "").upper() != conformance:
        problems.append(
            f"XMP identifies PDF/A part {meta.pdfaid_part} conformance {meta.pdfaid_conformance}, "
            f"expected {part}{conformance}"
        )
    for label, version in (("header", meta.header_version), ("catalog", meta.catalog_version)):
        if not _version_ok(version):
            problems.append(f"{label} version {version} is above PDF 1.7")
    for key, (prefix, name) in _TEXT_TWINS.items():
        if key in meta.info and meta.info[key] != meta.xmp.get(f"{prefix}:{name}"):
            problems.append(f"Info /{key} differs from XMP {prefix}:{name}")
    for key, (prefix, name) in _DATE_TWINS.items():
        xmp_value = meta.xmp.get(f"{prefix}:{name}")
        if key in meta.info and (xmp_value is None or not _same_instant(meta.info[key], xmp_value)):
            problems.append(f"Info /{key} differs from XMP {prefix}:{name}")
    return problems
