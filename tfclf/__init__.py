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


_interrupt_requested = False


def _ctrl_c(signum, frame):
    """Ctrl-C in a command: KeyboardInterrupt, as Python's own handler raises it, and remembered. A library's
    bare `except:` can swallow the exception (TensorFlow's import runs some, e.g. tensorflow/lite's generated
    schema modules); `stop_if_interrupted()` then raises it again at the next check."""
    global _interrupt_requested
    _interrupt_requested = True
    raise KeyboardInterrupt


def stop_if_interrupted() -> None:
    """Raises KeyboardInterrupt if a command was sent Ctrl-C, even when something swallowed it: called after
    the long imports (tfclf._backend) and where a command's job starts (cli.run_main)."""
    if _interrupt_requested:
        raise KeyboardInterrupt


def _terminated(signum, frame):
    """SIGTERM (`kill`, a scheduler, a container stop) ends a command as Ctrl-C does: one line, exit 130, its
    lock released and its resumable work kept, so the same command resumes."""
    raise KeyboardInterrupt


if sys.argv and (sys.argv[0] == "-m" or os.path.basename(sys.argv[0]) == "tfclf"):  # a command, not a library
    sys.excepthook = _interrupted
    signal.signal(signal.SIGTERM, _terminated)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when started with Ctrl-C ignored
        signal.signal(signal.SIGINT, _ctrl_c)
