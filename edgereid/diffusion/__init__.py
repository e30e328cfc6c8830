"""Latent diffusion models for the teachers that need one (StableKeypoints, DCAC).

A model is a folder in Stable Diffusion's ``diffusers`` layout (``unet/``, ``vae/``, ``scheduler/``) so the
same code loads Stable Diffusion 1.5 from a local path or the small world model that
``edgereid diffusion pretrain`` trains on the synthetic world. Nothing is ever downloaded.
"""
