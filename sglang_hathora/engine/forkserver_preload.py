"""Where the forkserver (engine/forkserver.py) is prepared, imported first of its preload list.

- The cyclic collector is off for the imports: they build ~750k objects and almost no garbage (450
  objects collected over 9 collections in one measured import), and the collections walking the
  growing heap took a fifth of the import's time (sglang's engine module: 6.6 s with, 5.2 s without).
  Each child turns it back on once it has frozen what it inherited (PreloadedProcess.run).
- It ends with the server: SIGKILL from the kernel when the server's thread that started it ends
  (PR_SET_PDEATHSIG; the server starts it from its main thread). Without it a server that exited on a
  configuration error left the forkserver importing for ~10 s, holding the server's stdout open.
- SIGQUIT is passed on to the server: SGLang's scheduler and detokenizer signal their parent with it
  when they fail ("Scheduler hit an exception"), and their parent is now the forkserver. Each child
  puts SIGQUIT back to its default before SGLang runs (PreloadedProcess.run).
- Logging takes the server's configuration (SGLANG_LOGGING_CONFIG_PATH, written by
  observability.py) before anything logs: SGLang's model registry reports what it cannot import on
  this host, and the server's stdout holds lines of its own format only.
"""

import ctypes
import gc
import json
import logging.config
import os
import signal
import sys

gc.disable()

SERVER_PID = int(os.environ.get("SGLANG_HATHORA_SERVER_PID", os.getppid()))
if sys.platform.startswith("linux"):
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
if os.getppid() != SERVER_PID:  # the server ended before the line above
    os._exit(0)


def _pass_on(signum: int, _frame) -> None:
    os.kill(SERVER_PID, signum)


signal.signal(signal.SIGQUIT, _pass_on)

_path = os.environ.get("SGLANG_LOGGING_CONFIG_PATH")
if _path and os.path.exists(_path):
    with open(_path) as _file:
        logging.config.dictConfig(json.load(_file))
