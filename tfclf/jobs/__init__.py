"""Jobs: what a command runs, each a short sequence of stages (stages.py): a training run, an export evaluation."""
