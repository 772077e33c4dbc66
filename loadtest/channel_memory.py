"""Memory of many distinct channels on the embedded broker: starts a gateway binary on
loopback, publishes once to each of N channels through POST /v1/publish/batch, and prints the
gateway's resident memory; with a TTL, waits it out, publishes once (which sweeps idle
channels), and publishes to N channels of other names, to show the memory reused.

    python3 loadtest/channel_memory.py target/release/herald-gateway 20s 1000000
    python3 loadtest/channel_memory.py <gateway> none 1000000   (a build without the setting)
"""
import http.client, json, os, socket, subprocess, sys, time

binary, ttl, n = sys.argv[1], sys.argv[2], int(sys.argv[3])


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


api = free_port()
env = dict(os.environ, HERALD__LISTEN__WEBSOCKET=f"127.0.0.1:{free_port()}",
           HERALD__LISTEN__API=f"127.0.0.1:{api}", HERALD__LOG__LEVEL="warn")
if ttl != "none":
    env["HERALD__BROKER__MEMORY__OFFSET_TTL"] = ttl
gateway = subprocess.Popen([binary], env=env, stderr=subprocess.DEVNULL)


def rss_mib():
    for line in open(f"/proc/{gateway.pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024


for _ in range(100):
    try:
        c = http.client.HTTPConnection("127.0.0.1", api)
        c.request("GET", "/readyz")
        if c.getresponse().status == 200:
            break
    except OSError:
        pass
    time.sleep(0.05)


def publish(prefix, count):
    c = http.client.HTTPConnection("127.0.0.1", api)
    for start in range(0, count, 1000):
        messages = [{"channel": f"{prefix}{i}", "data": 1}
                    for i in range(start, min(count, start + 1000))]
        c.request("POST", "/v1/publish/batch", json.dumps({"messages": messages}),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        assert r.status == 200, r.status


try:
    print(f"start: {rss_mib():.1f} MiB")
    publish("user-", n)
    print(f"after {n} channels: {rss_mib():.1f} MiB")
    if ttl != "0s":
        time.sleep(22 if ttl == "none" else float(ttl.rstrip("s")) + 2)
        publish("tick-", 1)
        time.sleep(0.5)
        print(f"after the ttl ({ttl}) and one publication: {rss_mib():.1f} MiB")
        publish("more-", n)
        print(f"after {n} channels of other names: {rss_mib():.1f} MiB")
finally:
    gateway.terminate()
    gateway.wait()
