"""epos-bridge: serves Dojo's EPOS Data requests from the venue's own POS database.

Importing the package imports no Qt: the headless bridge runs without a display.
"""

__version__ = "0.1.0"
