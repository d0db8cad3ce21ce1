"""Where the engine's rows come from, as Arrow record batches of text columns.

Two sources, one form: every cell is text (``string``), an empty cell is null, columns are in header order.

* :class:`CsvFileInput`: an export file read with Arrow's C++ CSV reader, every column as text, on a
  background thread (the reader releases the GIL, so parsing the next block overlaps the transformation
  of this one). It hashes every byte it reads (the manifest's input hash). The typed upstream parser
  (:func:`odeus_compliance.upstream.csvstream.parse_csv`) is not used here: it decodes every JSON map
  into Python dicts, which costs more than the policy run itself.
* :func:`text_batch`: a typed :class:`~odeus_compliance.upstream.batches.ExportBatch` from the upstream
  client, turned back into text the same way the file would have held it.

Error messages name columns and row numbers, never cell values (Arrow's own messages quote rows, so they
are never passed on).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import msgspec
import pyarrow as pa
import pyarrow.csv as pa_csv

from odeus_compliance.policy import arrow_compute as ac
from odeus_compliance.upstream.batches import ExportBatch
from odeus_compliance.upstream.columns import ExportType, Kind
from odeus_compliance.upstream.errors import MalformedExport
from odeus_compliance.upstream.schema import ExportSchema

DEFAULT_BLOCK_BYTES = 8 << 20  # Arrow reads up to 32 blocks ahead, so the block size bounds memory
READ_AHEAD_BLOCKS = 2  # blocks read ahead of the batches taken (bounds memory; see _HashingReader)
_MAX_HEADER_BYTES = 1 << 20
_TRAILING_ZEROS = r"\.0+$|(\.[0-9]*?[1-9])0+$"
_ZERO_EXPONENT = r"^-?0E-[0-9]+$"
_encode_json = msgspec.json.Encoder().encode


class _HashingReader(io.RawIOBase):
    """A read-only file that hashes every byte handed out and remembers the last one.

    Arrow's streaming CSV reader reads its input on an I/O thread up to 32 blocks ahead of the batches
    taken from it, which can be the whole file in memory. :meth:`readinto` therefore waits
    while more than ``ahead`` reads are ahead of the batches the consumer has taken (:meth:`consumed`);
    every read is one block, and a batch needs its own block and at most the next one.
    """

    def __init__(self, raw: io.BufferedReader, *, ahead: int = READ_AHEAD_BLOCKS) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()
        self.size = 0
        self.last_byte = b""
        self._ahead = ahead
        self._reads = 0
        self._taken = 0
        self._stopped = False
        self._turn = threading.Condition()

    def readable(self) -> bool:
        return True

    def consumed(self) -> None:
        """The consumer took one more batch: one more read may go ahead."""
        with self._turn:
            self._taken += 1
            self._turn.notify_all()

    def stop(self) -> None:
        """Never wait again (the run ends or failed)."""
        with self._turn:
            self._stopped = True
            self._turn.notify_all()

    def _take_turn(self) -> None:
        with self._turn:
            self._turn.wait_for(lambda: self._stopped or self._reads - self._taken <= self._ahead)
            self._reads += 1

    def _hash(self, view: Any) -> None:
        self.digest.update(view)
        self.size += len(view)
        self.last_byte = bytes(view[-1:])

    def readinto(self, buffer: Any) -> int:
        self._take_turn()
        count = self._raw.readinto(buffer)
        if count:
            self._hash(memoryview(buffer)[:count])
        return count or 0

    def read(self, size: int = -1) -> bytes:
        """One block as the file's own bytes object (what Arrow asks for): ``RawIOBase.read`` would make a
        buffer, read into it and copy it, for every block."""
        self._take_turn()
        data = self._raw.read(size)
        if data:
            self._hash(data)
        return data


def read_header(path: Path, export_type: ExportType) -> tuple[ExportSchema, int]:
    """The file's schema and the byte length of its header line (a BOM is allowed and skipped)."""
    with path.open("rb") as handle:
        head = handle.read(_MAX_HEADER_BYTES)
    if not head:
        msg = "the export file is empty: not even a header"
        raise MalformedExport(msg)
    end = head.find(b"\n")
    if end < 0:
        msg = "the export file has no complete header line"
        raise MalformedExport(msg)
    try:
        line = head[:end].decode("utf-8-sig").rstrip("\r")
        names = next(csv.reader([line], strict=True))
    except (UnicodeDecodeError, csv.Error, StopIteration):
        msg = "the export header is not valid UTF-8 CSV"
        raise MalformedExport(msg) from None
    return ExportSchema.from_header(export_type, names), end + 1


class CsvFileInput:
    """One export file, readable any number of times as text batches."""

    def __init__(
        self, path: Path, export_type: ExportType, *, block_bytes: int = DEFAULT_BLOCK_BYTES
    ) -> None:
        self.path = path
        self.export_type = export_type
        self.schema, _ = read_header(path, export_type)
        self._block_bytes = block_bytes
        self.sha256: str | None = None
        self.size: int | None = None

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Every data row, in order, as text batches; sets :attr:`sha256` and :attr:`size` at the end."""
        names = list(self.schema.names)
        read_options = pa_csv.ReadOptions(
            column_names=names, skip_rows=1, block_size=self._block_bytes, use_threads=False
        )
        parse_options = pa_csv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False)
        convert_options = pa_csv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            null_values=[""],  # only an empty cell is empty: "NA" (a region), "null" or "NaN" are values
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        )
        with self.path.open("rb") as raw:
            hashing = _HashingReader(raw)
            rows = 0

            def produce() -> Iterator[pa.RecordBatch]:
                file: Any = pa.PythonFile(cast("Any", hashing), mode="r")
                reader = pa_csv.open_csv(
                    file,
                    read_options=read_options,
                    parse_options=parse_options,
                    convert_options=convert_options,
                )
                yield from reader

            try:
                for batch in prefetch(produce, depth=2):
                    hashing.consumed()
                    rows += batch.num_rows
                    yield batch
            except pa.ArrowInvalid as error:
                raise _explain(error, self.export_type, rows + 1, len(names)) from None
            except (StopIteration, pa.ArrowException):
                msg = (
                    f"the {self.export_type.value} export is not valid CSV (at or after data row {rows + 1})"
                )
                raise MalformedExport(msg) from None
            finally:
                hashing.stop()
            if hashing.size and hashing.last_byte != b"\n":
                msg = "the export file does not end with a line end: it was cut short"
                raise MalformedExport(msg)
            self.sha256 = hashing.digest.hexdigest()
            self.size = hashing.size


def _explain(error: pa.ArrowInvalid, export_type: ExportType, first_row: int, width: int) -> MalformedExport:
    text = str(error)
    if "columns" in text and "Expected" in text:
        msg = (
            f"a row of the {export_type.value} export does not have the header's {width} cells "
            f"(at or after data row {first_row})"
        )
    elif "UTF8" in text or "utf8" in text or "UTF-8" in text:
        msg = f"the {export_type.value} export is not valid UTF-8 (at or after data row {first_row})"
    else:
        msg = f"the {export_type.value} export is not valid CSV (at or after data row {first_row})"
    return MalformedExport(msg)


_DONE = object()


def prefetch(produce: Callable[[], Iterator[Any]], *, depth: int) -> Iterator[Any]:
    """Run ``produce()`` on a background thread, ``depth`` items ahead; exceptions come out in order.

    Stopping early (the consumer raises or closes) stops the producer at its next item.
    """
    items: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def run() -> None:
        try:
            for item in produce():
                if not put(("item", item)):
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put(("error", error))
            return
        put(("done", _DONE))

    worker = threading.Thread(target=run, name="policy-read", daemon=True)
    worker.start()
    try:
        while True:
            kind, item = items.get()
            if kind == "item":
                yield item
            elif kind == "error":
                raise item
            else:
                return
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                items.get_nowait()
        worker.join(timeout=10)


# --- typed upstream batches as text -----------------------------------------------------------------


def text_batch(batch: ExportBatch) -> pa.RecordBatch:
    """A typed upstream batch as the text its CSV would have held (decimals without padding zeros)."""
    arrays = [_as_text(batch, column.name, column.kind) for column in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=list(batch.column_names))


def _as_text(batch: ExportBatch, name: str, kind: Kind) -> pa.Array[Any]:
    if kind is Kind.JSON_MAP:
        values = batch.column(name)
        return pa.array([None if v is None else _encode_json(v).decode() for v in values], pa.string())
    array: Any = batch.arrow_column(name)
    if kind is Kind.STR:
        return cast("pa.Array[Any]", array)
    if kind is Kind.BOOL:
        return cast("pa.Array[Any]", ac.if_else(array, "true", "false"))
    if kind is Kind.DECIMAL:
        text = ac.replace_substring_regex(ac.cast(array, pa.string()), _TRAILING_ZEROS, r"\1")
        return cast("pa.Array[Any]", ac.replace_substring_regex(text, _ZERO_EXPONENT, "0"))
    if kind is Kind.DATETIME:
        values = batch.column(name)
        return pa.array([None if v is None else v.isoformat() for v in values], pa.string())
    return cast("pa.Array[Any]", ac.cast(array, pa.string()))
