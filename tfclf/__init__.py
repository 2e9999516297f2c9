"""tfclf: train, compare and ship TensorFlow text classifiers. Importing it imports no TensorFlow."""
import os
import signal
import sys

__version__ = "0.2.0"


def _interrupted(kind, value, traceback):
    """Ctrl-C while a command is still importing (TensorFlow takes seconds) ends with one line, not a
    traceback; once a command runs, cli.run_main catches it the same way."""
    if issubclass(kind, KeyboardInterrupt):
        print("tfclf: interrupted", file=sys.stderr)
        os._exit(130)
    sys.__excepthook__(kind, value, traceback)


def _terminated(signum, frame):
    """SIGTERM (`kill`, a scheduler, a container stop) ends a command as Ctrl-C does: one line, exit 130, its
    lock released and its resumable work kept, so the same command resumes."""
    raise KeyboardInterrupt


if sys.argv and (sys.argv[0] == "-m" or os.path.basename(sys.argv[0]) == "tfclf"):  # a command, not a library
    sys.excepthook = _interrupted
    signal.signal(signal.SIGTERM, _terminated)
