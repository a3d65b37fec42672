# Drives a command on a pseudo-terminal, as a person at a terminal would.
# Usage: pty_drive.py STEP... -- COMMAND...
# Steps, in order: send:TEXT (\n becomes Enter), expect:REGEX (waits up to
# 90 s for the regex in the output seen since the last expect),
# resize:ROWSxCOLS (sets the terminal size and signals the command, as a
# terminal emulator does), kill: (sends SIGTERM to the command: a client
# that goes away). Prints everything the command wrote, then
# "EXIT <code>"; exits 99 when an expect times out.
import fcntl, os, pty, re, select, signal, struct, sys, termios, time

sep = sys.argv.index("--")
steps, cmd = sys.argv[1:sep], sys.argv[sep + 1:]


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
set_size(fd, 24, 80)
seen, mark = b"", 0


def read_some(timeout):
    global seen
    r, _, _ = select.select([fd], [], [], timeout)
    if not r:
        return True
    try:
        data = os.read(fd, 65536)
    except OSError:
        return False
    if not data:
        return False
    seen += data
    return True


failed = None
for step in steps:
    kind, _, arg = step.partition(":")
    if kind == "send":
        os.write(fd, arg.replace("\\n", "\r").encode())
    elif kind == "resize":
        rows, cols = (int(x) for x in arg.split("x"))
        set_size(fd, rows, cols)
        os.kill(pid, signal.SIGWINCH)
    elif kind == "kill":
        os.kill(pid, signal.SIGTERM)
    elif kind == "expect":
        deadline = time.time() + 90
        while True:
            m = re.search(arg.encode(), seen[mark:])
            if m:
                mark += m.end()
                break
            if time.time() > deadline or not read_some(0.2):
                failed = arg
                break
        if failed:
            break
if failed:
    os.kill(pid, signal.SIGKILL)
deadline = time.time() + 90
while time.time() < deadline and read_some(0.5):
    pass
done, status = os.waitpid(pid, os.WNOHANG)
while not done and time.time() < deadline:
    time.sleep(0.1)
    done, status = os.waitpid(pid, os.WNOHANG)
if not done:
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
code = os.waitstatus_to_exitcode(status)
print(f"\nEXIT {code}")
if failed:
    print(f"TIMEOUT waiting for {failed!r}")
    sys.exit(99)
