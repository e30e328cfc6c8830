"""Camera footage of the synthetic world as video files, for apps that read video (the gateway sample)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2

from edgereid.data.synthetic import World
from edgereid.errors import EdgeReidError, InputError
from edgereid.fileio import atomic_write_text

FPS = 10.0


def write_scene_videos(world: World, root: str | Path, frames: int = 200, pace: float = 2.0,
                       people_per_frame: int = 4) -> list[Path]:
    """One ``cam{c}.mp4`` per camera (10 fps), plus ``cam{c}.json`` with the true boxes per frame."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for camera in world.cameras:
        path = root / f"cam{camera.cam_id}.mp4"
        if path.is_symlink():
            raise InputError(f"{path} is a symbolic link", expected="a new file (synth never writes through links)",
                             fix="remove the link or write to another folder")
        truth = []
        writer = None
        for frame in world.scene(camera.cam_id, frames, pace=pace, people_per_frame=people_per_frame):
            if writer is None:
                height, width = frame.frame.shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (width, height))
                if not writer.isOpened():
                    raise EdgeReidError(f"OpenCV cannot write {path}", fix="check the folder is writable")
            writer.write(frame.frame)
            truth.append({"frame": frame.frame_index, "persons": [
                {"pid": p.pid, "box": [round(float(v), 1) for v in p.box]} for p in frame.persons]})
        if writer is not None:
            writer.release()
        atomic_write_text(root / f"cam{camera.cam_id}.json", json.dumps(truth))
        paths.append(path)
    return paths
