"""User-facing errors: raised early, printed as one line (what, where, how to fix) without a traceback."""


class UserError(Exception):
    """A mistake in the user's config, data or files; train.py prints it as one line and exits 1."""


class TrainingDiverged(UserError):
    """Training produced a non-finite loss; the run stops and keeps its last good checkpoint."""
