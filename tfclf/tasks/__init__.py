"""Tasks: what a run predicts and how it is judged (task.py); kinds.py picks one."""
