"""Shared edge of every `python -m tfclf.*` command: user errors become one line and exit 2."""
import sys

USER_ERROR_EXIT = 2


def run_main(job) -> int:
    """Runs `job()`; a ValueError (bad input, bad flag) or a file-system error prints
    `tfclf: error: ...` on stderr and returns 2, without a traceback."""
    try:
        job()
    except ValueError as error:
        print(f"tfclf: error: {error}", file=sys.stderr)
        return USER_ERROR_EXIT
    except OSError as error:
        if error.filename is None:
            raise
        print(f"tfclf: error: {error.filename}: {error.strerror}; check the path and its permissions",
              file=sys.stderr)
        return USER_ERROR_EXIT
    except KeyboardInterrupt:
        print("tfclf: interrupted", file=sys.stderr)
        return 130
    return 0
