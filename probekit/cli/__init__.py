"""The command-line layer: parsing, common options, one-line errors. Library code never imports it."""
from .options import *  # noqa: F401,F403
from .options import __all__  # noqa: F401
