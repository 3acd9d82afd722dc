"""Loops forever without calling backward(), after starting two processes meant to outlive it:
a `setsid` grandchild (a new session) and a double-forked daemon (setsid, its parent gone).
Each writes its process id to a file in this folder (script.pid also holds the parent's id);
all of them keep the script's stdout open."""

import os
import subprocess
import sys
import time

LOOP = "import os, time\nopen('{name}.pid', 'w').write(str(os.getpid()))\nwhile True: time.sleep(0.05)\n"

subprocess.Popen(['setsid', sys.executable, '-c', LOOP.format(name='setsid')])
first = os.fork()
if first == 0:
    os.setsid()
    if os.fork():
        os._exit(0)
    exec(LOOP.format(name='daemon'))
os.waitpid(first, 0)
with open('script.pid', 'w') as f:
    f.write(f'{os.getpid()} {os.getppid()}')
while True:
    time.sleep(0.01)
