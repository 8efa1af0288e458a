"""Exceptions of the engine, by fault. Each also derives from the builtin a Python user
would catch for it, so ``except ValueError`` still works around a bad pipeline."""


class EngineError(Exception):
    """Base class of every error the engine raises."""


class PipelineError(EngineError, ValueError):
    """Problems in a pipeline's text or its steps, each at its place.

    ``diagnostics`` lists them as dicts with ``file``, ``line``, ``column``, ``message`` and
    ``help``; ``str(e)`` shows them with the offending lines, as ``engine check`` prints them.
    """

    diagnostics: list

    def __init__(self, message, diagnostics=None):
        super().__init__(message)
        self.diagnostics = diagnostics or []


class UsageError(EngineError, ValueError):
    """An impossible request: an unknown element, a selection out of range, a bad option."""


class FormatError(EngineError, ValueError):
    """A file that does not follow the AnnData on-disk format, or is damaged."""


class UnsupportedError(EngineError, NotImplementedError):
    """An encoding or feature the engine does not read (yet)."""


class StorageError(EngineError, OSError):
    """The operating system, a storage library or a remote store failed."""


class DataError(EngineError, ValueError):
    """Values a step cannot compute with (NaN where numbers are needed, …)."""


class ResourceError(EngineError, MemoryError):
    """A memory or resource limit was hit."""


class InternalError(EngineError, RuntimeError):
    """A bug in the engine; please report it."""


__all__ = [
    "EngineError",
    "PipelineError",
    "UsageError",
    "FormatError",
    "UnsupportedError",
    "StorageError",
    "DataError",
    "ResourceError",
    "InternalError",
]
