"""AIO, "All in One Framework for Multimodal Re-identification in the Wild" (CVPR 2024): a paper
re-implementation. The official code (``lihe404/AIO``) could not be obtained, so every detail not in the
paper's abstract follows secondary summaries or is this SDK's choice (``docs/methods.md`` §2 lists
which); each module says where it departs.

- :mod:`~edgereid.methods.aio.encoder`: the frozen pre-trained transformer (MiniLM) and its tokenizer.
- :mod:`~edgereid.methods.aio.captions`: captions to token ids, attribute words masked for the VA head.
- :mod:`~edgereid.methods.aio.modalities`: missing-modality synthesis (channel-augmented IR, line-art sketch).
- :mod:`~edgereid.methods.aio.model`: tokenizers, multimodal CLS, heads; any subset of modalities.
- :mod:`~edgereid.methods.aio.losses`: the VA and FB losses.
- :mod:`~edgereid.methods.aio.checkpoint`, :mod:`~edgereid.methods.aio.export`, :mod:`~edgereid.methods.aio.query`: saving,
  ONNX branches, and text queries encoded on a CPU with ONNX Runtime.
"""
