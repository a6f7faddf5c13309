"""Not runtime code: measuring HAT-Net (OpenMMLab keeps this in
``tools/analysis_tools``).

- ``flops``: the one MAC counter; parameters and FLOPs of a config's model
  (``tools/get_flops.py``).
- ``release``: the one reference computation of the authors' release, used
  by the tests (exactness) and the benchmark (its baseline), and a loader
  for the authors' own ``HAT_Net.py``.
- ``benchmark``: speed and memory against that baseline and other
  backbones (``tools/benchmark.py``).
"""
