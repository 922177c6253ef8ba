"""The tracking server: MLflow's REST API 2.0, the artifact proxy and (when installed) the UI.

`mltrail.server.app.create_app(settings)` builds the ASGI app; `mltrail server` runs it on uvicorn.
"""
