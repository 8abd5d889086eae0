"""The writer process of a replay (see :mod:`d1sim.simulator.replay.writer`): ``python -m`` this.

Ctrl-C reaches every process of the terminal's group; the writer ignores it throughout: the
sender stops it by closing its pipe, once the answers in hand are handed over to be committed.
It loads the expansion's modules (faker, the lifecycle model) before it reads its setup: a writer
started ahead does that while the command that started it is still getting ready.
"""

import signal
import sys

if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import gc
    from multiprocessing.connection import Connection

    import d1sim.contracts.scenario.expansion  # noqa: F401 -- see above
    from d1sim.simulator.replay.writer import writer_main

    gc.freeze()  # the modules' objects live as long as the process: no collection walks them

    sys.exit(writer_main(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False)))
