"""The dataset's deflated copy: made by the policy engine's sink while it writes the CSV, and chosen by the
report worker only when it describes the dataset the report was computed from."""

from __future__ import annotations

import dataclasses
import hashlib
import zlib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from odeus_compliance.policy import csvout
from odeus_compliance.policy.csvout import CsvSink
from odeus_compliance.reports.render import Attachment, DeflatedAttachment
from odeus_compliance.reports.worker import DeflatedDataset, RenderTask, _dataset_attachment


def _batch(start: int, rows: int) -> pa.RecordBatch:
    return pa.record_batch(
        {
            "user_id": [f"psn_{n:06d}" for n in range(start, start + rows)],
            "department": [("=SUM(A1)", "Sales, EMEA", "HR")[n % 3] for n in range(start, start + rows)],
            "messages_total": [str(n * 7) for n in range(start, start + rows)],
        }
    )


def _write(sink: CsvSink) -> None:
    sink.write_header(["user_id", "department", "messages_total"])
    for start in range(0, 30_000, 10_000):
        sink.write(_batch(start, 10_000), text_columns=frozenset({"department"}))


def test_the_deflated_copy_inflates_to_the_csv_and_carries_its_size_md5_and_sha256(tmp_path: Path) -> None:
    sink = CsvSink(tmp_path / "data.csv", deflated=tmp_path / "data.csv.deflate")
    _write(sink)
    sink.commit()

    plain = (tmp_path / "data.csv").read_bytes()
    packed = (tmp_path / "data.csv.deflate").read_bytes()
    assert zlib.decompress(packed) == plain  # one zlib stream: what /FlateDecode reads
    assert plain.count(b"\n") == 30_001
    assert len(packed) == sink.deflated_bytes
    assert len(packed) < len(plain) // 2
    assert sink.bytes == len(plain)
    assert sink.md5 == hashlib.md5(plain, usedforsecurity=False).hexdigest()
    assert sink.sha256 == hashlib.sha256(plain).hexdigest()


def test_without_a_deflated_path_the_sink_writes_only_the_csv(tmp_path: Path) -> None:
    sink = CsvSink(tmp_path / "data.csv")
    _write(sink)
    sink.commit()

    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv"]
    assert sink.md5 is None
    assert sink.deflated_bytes is None


def test_an_aborted_sink_leaves_neither_file(tmp_path: Path) -> None:
    sink = CsvSink(tmp_path / "data.csv", deflated=tmp_path / "data.csv.deflate")
    _write(sink)
    sink.abort()
    sink.abort()  # idempotent

    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def packed_task(tmp_path: Path) -> RenderTask:
    sink = CsvSink(tmp_path / "data.csv", deflated=tmp_path / "data.csv.deflate")
    _write(sink)
    sink.commit()
    fields: dict[str, Any] = {f.name: None for f in dataclasses.fields(RenderTask)}
    fields.update(
        dataset_path=tmp_path / "data.csv",
        attach_dataset=True,
        transformation_manifest={"output": {"sha256": sink.sha256, "rows": sink.rows}},
        dataset_deflated=DeflatedDataset(
            path=tmp_path / "data.csv.deflate", size=sink.bytes, md5=sink.md5 or "", sha256=sink.sha256
        ),
    )
    return RenderTask(**fields)


def test_the_worker_embeds_the_deflated_copy_when_it_describes_the_dataset(packed_task: RenderTask) -> None:
    attachment = _dataset_attachment(packed_task, packed_task.dataset_path.read_bytes())

    assert isinstance(attachment, DeflatedAttachment)
    assert packed_task.dataset_deflated is not None
    assert attachment.deflated == packed_task.dataset_deflated.path.read_bytes()
    assert attachment.sha256 == hashlib.sha256(packed_task.dataset_path.read_bytes()).hexdigest()
    assert attachment.size == packed_task.dataset_path.stat().st_size


@pytest.mark.parametrize("stale", ["sha256", "size"])
def test_a_deflated_copy_of_other_bytes_is_not_used(packed_task: RenderTask, stale: str) -> None:
    assert packed_task.dataset_deflated is not None
    changed = {"sha256": "0" * 64} if stale == "sha256" else {"size": packed_task.dataset_deflated.size + 1}
    task = dataclasses.replace(
        packed_task, dataset_deflated=dataclasses.replace(packed_task.dataset_deflated, **changed)
    )

    attachment = _dataset_attachment(task, task.dataset_path.read_bytes())

    assert isinstance(attachment, Attachment)
    assert attachment.data == task.dataset_path.read_bytes()


def test_a_csv_that_cannot_be_committed_takes_its_deflated_copy_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = CsvSink(tmp_path / "data.csv", deflated=tmp_path / "data.csv.deflate")
    _write(sink)
    commit = csvout._StagedFile.commit

    def commit_but_the_csv(self: Any) -> None:
        if self.path.name == "data.csv":
            raise OSError("disk full (simulated)")
        commit(self)

    monkeypatch.setattr(csvout._StagedFile, "commit", commit_but_the_csv)
    with pytest.raises(OSError, match="simulated"):
        sink.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_error_of_the_digest_thread_reaches_the_writer_and_nothing_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = CsvSink(tmp_path / "data.csv", deflated=tmp_path / "data.csv.deflate")

    def broken(self: Any, view: memoryview) -> None:
        raise OSError("deflated copy: disk full (simulated)")

    def write_and_commit() -> None:
        _write(sink)
        sink.commit()

    monkeypatch.setattr(CsvSink, "_digest_piece", broken)
    with pytest.raises(OSError, match="simulated"):
        write_and_commit()
    sink.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
