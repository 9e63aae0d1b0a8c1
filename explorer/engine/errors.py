"""Errors a user can cause. str(exc) is one clear sentence meant for the screen."""


class EngineError(Exception):
    """Base class for everything the engine reports to the layers above."""


class ModelLoadError(EngineError):
    """The model could not be loaded: unknown or uncached id, no network, unknown parts."""


class PromptTooLongError(EngineError):
    """The prompt has more positions than the model supports."""
