"""Not runtime: deployment, the logic of ``tools/export_onnx.py``.

- ``export``: a config's model (or its backbone) to ONNX with static or
  dynamic shapes, verified in onnxruntime against eager PyTorch.
"""
