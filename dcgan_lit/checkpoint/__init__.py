"""Checkpoints: atomic writes, safe loading and the one cache-or-build of tensor files (io), networks rebuilt from
checkpoints and the standalone generator file (load), and what ``ckpt_path=`` resumes from (resume)."""
