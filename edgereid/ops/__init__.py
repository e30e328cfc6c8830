"""The arithmetic training and deployment share, in NumPy and OpenCV only (floor 0 of the layout).

``geometry`` (crop plans, affine maps, the face template), ``preprocess`` (the OpenCV preprocessing),
``reference`` (its pure-NumPy specification), ``postprocess`` (the one ``l2_normalize``, read-outs) and
``scores`` (thresholds at a false-accept rate). Nothing here imports above the core modules.
"""
