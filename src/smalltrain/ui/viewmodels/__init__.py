"""What the pages and the API show, built from the service and the stores (no gradio here).

- ``backend``: ``Backend``, what the UI and the API both do (one place).
- ``datasets``: registering datasets by path and by upload; ``jobs``: a job's view (events,
  curves, speed); ``settings``: the remembered train form per dataset; ``resources``: CPU, RAM
  and GPU sampling; ``render`` / ``charts``: HTML and SVG pieces.
"""
