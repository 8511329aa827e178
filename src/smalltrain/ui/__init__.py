"""The web face: a Gradio UI and a JSON HTTP API on one local server (``smalltrain ui``).

It talks only to ``service`` (``TrainingManager``, dataset registration, job planning) and the
stores, plus the tasks' public "use" APIs, which run in child processes like training does:
the server process never trains, inspects a large folder, generates or predicts. Nothing in
``engine`` or ``tasks`` knows this package exists.

- ``server/``: the app, the JSON API, the auth and host checks, the server's options.
- ``child/``: the work done in child processes (the pool, the calls, the "use" actions).
- ``viewmodels/``: what the pages and the API show (``Backend`` and its parts; no gradio).
- ``views/``: the Gradio tabs, one module per tab.
- ``env``: the offline, private Gradio environment and the UI's folders in the home.

Inside, the folders form layers (an import-linter contract): ``server -> views ->
viewmodels -> child -> env``.
"""
