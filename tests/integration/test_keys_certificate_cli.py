"""``odeus-compliance keys init`` and the demo report-signing certificate, as a real subprocess."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from odeus_compliance.keys.certificates import demo_paths
from odeus_compliance.reports.signing import load_signer
from odeus_compliance.settings import Settings
from tests.integration.test_cli import CLI, subprocess_env
from tests.support.tsa import make_test_pki


def keys_init(settings: Settings, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "keys", "init"],
        env={**subprocess_env(settings), **extra},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_keys_init_makes_the_demo_certificate_once_and_never_prints_the_key(
    migrated_settings: Settings,
) -> None:
    first = keys_init(migrated_settings)
    assert first.returncode == 0, first.stderr
    paths = demo_paths(migrated_settings.data_dir)
    assert "created self-signed demo certificate" in first.stderr
    assert str(paths.signer_cert) in first.stderr
    assert "not for production" in first.stderr
    assert [line.split(": ", 1)[0] for line in first.stdout.splitlines()] == ["origin", "vkey"]
    signer = load_signer(migrated_settings)
    assert signer.demo
    cert_before = paths.signer_cert.read_bytes()
    key_before = paths.signer_key.read_bytes()

    second = keys_init(migrated_settings)
    assert second.returncode == 0, second.stderr
    assert "kept the existing self-signed demo certificate" in second.stderr
    assert paths.signer_cert.read_bytes() == cert_before
    assert paths.signer_key.read_bytes() == key_before
    clear_key = signer.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    for run in (first, second):
        output = run.stdout + run.stderr
        assert "PRIVATE KEY" not in output
        assert clear_key.decode().splitlines()[1] not in output


def test_with_a_configured_signing_key_no_demo_certificate_is_made(
    tmp_path: Path, migrated_settings: Settings
) -> None:
    pki = make_test_pki()
    key_file, cert_file = pki.signer.write_pem(tmp_path, "signer", chain=(pki.root.certificate,))
    done = keys_init(
        migrated_settings,
        ODEUS_COMPLIANCE_SIGNING_KEY_FILE=str(key_file),
        ODEUS_COMPLIANCE_SIGNING_CERT_FILE=str(cert_file),
    )
    assert done.returncode == 0, done.stderr
    assert "the configured key and certificate are used" in done.stderr
    assert not demo_paths(migrated_settings.data_dir).folder.exists()
