"""The command-line layer: parsing, common options, one-line errors. Library code never imports it."""
from probekit.cli.options import *  # noqa: F401,F403
from probekit.cli.options import __all__ as _options_all
from probekit.cli.generate import add_options, options_parser, parse_options  # noqa: F401
from probekit.cli.table import (classifier_output, command, report_files, results_command, table_command,  # noqa: F401
                    task_options)

__all__ = [*_options_all, "add_options", "options_parser", "parse_options", "results_command", "table_command",
           "command", "classifier_output", "report_files", "task_options"]
