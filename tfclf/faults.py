"""Named points in a run's life, for fault-injection tests.

With TFCLF_KILL_AT=<point> in the environment, the process SIGKILLs itself when it
reaches that point (tests/test_faults.py kills real runs at each one and reruns them);
with TFCLF_PAUSE_AT=<point> and TFCLF_PAUSE_FILE=<path> it waits there while that file
exists (to hold a run still, e.g. while a second one tries the same --out). Without the
variables every call is a no-op.

    loading      preparing.prepare starts reading the data
    prepared     data read and split, before the run directory is touched
    epoch_end    the first epoch's backup is written
    epoch_mid    the first batch of the second epoch
    fitted       model.fit returned, the trained weights not yet saved
    trained      training finished and the trained weights are saved
    evaluated    validation and test scored and written
    exported     the export version was renamed into place
    finishing    metrics.json written, just before <out>.partial becomes <out>
    step:N       the N-th training step of this process (mid-epoch kills, for --backup-every)
"""
import os
import signal
import time

POINTS = ("loading", "prepared", "epoch_end", "epoch_mid", "fitted", "trained", "evaluated", "exported", "finishing")


def reached(point: str) -> None:
    if os.environ.get("TFCLF_PAUSE_AT") == point:
        while os.path.exists(os.environ.get("TFCLF_PAUSE_FILE", "")):
            time.sleep(0.1)
    if os.environ.get("TFCLF_KILL_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def reached_step(step: int) -> None:
    """The `step:N` point: the N-th training step this process ran."""
    if os.environ.get("TFCLF_KILL_AT", "").startswith("step:"):
        reached(f"step:{step}")
