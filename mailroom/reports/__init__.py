"""Reports: a period's statistics (data) and their output formats."""
