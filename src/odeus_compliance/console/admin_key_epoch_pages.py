"""The admins' key-epoch page: every key of the key ring (id, kind, epoch, when it began, whether it is the
current one, retired or destroyed; never key material), and starting a new epoch of a data-key kind after a
confirmation, through the flow ``keys rotate`` calls (``rotate_epoch``, recorded as ``key.rotated`` with
the person as the actor). The checkpoint-signing key is not rotated here, as not on the command line."""

from __future__ import annotations

from typing import Any, Final

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from odeus_compliance.audit.key_actions import rotate_epoch
from odeus_compliance.audit.recording import recorder_of
from odeus_compliance.console.admin_format import utc_time
from odeus_compliance.console.routing import console_page
from odeus_compliance.console.web import page
from odeus_compliance.errors import NotFound
from odeus_compliance.keys.ring import ROTATABLE_KINDS, EpochInfo, KeyKind, describe_epochs
from odeus_compliance.security import Role

__all__ = ["KEY_EPOCH_PAGES"]

_ADMIN: Final = console_page(Role.ADMIN)
_EFFECT: Final = {
    KeyKind.AUDIT_DATA: "New audit records are encrypted under the new key. Older records stay under the "
    "key they were written with, until retention destroys it.",
    KeyKind.PSEUDONYMISATION: "Reports made from now on use new keyed tokens: the same person gets a "
    "different token than in earlier reports, so new reports cannot be linked to old ones.",
    KeyKind.REPORT_DATA: "Reports stored from now on are encrypted under the new key. Stored reports stay "
    "under the key they were stored with, until retention destroys it.",
}


def _rows(epochs: list[EpochInfo]) -> list[dict[str, Any]]:
    """Each key with its state: the newest epoch of a kind is current, older live ones retired."""
    newest: dict[str, int] = {}
    for info in epochs:
        newest[info.kind] = max(newest.get(info.kind, 0), info.epoch)
    rows = []
    for info in epochs:
        state = (
            "destroyed"
            if info.destroyed_at is not None
            else "current"
            if info.epoch == newest[info.kind]
            else "retired"
        )
        rows.append(
            {
                "key_id": info.key_id,
                "kind": info.kind,
                "epoch": info.epoch,
                "created": utc_time(info.created_at),
                "destroyed": utc_time(info.destroyed_at),
                "state": state,
            }
        )
    return rows


def _rotatable(kind: str) -> KeyKind:
    try:
        member = KeyKind(kind)
    except ValueError:
        member = None
    if member is None or member not in ROTATABLE_KINDS:
        raise NotFound("there is no kind of key of that name that can be rotated")
    return member


@get("/console/keys", opt=_ADMIN, include_in_schema=False)
async def key_epochs_page(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession]
) -> Response[str]:
    """Every key of the ring, by kind and epoch."""
    epochs = await describe_epochs(executor=db_session)
    return page(
        request,
        "admin/keys.html",
        title="Key epochs",
        epochs=_rows(epochs),
        rotatable=sorted(kind.value for kind in ROTATABLE_KINDS),
        rotated=request.query_params.get("rotated") == "1",
    )


@get("/console/keys/{kind:str}/rotate", opt=_ADMIN, include_in_schema=False)
async def rotate_page(request: Request[Any, Any, Any], kind: FromPath[str]) -> Response[str]:
    """Asks whether to start a new epoch of ``kind``, saying what that changes."""
    member = _rotatable(kind)
    return page(
        request, "admin/key_rotate.html", title="Rotate a key", kind=member.value, effect=_EFFECT[member]
    )


@post("/console/keys/{kind:str}/rotate", opt=_ADMIN, include_in_schema=False, status_code=303)
async def rotate_key(
    request: Request[Any, Any, Any], kind: FromPath[str], db_session: NamedDependency[AsyncSession]
) -> Response[str]:
    """Start a new epoch of ``kind`` now."""
    member = _rotatable(kind)
    recorder = recorder_of(request)
    await rotate_epoch(recorder, session=db_session, kek=recorder.appender.kek, kind=member)
    return Response("", status_code=303, headers={"Location": "/console/keys?rotated=1"})


KEY_EPOCH_PAGES: Final = (key_epochs_page, rotate_page, rotate_key)
