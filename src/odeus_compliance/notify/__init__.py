"""Notifications out of the service: Standard Webhooks (:mod:`.webhook`) and e-mail over SMTP (:mod:`.mail`).

Used by scheduled runs (a report ready, a run failed) and the daily retention run (done, failed). Messages
carry ids, periods, counts and reason codes, never personal data.
"""
