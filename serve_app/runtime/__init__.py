"""ONNX Runtime sessions, batching helpers and output interpretation."""
