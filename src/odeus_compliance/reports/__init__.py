"""Monthly usage reports, from request to signed, archived PDF.

- :mod:`actions`: the audited actions (request, hand out a file, verify), one function each, which every
  entry point calls; :mod:`service`: the rules they and the API share; :mod:`controllers`: the officers' API.
- :mod:`jobs` (the job table, leases), :mod:`runtime` (the job loop), :mod:`flow` (one job: pull through the
  policy engine, render, sign, store, audit), :mod:`worker` (render and sign in a capped process),
  :mod:`versions` (a re-run may not single anyone out), :mod:`store` (encrypted artifacts).
- :mod:`figures` (the model), :mod:`figures_rows`, :mod:`figures_aggregates`, :mod:`figures_read` (reading
  the engine's output), :mod:`content`, :mod:`charts`, :mod:`render` (WeasyPrint), :mod:`signing` and
  :mod:`verify` (pyHanko), :mod:`manifest`, :mod:`pdfmeta`.
"""
