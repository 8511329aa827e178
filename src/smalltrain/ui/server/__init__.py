"""The local server: one ASGI app serving the Gradio UI and the JSON API.

- ``app``: builds the app and serves it (imports gradio; only ``smalltrain ui`` imports it).
- ``api``: the JSON endpoints and the event stream.
- ``auth``: the checks in front of every route; ``options``: host, port and auth settings.
"""
