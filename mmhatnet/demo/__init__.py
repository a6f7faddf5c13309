"""Not runtime code: the generated data sets (and the main job) that show
HAT-Net learning without downloading anything (``tools/demo.py``,
``tools/make_demo_data.py``)."""
