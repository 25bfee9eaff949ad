"""The one report writer: run directories, tidy tables, summaries and figures."""
