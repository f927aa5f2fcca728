"""MedAI Flow: serve ONNX models for medical images.

The core package imports neither Ray nor FastAPI (see ``serve_app.http`` and
``deployments`` for those rings), so it stays unit-testable in milliseconds.
"""
