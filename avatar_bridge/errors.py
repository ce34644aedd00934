"""One error hierarchy for the whole project.

Library code raises these (``raise ... from e``); only the CLI turns them into a one-line
message and an exit code.
"""

from __future__ import annotations


class AvatarBridgeError(Exception):
    """Base class of every error avatar-bridge raises on purpose."""


class ConfigError(AvatarBridgeError, ValueError):
    """A profile, mapping, option or calibration file is invalid; the message says what and where."""


class InputError(AvatarBridgeError, ValueError):
    """Input media or data cannot be used (missing, not a video, corrupt, no frames...)."""


class ModelError(AvatarBridgeError):
    """A model file is missing or is not the file we expect (wrong sha256)."""


class BackendUnavailableError(AvatarBridgeError):
    """An optional dependency or device is missing; the message names the pip or system step."""


class SinkError(AvatarBridgeError):
    """An output sink could not be opened or could not send."""


class OutputError(AvatarBridgeError):
    """An output file or folder cannot be written."""
