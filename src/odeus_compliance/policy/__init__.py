"""Policies: the files that say how each export column is pseudonymised, minimised or dropped, and the
engine that applies them.

- :mod:`model`, :mod:`loader`, :mod:`canonical`, :mod:`service`: the policy file, validated and hashed.
- :mod:`engine` (two passes over an export), :mod:`columnar`, :mod:`operations`, :mod:`crypto` and
  :mod:`bulktokens` (keyed tokens), :mod:`countmaps`, :mod:`subjects` (one person, one token),
  :mod:`csvlines`/:mod:`csvout` (formula-safe CSV), :mod:`engine_manifest` (the sealed manifest).
- Disclosure control: :mod:`disclosure` (small groups, the k-anonymity gate), :mod:`gated` (the gate on
  spooled lines), :mod:`aggregates` and :mod:`release_audit` (grouped figures audited together),
  :mod:`order` (per-person rows in keyed order), :mod:`leakscan` (no identifying value in the output).
- :mod:`arrow_compute`: the one typed doorway to Arrow's compute kernels.
"""
