"""The error every data loader raises: a malformed file, row or field, named with the fix."""


class DataError(ValueError):
    """A data file is malformed; the message names the file, the line or row, the field and the fix."""
