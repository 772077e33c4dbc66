"""The platform's floor for a sparse fan-out: a bare writer sends one 100-byte message to each
of 1,000 loopback sockets (pinned to core 0) while a reader on core 1 either waits in epoll or
never reads. Compare Herald's per-socket wall time with this.

    python3 loadtest/bare_writer.py epoll
    python3 loadtest/bare_writer.py noread
"""
import socket, selectors, sys, time, os, multiprocessing as mp
N = 1000
def reader(port, mode, ready):
    os.sched_setaffinity(0, {1})
    socks = []
    for _ in range(N):
        s = socket.create_connection(("127.0.0.1", port)); s.setblocking(False); socks.append(s)
    ready.set()
    if mode == "epoll":
        sel = selectors.EpollSelector()
        for s in socks: sel.register(s, selectors.EVENT_READ)
        end = time.time() + 6
        while time.time() < end:
            for key, _ in sel.select(timeout=0.5):
                try: key.fileobj.recv(65536)
                except BlockingIOError: pass
    else:
        time.sleep(6)
def main(mode):
    ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(2048); port = ls.getsockname()[1]
    ready = mp.Event()
    p = mp.Process(target=reader, args=(port, mode, ready)); p.start()
    conns = [ls.accept()[0] for _ in range(N)]
    for c in conns: c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ready.wait(); time.sleep(0.5)
    msg = b"x" * 100
    spans = []
    for _ in range(60):
        t = time.perf_counter()
        for c in conns: c.send(msg)
        spans.append(time.perf_counter() - t)
        time.sleep(0.033)
    spans.sort()
    print(f"{mode:8s}: one message to {N} sockets takes p50 {spans[30]*1000:.2f} ms, max {spans[-1]*1000:.2f} ms ({spans[30]*1e6/N:.1f} us per socket)")
    p.terminate()
if __name__ == "__main__":
    os.sched_setaffinity(0, {0})
    main(sys.argv[1])
