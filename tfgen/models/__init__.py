"""Model families. Importing this package registers every family."""

from tfgen.models import gan, vae  # noqa: F401
