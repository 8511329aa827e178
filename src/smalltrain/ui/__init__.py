"""The web face: a Gradio UI and a JSON HTTP API on one local server (``smalltrain ui``).

It talks only to ``service`` (``TrainingManager``, dataset registration, job planning) and the
stores, plus the tasks' public "use" APIs, which run in child processes (``pool``, ``ops``)
like training does: the server process never trains, inspects a large folder, generates or
predicts. Nothing in ``engine`` or ``tasks`` knows this package exists.

- ``options``: host, port and auth checks; ``env``: the offline, private Gradio environment.
- ``backend``: what the UI and the API both do (one place); ``pool`` / ``ops``: child work.
- ``settings``: the remembered train form per dataset, YAML export and import.
- ``render`` / ``charts``: HTML and SVG pieces; ``views``: the Gradio tabs.
- ``api``: the JSON endpoints and the event stream; ``auth``: HTTP Basic auth for both.
- ``server``: builds the app and serves it (imports gradio; never imported by light commands).
"""
