"""Checkpoints: atomic writes and safe loading (io), networks rebuilt from them and the standalone generator
file (load), what ``ckpt_path=`` resumes from (resume), and the random states an exact resume restores (rng)."""
