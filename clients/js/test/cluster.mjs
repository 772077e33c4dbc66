// Real servers for the tests: a redis-server and Herald gateways (the binaries in HERALD_BIN,
// default target/debug of the repository), each on free loopback ports, stopped at the end.

import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../../..");
const bin = resolve(root, process.env.HERALD_BIN ?? "target/debug");
export const SECRET = "a test secret of at least 32 bytes!!";

export async function freePort() {
  return new Promise((done) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves once `check()` is true, polling; rejects after `ms`. */
export async function until(what, check, ms = 15000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(50);
  }
}

const children = new Set();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

function run(cmd, args, env = {}) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  child.logs = () => stderr;
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

export async function startRedis() {
  const port = await freePort();
  const child = run("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
  await until("redis-server listening", () => connects(port));
  return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill("SIGKILL") };
}

function connects(port) {
  return new Promise((done) => {
    const socket = createConnection(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      done(true);
    });
    socket.once("error", () => done(false));
  });
}

/** A gateway relaying through `redis`, with tokens signed by SECRET accepted. */
export async function startGateway(redis, { anonymous = true, ws, api } = {}) {
  ws ??= await freePort();
  api ??= await freePort();
  const dir = mkdtempSync(join(tmpdir(), "herald-js-"));
  const config = join(dir, "gateway.toml");
  writeFileSync(
    config,
    `[listen]
websocket = "127.0.0.1:${ws}"
api = "127.0.0.1:${api}"
[broker]
kind = "redis"
[broker.redis]
url = "${redis.url}"
[auth]
anonymous = ${anonymous}
leeway = "0s"
[[auth.keys]]
alg = "HS256"
secret = "${SECRET}"
[shutdown]
drain_window = "300ms"
grace_period = "5s"
[namespaces.room]
publish = true
presence = true
[namespaces.quiet]
history_size = 0
[namespaces.short]
history_size = 2
`,
  );
  const child = run(join(bin, "herald-gateway"), ["--config", config]);
  const gateway = {
    ws: `ws://127.0.0.1:${ws}/ws`,
    api: `http://127.0.0.1:${api}`,
    wsPort: ws,
    apiPort: api,
    child,
    /** SIGTERM: the gateway drains (close 4000) and exits. */
    drain: () => child.kill("SIGTERM"),
    kill: () => child.kill("SIGKILL"),
    exited: () => new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r))),
    publish: (channel, data) =>
      fetch(`http://127.0.0.1:${api}/v1/publish`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ channel, data }),
      }).then((r) => r.status),
    metric: async (name) => {
      const text = await (await fetch(`http://127.0.0.1:${api}/metrics`)).text();
      const line = text.split("\n").find((l) => l.startsWith(name + " "));
      return line ? Number(line.split(" ")[1]) : NaN;
    },
  };
  await until("the gateway ready", async () => {
    if (child.exitCode !== null) throw new Error(`the gateway exited: ${child.logs()}`);
    return fetch(`${gateway.api}/readyz`).then((r) => r.status === 200, () => false);
  });
  return gateway;
}

/** An HS256 connection token for `sub`, expiring in `ttl` seconds. */
export function token(sub, ttl = 600, extra = {}) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + ttl, ...extra })}`;
  return `${body}.${createHmac("sha256", SECRET).update(body).digest("base64url")}`;
}
