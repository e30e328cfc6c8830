"""Serving (floor 4): the pipeline behind NVIDIA Triton (:mod:`edgereid.serving.triton`, extra ``serve``)."""
