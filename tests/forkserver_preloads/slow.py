"""A preload that takes 60 s: a forkserver still importing."""

import time

time.sleep(60)
