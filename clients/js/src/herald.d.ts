// Type declarations of herald-client (src/herald.js).

/** Where a client stands in a channel: the offset of the last publication it saw, and the
 * epoch that offset counts in (null before the channel's first publication is known). */
export interface Position {
  offset: number;
  epoch: string | null;
}

export interface Publication {
  channel: string;
  data: unknown;
  /** Absent for a publication that bypassed sequencing. */
  offset?: number;
  /** The publication's event name, when it has one. */
  event?: string;
}

export interface Gap {
  channel: string;
  recovered: false;
  reason: string;
  /** The offsets missed, when known (both included). */
  missing?: { from: number; to: number };
  /** The epoch the publications after the gap count in, when known. */
  epoch?: string;
  /** Where the channel stands now (after a failed recovery). */
  position?: Position;
}

export interface Member {
  channel: string;
  user: string;
  info?: unknown;
}

export type SubscriptionState = "subscribing" | "subscribed" | "unsubscribed" | "failed";

export interface SubscriptionHandlers {
  onPublication?(publication: Publication): void;
  /** Publications may have been missed: re-sync the channel's state. */
  onGap?(gap: Gap): void;
  /** `server`: the server took the connection out of the channel (`unsubscribed`). */
  onState?(change: { state: SubscriptionState; error?: HeraldError; server?: boolean }): void;
  /** The subscription was refused. */
  onError?(error: HeraldError): void;
  /** A member joined (presence channels). */
  onJoin?(member: Member): void;
  /** A member left (presence channels). */
  onLeave?(member: Member): void;
  /** A channel token granting a private channel. */
  token?: string;
}

export class HeraldError extends Error {
  /** The protocol's error code (docs/protocol.md). */
  code: number;
}

export class Subscription {
  readonly channel: string;
  readonly state: SubscriptionState;
  readonly position: Position | null;
  readonly stats: { publications: number; recovered: number; missed: number };
  /** Resolves once subscribed; rejects with the refusal. */
  readonly ready: Promise<Subscription>;
  unsubscribe(): Promise<void>;
}

export type ConnectionState = "disconnected" | "connecting" | "connected";

export interface Disconnected {
  /** The close code (0 when the connection could not be made). */
  code: number;
  reason: string;
  /** Whether the client will reconnect by itself. */
  reconnect: boolean;
}

export interface HeraldOptions {
  /** A connection token (JWT), sent as `?token=`. */
  token?: string;
  /** Returns a new token: before the current one expires (the `refresh` request), and for
   * each connection after 4500. */
  getToken?(): Promise<string>;
  /** The wire format: "json" (herald.v1.json, the default) or "msgpack" (herald.v1.msgpack). */
  format?: "json" | "msgpack";
  /** A WebSocket class, where there is no global one. */
  WebSocket?: unknown;
  /** Backoff between reconnections: from this (ms)... */
  minReconnectDelay?: number;
  /** ...doubling up to this (ms), with jitter. */
  maxReconnectDelay?: number;
  /** After a drain (close 4000): a random delay up to this (ms). */
  drainDelay?: number;
  /** How long a request waits for its reply (ms). */
  requestTimeout?: number;
  /** A quiet connection is checked with a request of the client's own after this (ms)... */
  pingInterval?: number;
  /** ...and given up when the answer takes longer than this (ms). */
  livenessTimeout?: number;
  /** A token is refreshed this long before it expires (ms), or halfway through its life. */
  refreshAhead?: number;
}

export class Herald {
  /** One URL, or several: each reconnection takes the next. */
  constructor(url: string | string[], options?: HeraldOptions);
  readonly state: ConnectionState;
  /** Times the token was refreshed on the open connection. */
  readonly refreshes?: number;
  connect(): void;
  disconnect(): void;
  on(event: "connecting" | "connected", listener: () => void): () => void;
  on(event: "disconnected", listener: (detail: Disconnected) => void): () => void;
  on(event: "state", listener: (detail: { state: ConnectionState } & Partial<Disconnected>) => void): () => void;
  on(event: "error", listener: (error: Error) => void): () => void;
  subscribe(channel: string, handlers?: SubscriptionHandlers): Subscription;
  publish(channel: string, data: unknown): Promise<{ message_id: string; offset: number; epoch: string }>;
  history(
    channel: string,
    options?: { limit?: number; since?: Position; reverse?: boolean },
  ): Promise<{ channel: string; offset: number; epoch?: string; publications: Array<{ data: unknown; offset: number; event?: string }> }>;
  presence(channel: string): Promise<{ channel: string; members: Array<{ user: string; info?: unknown }> }>;
  presenceStats(channel: string): Promise<{ channel: string; count: number }>;
}

/** The `exp` claim of a JWT in ms since the epoch, or null. */
export function tokenExpiry(token: string): number | null;
