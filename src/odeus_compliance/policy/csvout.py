"""The output CSV: formula-safe, minimally quoted, written to an invisible file that appears only on commit.

* Formula injection: a text cell that could start a formula gets an apostrophe (OWASP) in front, and
  after every ``;``, tab or line break inside it that a formula character follows (a reader splitting
  there starts a cell), skipping invisible characters: :mod:`~odeus_compliance.policy.formula_guard`
  says where. Numeric columns (numbers validated on input, or rounded by the policy) are left alone, so
  ``-5`` stays a number.
* Quoting as RFC 4180 needs it (a cell with a quote, comma or line end), and for a ``;`` or tab (readers
  splitting there) or, in a text cell, an apostrophe (a guarded cell is quoted); ``\\n`` line ends, UTF-8.
* Atomic: the file is written as an anonymous ``O_TMPFILE`` in the target folder (a hidden temporary file
  where that is not available) and linked into place by :meth:`CsvSink.commit`. A run that fails or is
  killed leaves nothing at the target path.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import zlib
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from odeus_compliance.policy import arrow_compute as ac
from odeus_compliance.policy.formula_guard import (
    QUOTE_CHARACTERS,
    SEGMENT_PATTERN,
    SEGMENT_REPLACEMENT,
    START_PATTERN,
    TEXT_QUOTE_CHARACTERS,
)
from odeus_compliance.policy.sealed import SealedWriter

_NEEDS_QUOTES = "[" + re.escape(QUOTE_CHARACTERS) + "]"
_TEXT_NEEDS_QUOTES = "[" + re.escape(TEXT_QUOTE_CHARACTERS) + "]"  # a guarded cell is quoted (OWASP)
_NULL_TEXT = pa.scalar(None, pa.string())
_DISTINCT_MIN_ROWS = 1024  # below this, formatting every cell is as cheap as finding the distinct ones


def csv_cells(array: pa.Array[Any], *, text: bool) -> pa.Array[Any]:
    """The CSV text of one column: nulls empty, text neutralised against formulas, quoted where needed.

    A column with few distinct values (departments, roles, dates) is formatted once per distinct value and
    spread back with ``take``; the result is the same as :func:`csv_cells_direct` (a test checks it).
    """
    if len(array) >= _DISTINCT_MIN_ROWS:
        encoded = ac.dictionary_encode(ac.fill_null(array, ""))
        if len(encoded.dictionary) * 4 <= len(array):
            return ac.take(csv_cells_direct(encoded.dictionary, text=text), encoded.indices)
    return csv_cells_direct(array, text=text)


def csv_cells_direct(array: pa.Array[Any], *, text: bool) -> pa.Array[Any]:
    """:func:`csv_cells`, cell by cell (in Arrow)."""
    cells = ac.fill_null(array, "")
    if text:
        start = ac.match_substring_regex(cells, START_PATTERN)
        if ac.any(ac.match_substring_regex(cells, SEGMENT_PATTERN)).as_py():
            cells = ac.replace_substring_regex(cells, SEGMENT_PATTERN, SEGMENT_REPLACEMENT)
        if ac.any(start).as_py():
            cells = ac.if_else(start, ac.binary_join_element_wise("'", cells, ""), cells)
    quote = ac.match_substring_regex(cells, _TEXT_NEEDS_QUOTES if text else _NEEDS_QUOTES)
    if ac.any(quote).as_py():
        quoted = ac.binary_join_element_wise('"', ac.replace_substring(cells, '"', '""'), '"', "")
        cells = ac.if_else(quote, quoted, cells)
    return cells


def csv_json_cells(array: pa.Array[Any]) -> pa.Array[Any]:
    """:func:`csv_cells` of a text column, faster for the cells that are JSON objects with members.

    A cell starting with ``{"`` never needs the apostrophe in front (``{`` is not a formula start) and always
    needs quotes (it holds a quote), so unless a key holds a separator a formula follows it is quoted without
    the other pattern scans; every other cell (empty, ``{}``) goes through :func:`csv_cells`. Equal to
    :func:`csv_cells_direct` for every cell (a test checks it).
    """
    cells = ac.fill_null(array, "")
    objects = ac.and_(
        ac.starts_with(cells, '{"'), ac.invert(ac.match_substring_regex(cells, SEGMENT_PATTERN))
    )
    quoted = ac.binary_join_element_wise('"', ac.replace_substring(cells, '"', '""'), '"', "")
    if ac.all(objects).as_py():
        return quoted
    rest = csv_cells(ac.if_else(objects, _NULL_TEXT, cells), text=True)
    return ac.if_else(objects, quoted, rest)


def csv_lines(columns: list[pa.Array[Any]]) -> pa.Buffer:
    """The lines (each ending ``\\n``) of already formatted columns, as one Arrow buffer.

    The joined lines' own data buffer, sliced to them: no copy into a Python ``bytes``.
    """
    if not columns or len(columns[0]) == 0:
        return pa.py_buffer(b"")
    last = ac.binary_join_element_wise(columns[-1], "\n", "")
    lines: Any = ac.binary_join_element_wise(*columns[:-1], last, ",") if len(columns) > 1 else last
    if lines.null_count:  # formatted columns have no nulls; a null line would silently lose a row
        msg = "a formatted CSV column holds a null cell"
        raise ValueError(msg)
    offsets: Any = lines.buffers()[1]
    width = 8 if pa.types.is_large_string(lines.type) else 4
    first, end = (
        int.from_bytes(offsets[i * width : (i + 1) * width], "little")
        for i in (lines.offset, lines.offset + len(lines))
    )
    data: pa.Buffer = lines.buffers()[2][first:end]
    return data


def csv_bytes(columns: list[pa.Array[Any]]) -> bytes:
    """The lines (each ending ``\\n``) of already formatted columns, as ``bytes``."""
    return csv_lines(columns).to_pybytes()


_DIGESTS_AHEAD = 4  # written pieces (a batch's lines each) that may wait for the digest thread
DEFLATE_LEVEL = 1
"""zlib level of the deflated copy: the fastest (higher levels save few bytes for much more time)."""


class _StagedFile:
    """A file written invisibly (``O_TMPFILE`` where available, else a hidden ``.partial`` file) that
    appears at ``path`` only on :meth:`commit`; with a ``key``, sealed (:mod:`.sealed`)."""

    def __init__(self, path: Path, key: bytes | None = None) -> None:
        self.path = path
        self._named: Path | None = None
        self.file = self._open(path.parent)
        self._sealer = SealedWriter(self.file, key, label=path.name) if key is not None else None
        self._done = False
        self.committed = False

    def write(self, data: bytes | memoryview) -> None:
        if self._sealer is not None:
            self._sealer.write(data)
        else:
            self.file.write(data)

    def _open(self, folder: Path) -> IO[bytes]:
        flag = getattr(os, "O_TMPFILE", 0)
        if flag:
            try:
                return os.fdopen(os.open(folder, flag | os.O_WRONLY, 0o600), "wb")
            except OSError:
                pass
        self._named = folder / f".{self.path.name}.{secrets.token_hex(6)}.partial"
        return self._named.open("xb")

    def commit(self) -> None:
        if self._sealer is not None:
            self._sealer.finish()
        self.file.flush()
        os.fsync(self.file.fileno())
        if self._named is None:
            staged = self.path.parent / f".{self.path.name}.{secrets.token_hex(6)}.partial"
            folder = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:  # a directory fd makes os.link use linkat(AT_SYMLINK_FOLLOW), which can link an O_TMPFILE
                os.link(f"/proc/self/fd/{self.file.fileno()}", staged.name, dst_dir_fd=folder)
            finally:
                os.close(folder)
        else:
            staged = self._named
        self.file.close()
        staged.replace(self.path)
        self._done = True
        self.committed = True

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self.file.close()
        if self._named is not None:
            with contextlib.suppress(FileNotFoundError):
                self._named.unlink()


class _DeflatedCopy:
    """The sink's bytes as one zlib stream (what a PDF's ``/FlateDecode`` filter reads), made as they are
    written, with the MD5 of the plain bytes (a PDF embedded file's ``/CheckSum``)."""

    def __init__(self, path: Path, level: int, key: bytes | None = None) -> None:
        self._staged = _StagedFile(path, key)
        self._compressor = zlib.compressobj(level)
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.bytes = 0  # deflated bytes written

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()

    def put(self, view: memoryview) -> None:
        self._md5.update(view)
        self._write(self._compressor.compress(view))

    def _write(self, data: bytes) -> None:
        if data:
            self._staged.write(data)
            self.bytes += len(data)

    def commit(self) -> None:
        self._write(self._compressor.flush())
        self._staged.commit()

    def abort(self) -> None:
        self._staged.abort()

    def remove(self) -> None:
        """Remove the committed copy (when the CSV it belongs to could not be committed)."""
        if self._staged.committed:
            self._staged.path.unlink(missing_ok=True)


class CsvSink:
    """One output file. ``write_header`` once, ``write`` batches, then ``commit`` (or ``abort``).

    With ``deflated``, a second file there receives the same bytes as one zlib stream (level
    :data:`DEFLATE_LEVEL`) while they are written, committed and aborted with the CSV: a report embeds it
    in its PDF as it is, instead of compressing the dataset again (:attr:`md5` is the plain bytes' MD5).
    With ``key``, both files are sealed under it (:mod:`.sealed`: a report job's work copies); the sizes,
    the digests and the MD5 are those of the plain bytes.

    The digests (and the deflated copy) are made on one thread of the sink's own, in order, while the
    calling thread goes on writing: for a large output they cost about as much as the writes. At most
    :data:`_DIGESTS_AHEAD` pieces wait for it; :attr:`sha256`, :attr:`md5`, :meth:`commit` wait for all.
    """

    def __init__(
        self,
        path: Path,
        *,
        deflated: Path | None = None,
        deflate_level: int = DEFLATE_LEVEL,
        key: bytes | None = None,
    ) -> None:
        self.path = path
        self._digest = hashlib.sha256()
        self.rows = 0
        self.bytes = 0
        self._staged = _StagedFile(path, key)
        self._deflated = _DeflatedCopy(deflated, deflate_level, key) if deflated is not None else None
        self._digester = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy-digest")
        self._digesting: deque[Future[None]] = deque()

    @property
    def sha256(self) -> str:
        """SHA-256 of everything written so far."""
        self._settle()
        return self._digest.hexdigest()

    @property
    def md5(self) -> str | None:
        """MD5 of everything written so far, when a deflated copy is made (else ``None``)."""
        self._settle()
        return None if self._deflated is None else self._deflated.md5

    @property
    def deflated_bytes(self) -> int | None:
        """Size of the deflated copy (complete after :meth:`commit`), when one is made."""
        self._settle()
        return None if self._deflated is None else self._deflated.bytes

    def _put(self, data: bytes | pa.Buffer) -> None:
        view = memoryview(data)
        self._staged.write(view)
        self.bytes += view.nbytes
        self._digesting.append(self._digester.submit(self._digest_piece, view))
        while len(self._digesting) > _DIGESTS_AHEAD:
            self._digesting.popleft().result()

    def _digest_piece(self, view: memoryview) -> None:
        self._digest.update(view)
        if self._deflated is not None:
            self._deflated.put(view)

    def _settle(self) -> None:
        """Wait until every piece written is digested (errors of the digest thread come out here)."""
        while self._digesting:
            self._digesting.popleft().result()

    def write_header(self, names: Iterable[str]) -> None:
        """The header line (column names are ours: plain words)."""
        self._put((",".join(names) + "\n").encode("utf-8"))

    def write(
        self,
        batch: pa.RecordBatch,
        *,
        text_columns: frozenset[str],
        formatted_columns: frozenset[str] = frozenset(),
        json_columns: frozenset[str] = frozenset(),
    ) -> None:
        """Append a batch's rows in order (:meth:`lines`, then :meth:`put_lines`)."""
        lines = self.lines(
            batch, text_columns=text_columns, formatted_columns=formatted_columns, json_columns=json_columns
        )
        self.put_lines(lines, batch.num_rows)

    @staticmethod
    def lines(
        batch: pa.RecordBatch,
        *,
        text_columns: frozenset[str],
        formatted_columns: frozenset[str] = frozenset(),
        json_columns: frozenset[str] = frozenset(),
    ) -> pa.Buffer:
        """A batch's CSV lines, not yet written (so another thread can make them). ``formatted_columns``
        hold CSV cell text already (count maps): written as they are; ``text_columns`` are neutralised
        against formulas; every column is quoted where needed; ``json_columns`` (text columns of JSON maps)
        take :func:`csv_json_cells`, which gives the same."""
        if batch.num_rows == 0:
            return pa.py_buffer(b"")
        columns = [
            ac.fill_null(batch.column(i), "")
            if name in formatted_columns
            else csv_json_cells(batch.column(i))
            if name in json_columns and name in text_columns
            else csv_cells(batch.column(i), text=name in text_columns)
            for i, name in enumerate(batch.schema.names)
        ]
        return csv_lines(columns)

    def put_lines(self, lines: pa.Buffer, rows: int) -> None:
        """Append lines made by :meth:`lines` (in the order of their batches), or a piece of them: ``rows``
        counts the rows they complete."""
        if lines.size:
            self._put(lines)
        self.rows += rows

    def commit(self) -> None:
        """Make the file (and its deflated copy) appear at its path (atomically replacing any file there).

        If that fails, neither is left: the sink is aborted and a deflated copy already in place removed."""
        try:
            self._settle()
            self._digester.shutdown()
            if self._deflated is not None:
                self._deflated.commit()
            self._staged.commit()
        except BaseException:
            self.abort()
            if self._deflated is not None:
                self._deflated.remove()
            raise

    def abort(self) -> None:
        """Discard everything written (idempotent; also after a commit it does nothing)."""
        self._digester.shutdown(cancel_futures=True)
        self._digesting.clear()
        if self._deflated is not None:
            self._deflated.abort()
        self._staged.abort()
