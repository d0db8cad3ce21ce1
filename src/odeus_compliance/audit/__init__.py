"""The audit log: encrypted, tamper-evident records of who accessed what, and everything that reads them.

The formats are public (docs/audit-bundle.md): auditors check them with their own tools. The
pure core (no database, no HTTP) fixes them:

- :mod:`~odeus_compliance.audit.records`: the audit record, its enumerations and its canonical JSON.
- :mod:`~odeus_compliance.audit.leaf`: the leaf text: AES-256-GCM envelope, salted commitment.
- :mod:`~odeus_compliance.audit.merkle`: the RFC 9162 Merkle tree, proofs and their strict verification.
- :mod:`~odeus_compliance.audit.note`, :mod:`~odeus_compliance.audit.checkpoint`: C2SP signed notes with
  Ed25519 and ``vkey`` verifier keys; tlog-checkpoint bodies.
- :mod:`~odeus_compliance.audit.bundle_format`, :mod:`~odeus_compliance.audit.bundle_build`: the export
  bundle's JSON and its strict parser; assembling a bundle with every proof checked.
- :mod:`~odeus_compliance.audit.bundle_verify`, :mod:`~odeus_compliance.audit.log_verify`: the offline
  bundle verifier; full verification of the stored log. Both report through
  :mod:`~odeus_compliance.audit.verdict`.

Writing (database): :mod:`~odeus_compliance.audit.appender` (group commit, checkpoints) over
:mod:`~odeus_compliance.audit.batch` (one batch prepared, pure), :mod:`~odeus_compliance.audit.sqlite_channel`
(SQLite's own writer thread) and :mod:`~odeus_compliance.audit.store` (the tables). Who writes a record:
:mod:`~odeus_compliance.audit.recorder` (an actor bound to the log), :mod:`~odeus_compliance.audit.standalone`
(for commands outside the service) and :mod:`~odeus_compliance.audit.recording` (from an HTTP request).
The audited actions on the log and its keys: :mod:`~odeus_compliance.audit.actions` (verify, export) and
:mod:`~odeus_compliance.audit.key_actions` (a new key epoch).

Reading (database, HTTP): :mod:`~odeus_compliance.audit.service` (entries, proofs, verification, exports)
and :mod:`~odeus_compliance.audit.controllers` (the auditor API, ``/api/v1/audit/...``).
"""
