"""ua-dispatch: deliver a supporter's approved Urgent Action appeal to officials."""

__version__ = "0.1.0"
