"""Ctrl-C and SIGTERM during a run: stop cleanly, keep every finished trial, say how to resume.

The contract (issue 14): SIGINT exits 130 and SIGTERM 143 (128 + the signal, as shells
report them); trials that had not finished are written ``interrupted`` with no metrics;
a second signal exits at once. Before Tune runs (datasets building), a signal raises
:class:`Interrupted` where the driver is, so nothing more is built. Once Tune runs, its own
SIGINT handler ends the tuning loop after saving the experiment state; :meth:`Signals.hand_to`
wraps that handler (and sends SIGTERM the same way) so we know which signal it was.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(BaseException):
    """A signal arrived before Tune started (a BaseException, like KeyboardInterrupt, so
    that no ``except Exception`` on the way swallows it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.code = CODES.get(signum, 128 + signum)


class Signals:
    """The signals of one driver: what arrived first (``code``), and how to react."""

    def __init__(self, log=print):
        self.code: int | None = None
        self.log = log
        self._previous: dict[int, object] = {}

    def _main_thread(self) -> bool:
        return threading.current_thread() is threading.main_thread()

    def install(self) -> Signals:
        """Until Tune starts: a signal raises :class:`Interrupted` in the driver."""
        if self._main_thread():
            for s in CODES:
                self._previous[s] = signal.signal(s, self._raise)
        return self

    def _raise(self, signum, frame) -> None:
        self.code = CODES[signum]
        self._second_exits()
        raise Interrupted(signum)

    def _second_exits(self) -> None:
        def now(signum, frame):
            sys.stderr.write(f"\nrobust-ray: {signal.Signals(signum).name} again: exiting at once\n")
            sys.stderr.flush()
            os._exit(self.code or CODES.get(signum, 1))

        for s in CODES:
            signal.signal(s, now)

    def hand_to(self, tune_handler) -> None:
        """From inside Tune's loop (a callback's ``setup``): Tune's SIGINT handler is now
        installed; a first SIGINT or SIGTERM asks it to stop after saving its state."""
        if not self._main_thread() or not callable(tune_handler):
            return

        def stop(signum, frame):
            self.code = CODES[signum]
            self.log(
                f"robust-ray: {signal.Signals(signum).name}: stopping; finished trials are kept, "
                f"the others are written as interrupted (again to exit at once)"
            )
            tune_handler(signal.SIGINT, frame)  # it reinstalls the handler it replaced: ours go last
            self._second_exits()

        for s in CODES:
            signal.signal(s, stop)

    def restore(self) -> None:
        """Back to the handlers from before :meth:`install`, unless a signal came: then a
        second one still exits at once while Ray shuts down."""
        if self._main_thread() and self.code is None:
            for s, h in self._previous.items():
                signal.signal(s, h if h is not None else signal.SIG_DFL)
        self._previous = {}
