"""Nothing outside the bundled assets is ever fetched: a loopback HTTP server counts every request.

Two ways in: through a data value (the workspace name; autoescape makes it text) and through a template
(copied and edited here; the strict fetcher aborts the render). Both network (http) and local files
(``file:``), ``data:`` URLs and path traversal out of the template folder are tried.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar, asgi
from litestar.types import HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send

from odeus_compliance.policy.loader import load_policy
from odeus_compliance.reports.content import ReportContent, build_content
from odeus_compliance.reports.fetcher import BASE_URL, BlockedURL, BundledAssetFetcher
from odeus_compliance.reports.render import RenderError, render_pdf
from tests.support.reportdata import POLICIES, TEMPLATES, meta_for, run_policy, simulator_export
from tests.support.server import run_server

SECRET_FILE_TEXT = "odeus-fetch-canary-7f3a"


@dataclasses.dataclass
class Canary:
    url: str
    hits: list[str]


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    hits: list[str] = []

    @asgi("/", is_mount=True, copy_scope=True)
    async def anything(scope: Scope, receive: Receive, send: Send) -> None:
        hits.append(str(scope.get("path", "")))
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/css")],
        }
        body: HTTPResponseBodyEvent = {
            "type": "http.response.body",
            "body": b"body { background: red; }",
            "more_body": False,
        }
        await send(start)
        await send(body)

    with run_server(Litestar([anything])) as url:
        yield Canary(url, hits)


@pytest.fixture(scope="module")
def content(tmp_path_factory: pytest.TempPathFactory) -> ReportContent:
    tmp = tmp_path_factory.mktemp("fetch")
    policy = load_policy(POLICIES / "default.toml")
    run = run_policy(policy, simulator_export(tmp / "raw.csv", users=60, byok=False), tmp)
    return build_content(dataset_csv=run.dataset, manifest=run.manifest, policy=policy, meta=meta_for(policy))


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(SECRET_FILE_TEXT, encoding="utf-8")
    return path


def _payloads(canary: Canary, secret: Path) -> list[str]:
    http = canary.url
    return [
        f'<img src="{http}/img">',
        f'<link rel="stylesheet" href="{http}/style.css">',
        f'<link rel="attachment" href="{secret.as_uri()}">',
        f'<a rel="attachment" href="{http}/attach">x</a>',
        f'<style>@import url("{http}/import.css");</style>',
        f'<div style="background: url({http}/bg)">x</div>',
        f'<svg xmlns="http://www.w3.org/2000/svg"><image href="{http}/svg"/></svg>',
        f'<object data="{http}/object"></object>',
        f'<img src="{secret.as_uri()}">',
    ]


def _text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "out.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout


def _attachments(pdf: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "listed.pdf"
    path.write_bytes(pdf)
    listing = subprocess.run(["pdfdetach", "-list", str(path)], capture_output=True, text=True, check=True)
    return listing.stdout.splitlines()[1:]


def test_urls_in_a_data_value_are_printed_as_text_never_fetched(
    canary: Canary, content: ReportContent, secret_file: Path, tmp_path: Path
) -> None:
    before = len(canary.hits)
    injected = " ".join(_payloads(canary, secret_file))
    hostile = dataclasses.replace(content, meta=dataclasses.replace(content.meta, workspace=injected))
    pdf = render_pdf(hostile, template_dir=TEMPLATES, attachments=())
    assert len(canary.hits) == before
    text = _text(pdf, tmp_path)
    assert "<img src=" in text.replace("\n", " ")  # shown as the literal text it is
    assert SECRET_FILE_TEXT not in text
    assert _attachments(pdf, tmp_path) == []
    assert SECRET_FILE_TEXT.encode() not in pdf


@pytest.mark.parametrize("index", range(9))
def test_a_template_that_asks_for_any_other_url_aborts_the_render(
    canary: Canary, content: ReportContent, secret_file: Path, tmp_path: Path, index: int
) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    page = templates / "report.html.j2"
    payload = _payloads(canary, secret_file)[index].replace("{", "{{ '{' }}")
    page.write_text(page.read_text(encoding="utf-8").replace("<body>", "<body>" + payload), encoding="utf-8")
    before = len(canary.hits)
    with pytest.raises(RenderError, match="outside the bundled assets") as caught:
        render_pdf(content, template_dir=templates, attachments=())
    assert len(canary.hits) == before
    assert canary.url not in str(caught.value)
    assert str(secret_file) not in str(caught.value)


@pytest.mark.parametrize(
    "css",
    [
        '@import url("../report.css");',
        '@font-face { font-family: X; src: url("fonts/../../etc/passwd"); } p { font-family: X; }',
        'p { background: url("data:image/svg+xml,<svg xmlns=%22http://www.w3.org/2000/svg%22/>"); }',
        'p { background: url("/report.css?x=1"); }',
        'p { background: url("https://report-assets.invalid:443/report.css"); }',
    ],
)
def test_a_stylesheet_cannot_reach_outside_the_bundle(
    content: ReportContent, tmp_path: Path, css: str
) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    sheet = templates / "report.css"
    sheet.write_text(css + "\n" + sheet.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(RenderError):
        render_pdf(content, template_dir=templates, attachments=())


def test_the_fetcher_serves_only_assets_inside_the_folder(tmp_path: Path) -> None:
    (tmp_path / "a.css").write_text("p{}", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not an asset", encoding="utf-8")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.css"
    outside.write_text("p{}", encoding="utf-8")
    (tmp_path / "link.css").symlink_to(outside)
    fetcher = BundledAssetFetcher(tmp_path)
    response = fetcher.fetch(BASE_URL + "a.css")
    assert response.read() == b"p{}"
    assert response.content_type == "text/css"
    for url in [
        BASE_URL + "notes.txt",
        BASE_URL + "link.css",
        BASE_URL + "x/../a.css",
        BASE_URL + "%2e%2e/a.css",
        BASE_URL + "a.css?v=1",
        "http://report-assets.invalid/a.css",
        (tmp_path / "a.css").as_uri(),
        "data:text/css,p{}",
        "https://report-assets.invalid:x-secret/a.css",  # a port that is no number
    ]:
        with pytest.raises(BlockedURL) as caught:
            fetcher.fetch(url)
        assert url not in str(caught.value)
        assert "secret" not in str(caught.value)
    assert fetcher.refused == 9


def test_control_weasyprints_default_fetcher_does_reach_the_canary(canary: Canary, secret_file: Path) -> None:
    # Proves the canary counts real fetches, so the zero counts above mean something.
    import weasyprint  # noqa: PLC0415 - only this control test uses WeasyPrint directly

    before = len(canary.hits)
    html = "<html><body>" + "".join(_payloads(canary, secret_file)) + "</body></html>"
    pdf = weasyprint.HTML(string=html, base_url=str(secret_file.parent)).write_pdf(uncompressed_pdf=True)
    assert len(canary.hits) > before
    assert SECRET_FILE_TEXT.encode() in pdf  # the default fetcher even embedded the local file
