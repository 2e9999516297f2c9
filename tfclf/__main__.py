"""`python -m tfclf` is the `tfclf` command."""
import sys

from tfclf import cli

sys.exit(cli.main(command_name="python -m tfclf"))
