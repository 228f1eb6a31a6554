"""Run the latentloom CLI, then print this process's peak resident memory (VmHWM, in kB) last.

Used by tests in a subprocess, so each measurement is one process's own peak."""
import sys

from latentloom.app.cli import main


def peak_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    print(f"exit {code} peak_kb {peak_kb()}")
