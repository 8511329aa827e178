"""The Gradio views of the web UI, one module per tab; ``app.build`` assembles them.

These modules import gradio at module level; only ``smalltrain.ui.server.app`` imports them, and
only the ``smalltrain ui`` command imports that (lazily), so no other command pays for gradio.
"""
