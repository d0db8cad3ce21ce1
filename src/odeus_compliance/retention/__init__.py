"""Retention: rules per data class, legal holds, the purge flow and its signed deletion receipts.

- :mod:`~odeus_compliance.retention_rules` (a module below `reports`, which cites them): the data classes,
  their rules from the settings, and the dates
  each report cites (:func:`~odeus_compliance.retention_rules.retention_dates`).
- :mod:`~odeus_compliance.retention.holds`: legal holds (scope, reason, expiry) in the database.
- :mod:`~odeus_compliance.retention.plan`: what is due for deletion at a given instant.
- :mod:`~odeus_compliance.retention.receipts`: the deletion receipts, signed as C2SP notes.
- :mod:`~odeus_compliance.retention.erase`: how each data class is deleted (idempotently).
- :mod:`~odeus_compliance.retention.purge`: the flow of a run (``retention run``, the daily run).

See docs/retention.md.
"""
