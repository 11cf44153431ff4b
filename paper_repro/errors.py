"""The one exception type users see: bad input or an impossible request, with a clear message."""


class PaperReproError(Exception):
    """A user-facing error (missing data, bad config, malformed model, impossible parameters).

    The CLI prints ``error: <message>`` and exits with status 2; no traceback is shown.
    """
