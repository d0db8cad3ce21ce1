"""The web console: server-rendered pages (Jinja2 + htmx) under ``/console/`` for officers, auditors and
admins, signed in with the company's identity provider (OIDC) or a one-time link, in database sessions.

Pages are thin: each calls the same service functions and audited flows as the HTTP API, with the session's
person as the actor, so a page shows nothing the same role could not get through the API.
"""
