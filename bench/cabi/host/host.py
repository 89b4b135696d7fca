"""The footprint of libprovision as a Python host sees it, through the
ctypes binding (bindings/python/provision.py).

    python3 host.py LIBRARY STATE_DIR N

Prints "name value unit" lines like host.c: VmRSS of the interpreter before
the library is loaded, after, after an agent is opened and after the timed
calls; ns per call of provision_abi_version (the bare ctypes crossing),
Agent.status() (a read, JSON decoded into a dict) and Agent.record_error()
one after another (each durable: one fsync).
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "bindings", "python"))


def vmrss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def main():
    lib_path, state, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.environ["PROVISION_LIBRARY"] = lib_path
    import provision  # noqa: E402 (after the path is set)

    print("rss_before_load %d kB" % vmrss_kb())
    lib = provision.library()
    print("rss_after_load %d kB" % vmrss_kb())
    agent = provision.Agent(state)
    agent.accept("eu")
    print("rss_after_open %d kB" % vmrss_kb())

    t0 = time.perf_counter_ns()
    for _ in range(n * 100):
        lib.provision_abi_version()
    print("abi_version %d ns/call" % ((time.perf_counter_ns() - t0) // (n * 100)))

    t0 = time.perf_counter_ns()
    for _ in range(n * 10):
        agent.status()
    print("status %d ns/call" % ((time.perf_counter_ns() - t0) // (n * 10)))

    t0 = time.perf_counter_ns()
    for _ in range(n):
        agent.record_error("connection_failed", "E42", "connect_button")
    print("record_error_sequential %d ns/call" % ((time.perf_counter_ns() - t0) // n))
    print("rss_after_calls %d kB" % vmrss_kb())
    agent.close()


if __name__ == "__main__":
    main()
