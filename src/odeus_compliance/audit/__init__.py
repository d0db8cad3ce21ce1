"""The audit log's cryptographic core: pure functions and value types, no database, no HTTP.

- :mod:`~odeus_compliance.audit.merkle`: the RFC 9162 Merkle tree, proofs and their strict verification.
- :mod:`~odeus_compliance.audit.note`: C2SP signed notes with Ed25519, and ``vkey`` verifier keys.
- :mod:`~odeus_compliance.audit.checkpoint`: C2SP tlog-checkpoint bodies, signed and verified.
- :mod:`~odeus_compliance.audit.records`: the audit record, its enumerations and its canonical JSON.
- :mod:`~odeus_compliance.audit.leaf`: the leaf text: AES-256-GCM envelope, salted commitment.
- :mod:`~odeus_compliance.audit.bundle`: the export bundle and the offline verifier; full-log verification.

The formats are public (DESIGN.md, docs/audit-bundle.md): auditors check them with their own tools.
"""
