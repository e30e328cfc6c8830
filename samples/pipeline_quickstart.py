#!/usr/bin/env python3
"""The pipeline API in 30 lines: load a config, enroll one person, match them on another frame.

    (uses the bundled default models named in samples/configs/pipeline.yaml)
    python samples/pipeline_quickstart.py
"""

import numpy as np

from edgereid.data.synthetic import World, WorldConfig
from edgereid.gallery import Gallery
from edgereid.pipeline import Pipeline

world = World(WorldConfig(seed=7, num_identities=5, num_cameras=3))
first, later = [next(iter(world.scene(cam, 1))) for cam in (0, 1)]

with Pipeline("samples/configs/pipeline.yaml") as pipeline:
    gallery = Gallery(pipeline.models["reid_model"].card)
    enrolled = pipeline.process([first.frame], [np.stack([p.box for p in first.persons])], "0")[0]
    for person, embedding in zip(first.persons, enrolled.persons.embeddings):
        gallery.enroll(f"id{person.pid}", embedding)
    pipeline.reid_gallery = gallery

    pipeline.submit(later.frame, np.stack([p.box for p in later.persons]), "1", later.timestamp)
    for result in pipeline.results(wait=True):
        for person, identity, score in zip(later.persons, result.persons.identities, result.persons.scores):
            print(f"camera 1: true id{person.pid} -> matched {identity} (cosine {score:.2f})")
