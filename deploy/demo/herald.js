// herald-client: a client for Herald's own WebSocket protocol (JSON or MessagePack), for
// browsers and Node 20+. No runtime dependencies. See README.md and docs/protocol.md of Herald.

import { decode, encode } from "./msgpack.js";

const SUBPROTOCOL = { json: "herald.v1.json", msgpack: "herald.v1.msgpack" };

const DEFAULTS = {
  format: "json",
  minReconnectDelay: 500,
  maxReconnectDelay: 20000,
  // Reconnection after a drain (close 4000): a short random delay, so that a node's
  // clients do not all arrive at once.
  drainDelay: 1000,
  requestTimeout: 10000,
  // The client's own liveness check: a cheap request when nothing arrived for this long...
  pingInterval: 25000,
  // ...and the connection is given up when its answer takes longer than this.
  livenessTimeout: 10000,
  // A token is refreshed this long before it expires (or halfway through its life, if
  // sooner).
  refreshAhead: 30000,
};

/** Close codes after which the client does not reconnect without a change. */
const FINAL = (code) => (code >= 4500 && code <= 4999) || code === 1002 || code === 1007 || code === 1009;

/** A refused request: the protocol's error code and message. */
export class HeraldError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "HeraldError";
    this.code = code;
  }
}

/** The `exp` claim of a JWT, in ms since the epoch, or null. */
export function tokenExpiry(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const text = typeof atob === "function" ? atob(part) : Buffer.from(part, "base64").toString();
    const exp = JSON.parse(text).exp;
    return typeof exp === "number" ? exp * 1000 : null;
  } catch {
    return null;
  }
}

/** One channel's subscription: survives reconnects, resuming from its last position. */
export class Subscription {
  constructor(client, channel, handlers) {
    this.client = client;
    this.channel = channel;
    this.handlers = handlers;
    /** "subscribing", "subscribed", "unsubscribed" or "failed". */
    this.state = "subscribing";
    /** Where the channel stands for this client: `{offset, epoch}`, once known. */
    this.position = null;
    /** Publications delivered, gaps seen, recoveries made. */
    this.stats = { publications: 0, recovered: 0, missed: 0 };
    this.ready = new Promise((resolve, reject) => {
      this._settle = { resolve, reject };
    });
    this.ready.catch(() => {});
  }

  /** Stops receiving the channel. */
  unsubscribe() {
    if (this.state === "unsubscribed") return Promise.resolve();
    this._setState("unsubscribed");
    this.client._subs.delete(this.channel);
    if (this.client.state !== "connected") return Promise.resolve();
    return this.client._request({ unsubscribe: { channels: [this.channel] } }).catch(() => {});
  }

  _setState(state, detail) {
    if (this.state === state) return;
    this.state = state;
    this.handlers.onState?.({ state, ...detail });
  }

  // The outcome of a subscribe request for this channel.
  _subscribed(position, recovery) {
    if (recovery) {
      const at = { offset: recovery.offset, epoch: recovery.epoch ?? null };
      if (recovery.recovered) {
        this.stats.recovered += 1;
      } else {
        this.stats.missed += 1;
        this.position = at.epoch ? at : null;
        this.handlers.onGap?.({ channel: this.channel, recovered: false, reason: recovery.reason, position: at });
      }
    } else if (position) {
      this.position = position.epoch ? { offset: position.offset, epoch: position.epoch } : { offset: 0, epoch: null };
    }
    this._setState("subscribed");
    this._settle.resolve(this);
  }

  _failed(code, message) {
    const error = new HeraldError(code, message);
    this._setState("failed", { error });
    this.client._subs.delete(this.channel);
    this.handlers.onError?.(error);
    this._settle.reject(error);
  }

  _push(push) {
    const { offset } = push;
    if (typeof offset === "number" && this.position) {
      const last = this.position.offset;
      // Recovered publications and live ones can meet: each is delivered once.
      if (offset <= last && this.position.epoch) return;
      if (offset > last + 1 && this.position.epoch) {
        this.stats.missed += 1;
        this.handlers.onGap?.({ channel: this.channel, recovered: false, reason: "offsets skipped", missing: { from: last + 1, to: offset - 1 } });
      }
    }
    if (typeof offset === "number") {
      this.position = { offset, epoch: this.position?.epoch ?? null };
      if (!this.position.epoch) this._learnEpoch();
    }
    this.stats.publications += 1;
    this.handlers.onPublication?.({ channel: this.channel, data: push.data, offset, event: push.event });
  }

  // Pushes carry no epoch: a channel that had none when subscribed (no publication yet)
  // reads its position once, so that it can be recovered later.
  _learnEpoch() {
    if (this._learning || this._noEpoch) return;
    this._learning = true;
    let again = false;
    this.client
      .history(this.channel, { limit: 0 })
      .then((at) => {
        if (!at.epoch || !this.position || this.position.epoch) return;
        // A read older than the last push (another one arrived meanwhile) reads again.
        if (at.offset >= this.position.offset) this.position.epoch = at.epoch;
        else again = true;
      })
      .catch((error) => {
        // No history in the namespace (104): nothing could be recovered anyway.
        if (error instanceof HeraldError) this._noEpoch = true;
      })
      .finally(() => {
        this._learning = false;
        if (again) this._learnEpoch();
      });
  }

  // The server took the connection out of the channel (the server API's unsubscribe).
  _removed() {
    if (this.client._subs.get(this.channel) === this) this.client._subs.delete(this.channel);
    this._setState("unsubscribed", { server: true });
  }

  _gap(gap) {
    this.stats.missed += 1;
    if (gap.epoch && this.position) this.position = { offset: 0, epoch: gap.epoch };
    if (gap.missing && this.position) this.position.offset = gap.missing.to;
    this.handlers.onGap?.({ channel: this.channel, recovered: false, reason: gap.reason, missing: gap.missing, epoch: gap.epoch });
  }
}

/** A connection to Herald that reconnects, resubscribes and recovers by itself. */
export class Herald {
  /**
   * @param url one `ws://host/ws` URL, or several: each reconnection takes the next.
   * @param options `{token, getToken, format, WebSocket, ...}`: see README.md.
   */
  constructor(url, options = {}) {
    this.urls = Array.isArray(url) ? url : [url];
    this.options = { ...DEFAULTS, ...options };
    if (!SUBPROTOCOL[this.options.format]) {
      throw new Error('format is "json" or "msgpack"');
    }
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    if (!this.WebSocket) throw new Error("no WebSocket: pass one as options.WebSocket");
    this.token = options.token ?? null;
    /** "disconnected", "connecting" or "connected". */
    this.state = "disconnected";
    this._subs = new Map();
    this._pending = new Map();
    this._nextId = 1;
    this._listeners = new Map();
    this._attempt = 0;
    this._urlIndex = 0;
    this._timers = new Set();
  }

  /** Listens to `connecting`, `connected`, `disconnected` ({code, reason, reconnect}), `error`. */
  on(event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(fn);
    return () => this._listeners.get(event)?.delete(fn);
  }

  _emit(event, detail) {
    for (const fn of this._listeners.get(event) ?? []) fn(detail);
  }

  _setState(state, detail) {
    this.state = state;
    this._emit(state, detail);
    this._emit("state", { state, ...detail });
  }

  _later(ms, fn) {
    const t = setTimeout(() => {
      this._timers.delete(t);
      fn();
    }, ms);
    this._timers.add(t);
    return t;
  }

  _clearTimers() {
    for (const t of this._timers) clearTimeout(t);
    this._timers.clear();
  }

  /** Connects (and keeps reconnecting until `disconnect`). */
  connect() {
    if (this.state !== "disconnected") return;
    this._stopped = false;
    this._open();
  }

  /** Closes the connection and stops reconnecting. */
  disconnect() {
    this._stopped = true;
    this._clearTimers();
    const ws = this._ws;
    this._ws = null;
    if (ws) ws.close(1000, "client disconnect");
    this._failPending(new Error("disconnected"));
    if (this.state !== "disconnected") {
      this._setState("disconnected", { code: 1000, reason: "client disconnect", reconnect: false });
    }
  }

  async _open() {
    this._setState("connecting");
    if (this.options.getToken && (!this.token || this._expiresSoon(this.token))) {
      try {
        this.token = await this.options.getToken();
      } catch (error) {
        this._emit("error", error);
        return this._retry({ code: 0, reason: "getToken failed" });
      }
    }
    if (this._stopped) return;
    let url = this.urls[this._urlIndex % this.urls.length];
    if (this.token) url += (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(this.token);
    let ws;
    try {
      ws = new this.WebSocket(url, SUBPROTOCOL[this.options.format]);
      ws.binaryType = "arraybuffer";
    } catch (error) {
      this._emit("error", error);
      return this._retry({ code: 0, reason: String(error) });
    }
    this._ws = ws;
    ws.onopen = () => this._opened(ws);
    ws.onmessage = (e) => this._message(ws, e.data);
    ws.onclose = (e) => this._closed(ws, e.code, e.reason);
    ws.onerror = () => {};
  }

  _expiresSoon(token) {
    const exp = tokenExpiry(token);
    return exp !== null && exp - Date.now() < 1000;
  }

  _opened(ws) {
    if (ws !== this._ws) return;
    this._attempt = 0;
    this._setState("connected");
    this._heard();
    this._scheduleRefresh();
    const channels = [...this._subs.values()].filter((s) => s.state !== "unsubscribed");
    if (channels.length) this._subscribe(channels);
  }

  _closed(ws, code, reason) {
    if (ws !== this._ws) return;
    this._ws = null;
    this._clearTimers();
    this._failPending(new Error(`connection closed (${code})`));
    for (const sub of this._subs.values()) sub._setState("subscribing");
    if (this._stopped) return;
    this._retry({ code, reason });
  }

  _retry({ code, reason }) {
    if (code === 4500 && this.options.getToken) {
      // The token ran out: reconnect with a new one.
      this.token = null;
    } else if (FINAL(code)) {
      this._stopped = true;
      this._setState("disconnected", { code, reason, reconnect: false });
      return;
    }
    this._setState("disconnected", { code, reason, reconnect: true });
    this._urlIndex += 1;
    const o = this.options;
    let delay;
    if (code === 4000) {
      delay = Math.random() * o.drainDelay;
    } else {
      const ceiling = Math.min(o.maxReconnectDelay, o.minReconnectDelay * 2 ** this._attempt);
      delay = ceiling / 2 + (Math.random() * ceiling) / 2;
      this._attempt += 1;
    }
    this._later(delay, () => {
      if (!this._stopped) this._open();
    });
  }

  // Anything from the server proves the connection alive; a quiet one is checked with a
  // request of its own.
  _heard() {
    clearTimeout(this._liveness);
    this._timers.delete(this._liveness);
    this._liveness = this._later(this.options.pingInterval, () => this._ping());
  }

  _ping() {
    const ws = this._ws;
    if (!ws || this.state !== "connected") return;
    this._request({ unsubscribe: { channels: [] } }, this.options.livenessTimeout).catch(() => {
      if (ws === this._ws) ws.close(4002, "no answer from the server");
      // A socket that cannot even close: treat it as closed now.
      if (ws === this._ws) this._closed(ws, 4002, "no answer from the server");
    });
  }

  _scheduleRefresh() {
    const exp = this.token && this.options.getToken ? tokenExpiry(this.token) : null;
    if (exp === null) return;
    const left = exp - Date.now();
    const ahead = Math.min(this.options.refreshAhead, left / 2);
    this._later(Math.max(0, left - ahead), async () => {
      try {
        const token = await this.options.getToken();
        await this._request({ refresh: { token } });
        this.token = token;
        this.refreshes = (this.refreshes ?? 0) + 1;
        this._scheduleRefresh();
      } catch (error) {
        // Refused or failed: the server closes with 4500 at expiry, and the client comes
        // back with a new token.
        this._emit("error", error);
      }
    });
  }

  _message(ws, data) {
    if (ws !== this._ws) return;
    this._heard();
    let frame;
    try {
      frame = typeof data === "string" ? JSON.parse(data) : decode(data);
    } catch {
      return this._emit("error", new Error("undecodable frame"));
    }
    if (frame.push) return this._subs.get(frame.push.channel)?._push(frame.push);
    if (frame.gap) return this._subs.get(frame.gap.channel)?._gap(frame.gap);
    if (frame.unsubscribed) return this._subs.get(frame.unsubscribed.channel)?._removed();
    if (frame.join) return this._subs.get(frame.join.channel)?.handlers.onJoin?.(frame.join);
    if (frame.leave) return this._subs.get(frame.leave.channel)?.handlers.onLeave?.(frame.leave);
    if (frame.id !== undefined) {
      const pending = this._pending.get(frame.id);
      if (!pending) return;
      this._pending.delete(frame.id);
      clearTimeout(pending.timer);
      if (frame.error) pending.reject(new HeraldError(frame.error.code, frame.error.message));
      else pending.resolve(frame.ok);
    }
  }

  _request(command, timeout = this.options.requestTimeout) {
    const ws = this._ws;
    if (!ws || this.state !== "connected") return Promise.reject(new Error("not connected"));
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this._pending.delete(id);
        reject(new Error("request timed out"));
      }, timeout);
      this._pending.set(id, { resolve, reject, timer });
      const request = { id, ...command };
      ws.send(this.options.format === "msgpack" ? encode(request) : JSON.stringify(request));
    });
  }

  _failPending(error) {
    for (const { reject, timer } of this._pending.values()) {
      clearTimeout(timer);
      reject(error);
    }
    this._pending.clear();
  }

  async _subscribe(subs) {
    const channels = subs.map((s) => s.channel);
    const recover = {};
    for (const s of subs) if (s.position?.epoch) recover[s.channel] = s.position;
    const token = subs.find((s) => s.handlers.token)?.handlers.token;
    const request = { channels };
    if (Object.keys(recover).length) request.recover = recover;
    if (token) request.token = token;
    let ok;
    try {
      ok = await this._request({ subscribe: request });
    } catch (error) {
      if (error instanceof HeraldError) for (const s of subs) s._failed(error.code, error.message);
      return; // A closed connection resubscribes when it is back.
    }
    const positions = new Map((ok.positions ?? []).map((p) => [p.channel, p]));
    const recovery = new Map((ok.recovery ?? []).map((r) => [r.channel, r]));
    for (const f of ok.failed ?? []) this._subs.get(f.channel)?._failed(f.code, f.message);
    for (const name of ok.subscribed ?? []) {
      const sub = this._subs.get(name);
      if (!sub || sub.state === "unsubscribed") continue;
      if (sub.stats.publications > 0 && !recover[name]) {
        // Back without a position to recover from (the namespace keeps no history): what
        // was published meanwhile is lost to it.
        sub.stats.missed += 1;
        sub.handlers.onGap?.({ channel: name, recovered: false, reason: "no position to recover from: the channel keeps no history" });
      }
      sub._subscribed(positions.get(name), recovery.get(name));
    }
  }

  /**
   * Subscribes to `channel`: `onPublication({channel, data, offset, event})`, `onGap({channel,
   * recovered: false, reason, missing?})`, `onState({state})`, `onError(HeraldError)`,
   * `onJoin` and `onLeave` (`{channel, user, info}`, presence channels), `token` (a channel
   * token). The subscription lives until `unsubscribe()`, across reconnections.
   */
  subscribe(channel, handlers = {}) {
    const existing = this._subs.get(channel);
    if (existing) return existing;
    const sub = new Subscription(this, channel, handlers);
    this._subs.set(channel, sub);
    if (this.state === "connected") this._subscribe([sub]);
    return sub;
  }

  /** Publishes `data` to `channel` (where its namespace lets clients publish). */
  publish(channel, data) {
    return this._request({ publish: { channel, data } });
  }

  /** Reads `channel`'s history: `{limit, since: {offset, epoch}, reverse}`. */
  history(channel, options = {}) {
    return this._request({ history: { channel, ...options } });
  }

  /** The members of presence channel `channel`. */
  presence(channel) {
    return this._request({ presence: { channel } });
  }

  /** How many members and connections presence channel `channel` has. */
  presenceStats(channel) {
    return this._request({ presence_stats: { channel } });
  }
}
