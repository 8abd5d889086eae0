"""A sender process of a replay (see :mod:`d1sim.simulator.delivery.lanes`): ``python -m`` this.

Ctrl-C reaches every process of the terminal's group; a lane still loading its modules ignores
it (it has nothing to record yet, and an interrupted import would print a traceback), then takes
it as the driver does: record the answers in hand and stop.
"""

import signal
import sys

if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from multiprocessing.connection import Connection

    from d1sim.simulator.delivery.lanes import lane_main

    sys.exit(lane_main(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False)))
