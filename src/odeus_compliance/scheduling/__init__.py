"""Scheduled reports: schedule definitions, calendar periods in a schedule's timezone, exactly-once runs.

- :mod:`periods`: monthly, quarterly and weekly periods in an IANA timezone, their due instants.
- :mod:`model`: a schedule's definition, validated (clear errors that never echo secrets).
- :mod:`service`: store and list schedules and their runs; :mod:`changes`: the audited change of one.
- :mod:`claims`: claim a (schedule, period, version) under a unique constraint, with a lease.
- :mod:`runner`: ``run_due(now)``, the flow that claims due periods and follows their report jobs, with
  :mod:`run_settings` (leases, retries), :mod:`queries` (what is due) and :mod:`delivery` (notifying).
- :mod:`webhook`, :mod:`mail`: the signed webhook and the SMTP e-mail sent when a report is ready.
- :mod:`ticker`: the service's loop calling ``run_due``; :mod:`runtime`: the scheduler of a CLI command.
- :mod:`controllers`, :mod:`schemas`: ``GET/PUT /api/v1/schedules``, ``GET /api/v1/schedules/{id}/runs``.

The tables live in the storage layer (:mod:`odeus_compliance.db.schedule_tables`). Every function takes
``now`` (or a clock) from its caller; nothing deep inside reads the system clock, so tests drive time.
"""
