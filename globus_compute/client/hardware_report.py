"""The function ``Client.get_worker_hardware_details`` runs on an endpoint's workers.

It travels as source text (the ``st`` code strategy) and is executed alone in a fresh namespace
on the endpoint, so it must be self-contained: every import and helper lives inside it, and it
uses only the standard library (``psutil`` if the endpoint happens to have it).
"""

from __future__ import annotations


def run_hardware_report(env=None):  # unannotated: the source must compile on Python 3.9 too
    """Report the Python, OS, CPU, memory, disk and GPUs of the worker that runs it.

    Args:
        env: A label (str) to prefix each section heading with, e.g. the endpoint's name.

    Returns:
        The report as text, one ``== section ==`` block per item found.
    """
    import os
    import platform
    import shutil
    import subprocess
    import sys

    def command(argv):
        if not shutil.which(argv[0]):
            return None
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"{argv[0]} failed: {exc!r}"
        return (done.stdout or done.stderr or "(no output)").rstrip()

    def memory():
        try:
            import psutil

            vm = psutil.virtual_memory()
            return f"total {vm.total} B, available {vm.available} B ({vm.percent}% used)"
        except ImportError:
            pass
        try:
            with open("/proc/meminfo") as f:
                return "".join(line for line in f if line.startswith(("MemTotal", "MemAvailable")))
        except OSError:
            return None

    disk = shutil.disk_usage(os.path.expanduser("~"))
    sections = {
        "python": f"{sys.version}\nexecutable: {sys.executable}",
        "platform": f"{platform.platform()}\nnode: {platform.node()}",
        "cpu": f"{platform.machine()} {platform.processor()}, {os.cpu_count()} cores",
        "memory": memory(),
        "disk (home)": f"total {disk.total} B, free {disk.free} B",
        "lscpu": command(["lscpu"]),
        "nvidia-smi": command(["nvidia-smi"]),
    }
    prefix = f"== {env} == " if env else ""
    return "\n\n".join(f"{prefix}== {name} ==\n{text}" for name, text in sections.items() if text)
