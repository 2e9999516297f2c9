"""One line for every phase of a run that can take more than a few seconds, stamped with the time
since the command started, so a user can follow a run (epochs have their own progress line)."""
import time

_STARTED = time.perf_counter()


def say(message: str) -> None:
    """Prints `[mm:ss] message` (flushed: a log file shows it at once)."""
    elapsed = time.perf_counter() - _STARTED
    print(f"[{int(elapsed // 60):02d}:{int(elapsed % 60):02d}] {message}", flush=True)
