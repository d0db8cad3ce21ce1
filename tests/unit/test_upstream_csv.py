"""Parsing export CSVs into typed batches: every variant the contract allows, every malformed case."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from odeus_compliance.upstream.anonymisation import Anonymisation, AnonymisationTracker
from odeus_compliance.upstream.batches import ExportBatch
from odeus_compliance.upstream.columns import ExportType
from odeus_compliance.upstream.csvstream import CsvExportParser, parse_csv
from odeus_compliance.upstream.errors import DownloadIncomplete, MalformedExport

HEADER = (
    "period_start,period_end,org_id,project_id,project_name,project_owner_id,project_owner_email,messages\n"
)
ROW = '2026-03-01,2026-03-31,org_1,prj_1,"Apollo, phase 2",usr_1,ana@example.com,12\n'


def _batches(data: bytes, export_type: ExportType = ExportType.PROJECTS, chunk: int = 7) -> list[ExportBatch]:
    return list(
        parse_csv((data[i : i + chunk] for i in range(0, len(data), chunk)), export_type, block_bytes=1 << 16)
    )


def _rows(
    data: bytes, export_type: ExportType = ExportType.PROJECTS, chunk: int = 7
) -> list[dict[str, object]]:
    return [row for batch in _batches(data, export_type, chunk) for row in batch.rows()]


def test_typed_values_of_a_projects_row() -> None:
    (row,) = _rows((HEADER + ROW).encode())
    assert row == {
        "period_start": date(2026, 3, 1),
        "period_end": date(2026, 3, 31),
        "org_id": "org_1",
        "project_id": "prj_1",
        "project_name": "Apollo, phase 2",
        "project_owner_id": "usr_1",
        "project_owner_email": "ana@example.com",
        "messages": 12,
    }


@pytest.mark.parametrize("written", ["12", "12.0", '"12"', '"12.000"', " 12"])
def test_whole_numbers_in_every_style(written: str) -> None:
    (row,) = _rows((HEADER + ROW.replace(",12\n", f",{written}\n")).encode())
    assert row["messages"] == 12
    assert type(row["messages"]) is int


@pytest.mark.parametrize("written", ["12.5", "twelve", "1.0000000000000000001", "true"])
def test_a_number_that_is_not_whole_is_refused(written: str) -> None:
    with pytest.raises(MalformedExport, match="'messages'") as caught:
        _rows((HEADER + ROW.replace(",12\n", f",{written}\n")).encode())
    assert written not in str(caught.value)


def test_empty_cells_are_none_for_every_kind() -> None:
    (row,) = _rows((HEADER + '2026-03-01,2026-03-31,org_1,prj_1,"",,,\n').encode())
    assert row["project_name"] is None
    assert row["project_owner_email"] is None
    assert row["messages"] is None


USERS_HEADER = (
    "period_start,period_end,org_id,user_id,name,email,joined_at,payg_limit_current,payg_consumption_in_period,"
    "payg_utilization_pct_current,messages_total,assistants_to_messages,total_cost_usd\n"
)


def test_users_decimals_dates_and_json_maps() -> None:
    line = (
        "2026-03-01,2026-03-31,org_1,usr_1,Ana,ana@example.com,2025-01-02,50,12.345,24.69,7,"
        '"{""asst_1"": 3, ""asst_2"": 4.0}",0.30000000000000004\n'
    )
    (row,) = _rows((USERS_HEADER + line).encode(), ExportType.USERS)
    assert row["joined_at"] == date(2025, 1, 2)
    assert row["payg_limit_current"] == Decimal(50)
    assert row["payg_consumption_in_period"] == Decimal("12.345")
    assert str(row["payg_utilization_pct_current"]) == "24.69"
    assert row["assistants_to_messages"] == {"asst_1": 3, "asst_2": 4}
    assert row["total_cost_usd"] == Decimal("0.30000000000000004")
    assert row["messages_total"] == 7


@pytest.mark.parametrize(
    "cell", ['"{""a"": 1.5}"', '"[1, 2]"', '"{""a"": ""x""}"', "nope", '"{""a"": 1}, {}"']
)
def test_a_json_map_cell_that_is_not_a_count_map_is_refused(cell: str) -> None:
    line = f"2026-03-01,2026-03-31,org_1,usr_1,Ana,a@b.c,2025-01-02,50,1,2,7,{cell},1\n"
    with pytest.raises(MalformedExport, match="assistants_to_messages"):
        _rows((USERS_HEADER + line).encode(), ExportType.USERS)


def test_models_booleans() -> None:
    data = b"period_start,period_end,org_id,name,provider,bring_your_keys,requests\n"
    data += b"2026-03-01,2026-03-31,o,gpt-4o,openai,true,3\n2026-03-01,2026-03-31,o,m2,p,FALSE,4\n"
    assert [r["bring_your_keys"] for r in _rows(data, ExportType.MODELS)] == [True, False]


def test_known_columns_in_another_order_and_unknown_columns_kept_as_text() -> None:
    data = b"org_id,messages,period_end,surprise,project_id,period_start\n"
    data += b"org_1,5,2026-03-31,42,prj_1,2026-03-01\n"
    parser = CsvExportParser(ExportType.PROJECTS)
    batches = [*parser.feed(data), *parser.finish()]
    assert parser.schema is not None
    assert parser.schema.unknown == ("surprise",)
    (row,) = [r for b in batches for r in b.rows()]
    assert row["surprise"] == "42"
    assert row["messages"] == 5
    assert row["period_start"] == date(2026, 3, 1)


def test_header_only_is_zero_rows() -> None:
    parser = CsvExportParser(ExportType.PROJECTS)
    batches = [*parser.feed(HEADER.encode()), *parser.finish()]
    assert batches == []
    assert parser.rows == 0
    assert parser.schema is not None


@pytest.mark.parametrize("header", ["period_end,org_id,messages\n", "period_start,period_end,project_id\n"])
def test_a_header_without_the_period_columns_is_malformed(header: str) -> None:
    with pytest.raises(MalformedExport, match="every export starts with"):
        _rows(header.encode())


def test_a_header_naming_a_column_twice_is_malformed() -> None:
    with pytest.raises(MalformedExport, match="twice"):
        _rows(b"period_start,period_end,org_id,org_id\n")


def test_an_empty_file_is_malformed() -> None:
    with pytest.raises(MalformedExport, match="empty"):
        _rows(b"")


@pytest.mark.parametrize("cut", [1, 5, len(ROW) - 1])
def test_a_last_line_without_its_line_end_is_an_incomplete_download(cut: int) -> None:
    with pytest.raises(DownloadIncomplete, match="cut"):
        _rows((HEADER + ROW + ROW[:cut]).encode())


def test_a_header_without_its_line_end_is_an_incomplete_download() -> None:
    with pytest.raises(DownloadIncomplete):
        _rows(HEADER.rstrip("\n").encode())


@pytest.mark.parametrize(
    "line",
    [
        "2026-03-01,2026-03-31,org_1,prj_1,Apollo,usr_1,secret@example.com\n",
        "2026-03-01,2026-03-31,org_1,prj_1,Apollo,usr_1,secret@example.com,1,2\n",
    ],
)
def test_a_row_with_the_wrong_number_of_cells_is_malformed_and_not_quoted(line: str) -> None:
    with pytest.raises(MalformedExport, match="cells where the header has 8") as caught:
        _rows((HEADER + ROW + line).encode())
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("body", [ROW + "\n" + ROW, "\n" + ROW, ROW + "\n", ROW.replace("2026-03-01", "")])
def test_an_empty_line_or_a_row_without_its_period_is_malformed(body: str) -> None:
    with pytest.raises(MalformedExport, match="has no period_start"):
        _rows((HEADER + body).encode())


@pytest.mark.parametrize(
    "line",
    [
        '2026-03-01,2026-03-31,org_1,prj_1,"Apo"llo,usr_1,a@b.c,1\n',
        '2026-03-01,2026-03-31,org_1,prj_1,Apo"llo,usr_1,a@b.c,1\n',
    ],
)
def test_badly_quoted_cells_are_malformed(line: str) -> None:
    with pytest.raises(MalformedExport, match=r"badly quoted|not closed"):
        _rows((HEADER + line).encode())


def test_an_unterminated_quote_is_malformed() -> None:
    with pytest.raises(MalformedExport, match="not closed"):
        _rows((HEADER + '2026-03-01,2026-03-31,org_1,prj_1,"Apollo,usr_1,a@b.c,1\n').encode())


def test_an_unterminated_quote_cannot_grow_the_buffer_without_bound() -> None:
    parser = CsvExportParser(ExportType.PROJECTS, block_bytes=1 << 16, max_record_bytes=1 << 16)
    list(parser.feed(HEADER.encode() + b'2026-03-01,2026-03-31,org_1,prj_1,"'))

    def feed_forever() -> None:
        for _ in range(100):
            list(parser.feed(b"x" * 4096 + b"\n"))

    with pytest.raises(MalformedExport, match="not closed"):
        feed_forever()


@pytest.mark.parametrize("cell", ["2026-02-30", "03/01/2026", "2026-3-1"])
def test_an_invalid_date_is_malformed(cell: str) -> None:
    with pytest.raises(MalformedExport, match="'period_start'"):
        _rows((HEADER + ROW.replace("2026-03-01", cell, 1)).encode())


def test_quoted_line_ends_and_quotes_survive_any_chunking() -> None:
    name = '"Line one\nline ""two"", end"'
    body = "".join(ROW.replace('"Apollo, phase 2"', name).replace("prj_1", f"prj_{i}") for i in range(300))
    data = (HEADER + body).encode()
    expected = _rows(data, chunk=len(data))
    assert len(expected) == 300
    assert expected[0]["project_name"] == 'Line one\nline "two", end'
    for chunk in (1, 3, 64, 1000):
        assert _rows(data, chunk=chunk) == expected


def test_many_blocks_keep_row_order_and_count() -> None:
    body = "".join(ROW.replace("prj_1", f"prj_{i}") for i in range(5000))
    batches = list(parse_csv([(HEADER + body).encode()], ExportType.PROJECTS, block_bytes=1 << 16))
    assert len(batches) > 1
    ids = [row["project_id"] for b in batches for row in b.rows()]
    assert ids == [f"prj_{i}" for i in range(5000)]


def test_crlf_line_ends_are_accepted() -> None:
    assert len(_rows((HEADER + ROW + ROW).replace("\n", "\r\n").encode())) == 2


def test_record_batch_is_typed() -> None:
    line = '2026-03-01,2026-03-31,org_1,usr_1,Ana,a@b.c,2025-01-02,50,1,2,7,"{""x"": 1}",1\n'
    (batch,) = _batches((USERS_HEADER + line + line.replace(',"{""x"": 1}"', ",")).encode(), ExportType.USERS)
    schema = batch.record_batch.schema
    assert str(schema.field("messages_total").type) == "int64"
    assert str(schema.field("assistants_to_messages").type) == "map<string, int64>"
    assert batch.record_batch.column("assistants_to_messages").to_pylist() == [[("x", 1)], None]


def _anonymised(data: bytes) -> dict[str, tuple[Anonymisation, bool]]:
    parser = CsvExportParser(ExportType.USERS)
    batches = [*parser.feed(data), *parser.finish()]
    assert parser.schema is not None
    tracker = AnonymisationTracker(parser.schema)
    for batch in batches:
        tracker.observe(batch)
    return {item.column: (item.how, item.complete) for item in tracker.report()}


def test_anonymisation_removed_empty_placeholder_and_opaque_ids() -> None:
    header = b"period_start,period_end,org_id,user_id,name,messages_total\n"
    rows = b"2026-03-01,2026-03-31,o,anon_1a2b,Anonymous,1\n2026-03-01,2026-03-31,o,anon_3c4d,,2\n"
    found = _anonymised(header + rows)
    assert found == {
        "email": (Anonymisation.REMOVED, True),
        "user_id": (Anonymisation.OPAQUE_IDS, True),
        "name": (Anonymisation.PLACEHOLDER, True),
    }


def test_anonymisation_empty_columns_and_partial() -> None:
    header = b"period_start,period_end,org_id,user_id,name,email\n"
    rows = b"2026-03-01,2026-03-31,o,usr_1,,\n2026-03-01,2026-03-31,o,usr_2,Ana,\n"
    found = _anonymised(header + rows)
    assert found == {
        "name": (Anonymisation.EMPTY, False),
        "email": (Anonymisation.EMPTY, True),
    }


def test_clear_identifying_columns_are_not_reported() -> None:
    header = b"period_start,period_end,org_id,user_id,name,email\n"
    assert _anonymised(header + b"2026-03-01,2026-03-31,o,usr_1,Ana,a@b.c\n") == {}
