"""Unsupervised keypoints: the StableKeypoints teacher (ported from the official code) and what turns its
K points into a deployable student: pseudo-labels, the linear read-out to named joints, distillation.

Coordinates are (x, y) everywhere in this package (the official code mixes (row, col) from its argmax
with (x, y) elsewhere; see ``methods.md`` §3.5).
"""
