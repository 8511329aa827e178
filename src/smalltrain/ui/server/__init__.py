"""The local server: one ASGI app serving the Gradio UI and the JSON API.

- ``app``: builds the app, puts it behind the guards (``protect``) and serves it (imports
  gradio; only ``smalltrain ui`` imports it).
- ``api``: the JSON endpoints and the event stream; ``inputs``: bounded reading of requests and
  error responses; ``uploads``: multipart bodies streamed to disk.
- ``guard`` (Host, Origin, body type and size), ``auth`` (token or Basic auth), ``token``,
  ``throttle``: the checks in front of every route (docs/SECURITY.md); ``options``: host, port,
  auth and token settings.
"""
