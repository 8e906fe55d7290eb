"""One module per verb (what the CLI calls, through migrate/api.py), and common.py for what they share."""
