// herald-client against real gateways relaying through a real redis-server.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Herald, HeraldError } from "../src/herald.js";
import { sleep, startGateway, startRedis, token, until } from "./cluster.mjs";

let redis;
before(async () => {
  redis = await startRedis();
});
after(() => redis.stop());

/** A connected client; disconnected when the test ends. */
async function connected(t, url, options) {
  const client = new Herald(url, options);
  t.after(() => client.disconnect());
  client.connect();
  await until("connected", () => client.state === "connected");
  return client;
}

for (const format of ["json", "msgpack"]) test(`subscribe, publish, history and presence (${format})`, async (t) => {
  const room = `room:${format}`;
  const gw = await startGateway(redis);
  t.after(() => gw.kill());
  const alice = await connected(t, gw.ws, { token: token("alice"), format });
  const got = [];
  const joins = [];
  const sub = alice.subscribe(room, { onPublication: (p) => got.push(p), onJoin: (j) => joins.push(j.user) });
  await sub.ready;
  assert.equal(sub.state, "subscribed");
  const reply = await alice.publish(room, { text: "hi" });
  assert.equal(typeof reply.offset, "number");
  assert.equal(typeof reply.epoch, "string");
  assert.equal(await gw.publish(room, { text: "from the API" }), 200);
  await until("two publications", () => got.length === 2);
  assert.deepEqual(got.map((p) => p.data.text), ["hi", "from the API"]);
  assert.equal(got[1].offset, got[0].offset + 1);
  // The channel had no publication when subscribed: the client reads its epoch once.
  await until("the epoch known", () => sub.position.epoch === reply.epoch);
  assert.deepEqual(sub.position, { offset: got[1].offset, epoch: reply.epoch });

  const history = await alice.history(room, { limit: 10 });
  assert.deepEqual(history.publications.map((p) => p.data.text), ["hi", "from the API"]);
  const members = await alice.presence(room);
  assert.deepEqual(members.members.map((m) => m.user), ["alice"]);
  const stats = await alice.presenceStats(room);
  assert.equal(stats.count, 1);
  assert.deepEqual(joins, ["alice"]);
  await sub.unsubscribe();
  assert.equal(await gw.publish(room, "after"), 200);
  await sleep(200);
  assert.equal(got.length, 2, "nothing after unsubscribe");
});

test("a refused subscription reaches the app as an error", async (t) => {
  const gw = await startGateway(redis);
  t.after(() => gw.kill());
  const client = await connected(t, gw.ws);
  const errors = [];
  const sub = client.subscribe("nope:1", { onError: (e) => errors.push(e) });
  await assert.rejects(sub.ready, (e) => e instanceof HeraldError && e.code === 103);
  assert.equal(sub.state, "failed");
  assert.equal(errors[0].code, 103);
  await assert.rejects(client.publish("news", 1), (e) => e.code === 104);
});

test("a drained and killed gateway: the client goes on on another, every publication once", async (t) => {
  const a = await startGateway(redis);
  const b = await startGateway(redis);
  t.after(() => {
    a.kill();
    b.kill();
  });
  const client = await connected(t, [a.ws, b.ws], { minReconnectDelay: 100 });
  const states = [];
  client.on("disconnected", (d) => states.push(d.code));
  const got = [];
  const sub = client.subscribe("feed", { onPublication: (p) => got.push(p.data) });
  await sub.ready;
  const total = 120;
  const publisher = (async () => {
    for (let n = 1; n <= total; n++) {
      assert.equal(await b.publish("feed", n), 200);
      await sleep(10);
    }
  })();
  await until("the first publications", () => got.length >= 30);
  a.drain();
  await until("drained", () => states.includes(4000));
  await sleep(100);
  a.kill();
  await publisher;
  await until("every publication", () => got.length >= total, 20000);
  await sleep(200);
  assert.deepEqual(got, Array.from({ length: total }, (_, i) => i + 1), "each once, in order");
  assert.equal(client.state, "connected");
  assert.ok(sub.stats.recovered >= 1, "recovered on the other gateway");
});

test("a token is refreshed before it expires", async (t) => {
  const gw = await startGateway(redis);
  t.after(() => gw.kill());
  let issued = 0;
  const getToken = async () => {
    issued += 1;
    return token("carol", 4);
  };
  const closes = [];
  const client = await connected(t, gw.ws, { getToken });
  client.on("disconnected", (d) => closes.push(d.code));
  await sleep(5000);
  assert.equal(client.state, "connected");
  assert.deepEqual(closes, [], "never closed");
  assert.ok(client.refreshes >= 1, `refreshed ${client.refreshes} times`);
  assert.ok(issued >= 2);
});

test("the server API's unsubscribe and disconnect reach the client", async (t) => {
  const gw = await startGateway(redis);
  t.after(() => gw.kill());
  const erin = await connected(t, gw.ws, { token: token("erin"), minReconnectDelay: 50 });
  const states = [];
  const sub = erin.subscribe("room:api", { onState: (s) => states.push(s) });
  await sub.ready;
  const post = (path, body) =>
    fetch(`${gw.api}${path}`, { method: "POST", body: JSON.stringify(body) }).then((r) => r.status);
  assert.equal(await post("/v1/unsubscribe", { user: "erin", channel: "room:api" }), 200);
  await until("unsubscribed by the server", () => sub.state === "unsubscribed");
  assert.deepEqual(states.at(-1), { state: "unsubscribed", server: true });
  const closes = [];
  erin.on("disconnected", (d) => closes.push(d));
  assert.equal(await post("/v1/disconnect", { user: "erin" }), 200);
  await until("disconnected", () => closes.length > 0);
  assert.deepEqual([closes[0].code, closes[0].reconnect], [4501, false]);
  await sleep(300);
  assert.equal(erin.state, "disconnected", "4501: no reconnection");
});

test("4500 without getToken stops reconnecting", async (t) => {
  const gw = await startGateway(redis);
  t.after(() => gw.kill());
  const client = new Herald(gw.ws, { token: token("dave", 2), minReconnectDelay: 50 });
  t.after(() => client.disconnect());
  const closes = [];
  client.on("disconnected", (d) => closes.push(d));
  client.connect();
  await until("the token expired", () => closes.length > 0, 8000);
  assert.equal(closes[0].code, 4500);
  assert.equal(closes[0].reconnect, false);
  await sleep(1000);
  assert.equal(client.state, "disconnected");
  assert.equal(closes.length, 1, "no reconnection");
  assert.equal(await gw.metric("herald_connections_total"), 1);
});

test("4500 with getToken comes back with a new token", async (t) => {
  const gw = await startGateway(redis);
  t.after(() => gw.kill());
  let issued = 0;
  // The refresh is refused (its token already expired): the first token runs out, and the
  // client comes back with the next one.
  const tokens = [token("erin", 2), token("erin", -10)];
  const getToken = async () => tokens[issued++] ?? token("erin", 600);
  const client = await connected(t, gw.ws, { getToken, minReconnectDelay: 50 });
  const closes = [];
  client.on("disconnected", (d) => closes.push(d.code));
  const sub = client.subscribe("news");
  await sub.ready;
  await until("reconnected after 4500", () => closes.includes(4500) && client.state === "connected", 8000);
  await until("resubscribed", () => sub.state === "subscribed");
  assert.equal(issued, 3);
});

test("what cannot be recovered reaches onGap", async (t) => {
  const a = await startGateway(redis);
  const b = await startGateway(redis);
  t.after(() => {
    a.kill();
    b.kill();
  });
  const client = await connected(t, [a.ws, b.ws], { drainDelay: 1500 });
  const closes = [];
  client.on("disconnected", (d) => closes.push(d.code));
  const gaps = [];
  const onGap = (g) => gaps.push(g);
  const short = client.subscribe("short:1", { onGap });
  const quiet = client.subscribe("quiet:1", { onGap });
  await Promise.all([short.ready, quiet.ready]);
  assert.equal(await b.publish("short:1", 1), 200);
  assert.equal(await b.publish("quiet:1", 1), 200);
  await until("one each", () => short.stats.publications === 1 && quiet.stats.publications === 1);
  a.drain();
  await until("drained", () => closes.includes(4000));
  // While away: more than `short:` keeps, and anything at all on `quiet:`.
  for (let n = 2; n <= 6; n++) assert.equal(await b.publish("short:1", n), 200);
  assert.equal(await b.publish("quiet:1", 2), 200);
  await until("both told", () => gaps.length === 2, 10000);
  const by = Object.fromEntries(gaps.map((g) => [g.channel, g]));
  assert.equal(by["short:1"].recovered, false);
  assert.match(by["short:1"].reason, /no longer kept/);
  assert.equal(by["quiet:1"].recovered, false);
  assert.deepEqual([short.stats.missed, quiet.stats.missed], [1, 1]);
  assert.equal(short.state, "subscribed");
});

test("a connection that stops answering is given up for another", async (t) => {
  const a = await startGateway(redis);
  const b = await startGateway(redis);
  t.after(() => {
    a.child.kill("SIGCONT");
    a.kill();
    b.kill();
  });
  const client = await connected(t, [a.ws, b.ws], { pingInterval: 300, livenessTimeout: 300, minReconnectDelay: 50 });
  const sub = client.subscribe("news");
  await sub.ready;
  const closes = [];
  client.on("disconnected", (d) => closes.push(d.code));
  // The node freezes: its socket stays open, nothing comes back.
  a.child.kill("SIGSTOP");
  await until("given up and back on the other node", () => closes.length > 0 && client.state === "connected", 10000);
  await until("resubscribed", () => sub.state === "subscribed");
  assert.equal(closes[0], 4002);
  assert.equal(await b.metric("herald_connections"), 1);
});
