/**
 * One WebSocket to the daemon under the generated client: ids, replies, reconnects.
 *
 * The same rules as the Python client (client/connection.py):
 * - a call waits for a connection (at most `connectTimeoutMs`), sends one JSON-RPC request and
 *   resolves with its result, or rejects with the daemon's error;
 * - when the connection drops, a call in flight that changes nothing is sent again on the next
 *   connection (a few times at most); one that may change state rejects with
 *   ConnectionLostError, since the daemon may already have applied it;
 * - the connection comes back by itself after doubling, jittered pauses;
 * - an error with `"id": null` cannot be matched to a call, so it fails every call in flight.
 *
 * Browsers cannot set headers on a WebSocket, so the token travels in an `auth` request, the
 * first frame of every connection; a refused token is final (no more attempts).
 */

import {
  ClientClosedError,
  ConnectError,
  ConnectionLostError,
  RpcError,
  SessiondError,
} from "./errors.js";

/** A WebSocket constructor: the global one by default (browsers, Node 22+). */
export type WebSocketClass = new (url: string) => WebSocket;

export interface ClientOptions {
  /** The daemon's shared token, sent as an `auth` request on every (re)connect. */
  token?: string;
  /** How long a call waits for a connection before ConnectError (default 10 000). */
  connectTimeoutMs?: number;
  /** How long a call waits for its reply (default: as long as the connection lives). */
  callTimeoutMs?: number;
  /** The first pause between reconnect attempts (default 50); it doubles up to `backoffMaxMs`. */
  backoffFirstMs?: number;
  /** The longest pause between reconnect attempts (default 5 000). */
  backoffMaxMs?: number;
  /** Another WebSocket implementation, e.g. for Node 20 without `--experimental-websocket`. */
  WebSocket?: WebSocketClass;
}

const AUTH_REQUIRED = -32000;
const RESENDS = 3;

interface Pending {
  resolve: (result: unknown) => void;
  reject: (error: unknown) => void;
}

class Lost extends Error {}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class Connection {
  onNotification: (method: string, params: unknown) => void = () => {};
  onReconnect: () => void = () => {};
  /** Set once no call can succeed any more: the client was closed, or the token refused. */
  final: Error | null = null;
  /** How many times a connection was made (1 + reconnects). */
  connections = 0;

  private ws: WebSocket | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private waiters: Array<() => void> = [];
  private lastFailure = "no attempt yet";
  private readonly WebSocketImpl: WebSocketClass;
  private readonly connectTimeoutMs: number;
  private readonly backoffFirstMs: number;
  private readonly backoffMaxMs: number;

  constructor(
    readonly url: string,
    private readonly options: ClientOptions,
    private readonly errorFor: (code: number, message: string, data: unknown) => RpcError,
  ) {
    const impl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
    if (impl === undefined) {
      throw new ConnectError(
        "no WebSocket here: use Node 22+, `node --experimental-websocket`, or pass options.WebSocket",
      );
    }
    this.WebSocketImpl = impl;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.backoffFirstMs = options.backoffFirstMs ?? 50;
    this.backoffMaxMs = options.backoffMaxMs ?? 5_000;
  }

  /** Connect (retrying for up to `connectTimeoutMs`), then keep the connection up. */
  async open(): Promise<void> {
    const ws = await this.withTimeout(this.dial(), this.connectTimeoutMs, () => {
      this.final ??= new ConnectError(`gave up on ${this.url}`);
      return new ConnectError(
        `could not reach ${this.url} in ${this.connectTimeoutMs} ms: ${this.lastFailure}`,
      );
    });
    this.attach(ws);
  }

  async close(): Promise<void> {
    this.finish(new ClientClosedError("the client is closed"));
    const ws = this.ws;
    this.ws = null;
    ws?.close(1000);
  }

  /** The result of one request; `resend`: safe to send again after a drop. */
  async call(method: string, params: object, resend: boolean): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      const ws = await this.connected();
      try {
        const reply = this.request(ws, method, params);
        return this.options.callTimeoutMs === undefined
          ? await reply
          : await this.withTimeout(
              reply,
              this.options.callTimeoutMs,
              () => new SessiondError(`${method}: no reply in ${this.options.callTimeoutMs} ms`),
            );
      } catch (error) {
        if (!(error instanceof Lost)) throw error;
        if (!resend || attempt >= RESENDS) {
          throw new ConnectionLostError(`${method}: the connection closed before the reply`);
        }
      }
    }
  }

  // --------------------------------------------------------------------------------- internals

  private request(ws: WebSocket, method: string, params: object): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        ws.send(JSON.stringify({ jsonrpc: "2.0", method, params, id }));
      } catch {
        this.pending.delete(id);
        reject(new Lost());
      }
    });
  }

  private async connected(): Promise<WebSocket> {
    const deadline = Date.now() + this.connectTimeoutMs;
    for (;;) {
      if (this.final !== null) throw this.final;
      if (this.ws !== null) return this.ws;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new ConnectError(
          `no connection to ${this.url} for ${this.connectTimeoutMs} ms: ${this.lastFailure}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Attempts until one connects and (with a token) authenticates; throws only for good. */
  private async dial(): Promise<WebSocket> {
    let ceiling = this.backoffFirstMs;
    for (;;) {
      if (this.final !== null) throw this.final;
      try {
        const ws = await this.openSocket();
        if (this.final === null) return ws;
        ws.close(1000);
        throw this.final;
      } catch (error) {
        if (error === this.final) throw error;
        if (error instanceof RpcError && error.code === AUTH_REQUIRED) throw error;
        this.lastFailure = error instanceof Error ? error.message : String(error);
      }
      await sleep(ceiling / 2 + (Math.random() * ceiling) / 2);
      ceiling = Math.min(ceiling * 2, this.backoffMaxMs);
    }
  }

  private openSocket(): Promise<WebSocket> {
    return new Promise((resolve, reject) => {
      const ws = new this.WebSocketImpl(this.url);
      let opened = false;
      ws.onmessage = (event: MessageEvent) => {
        if (typeof event.data === "string") this.dispatch(event.data);
      };
      ws.onerror = () => {
        if (!opened) reject(new ConnectError(`cannot connect to ${this.url}`));
      };
      ws.onclose = (event: CloseEvent) => {
        if (!opened) {
          reject(new ConnectError(`${this.url} closed the connection (${event.code})`));
        } else if (this.ws === ws) {
          this.dropped();
        } else {
          this.failPending(new Lost());
        }
      };
      ws.onopen = () => {
        opened = true;
        const token = this.options.token;
        if (token === undefined) {
          resolve(ws);
          return;
        }
        this.request(ws, "auth", { token }).then(
          () => resolve(ws),
          (error: unknown) => {
            ws.close(1000);
            reject(error instanceof Lost ? new ConnectError("closed during auth") : error);
          },
        );
      };
    });
  }

  private attach(ws: WebSocket): void {
    this.ws = ws;
    this.connections += 1;
    this.wake();
  }

  private dropped(): void {
    this.ws = null;
    this.failPending(new Lost());
    if (this.final !== null) return;
    this.dial().then(
      (ws) => {
        this.attach(ws);
        this.onReconnect();
      },
      (error: unknown) => this.finish(error instanceof Error ? error : new Error(String(error))),
    );
  }

  private dispatch(text: string): void {
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof frame !== "object" || frame === null || Array.isArray(frame)) return;
    const f = frame as Record<string, unknown>;
    if (typeof f.method === "string") {
      this.onNotification(f.method, f.params);
      return;
    }
    const id = typeof f.id === "number" ? f.id : null;
    if (typeof f.error === "object" && f.error !== null) {
      const e = f.error as { code?: unknown; message?: unknown; data?: unknown };
      const error = this.errorFor(Number(e.code), String(e.message), e.data ?? null);
      if (id === null) this.failPending(error);
      else this.settle(id, (p) => p.reject(error));
    } else if ("result" in f && id !== null) {
      this.settle(id, (p) => p.resolve(f.result));
    }
  }

  private settle(id: number, how: (pending: Pending) => void): void {
    const pending = this.pending.get(id);
    if (pending === undefined) return;
    this.pending.delete(id);
    how(pending);
  }

  private failPending(error: unknown): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(error);
  }

  private finish(error: Error): void {
    this.final ??= error;
    this.failPending(error);
    this.wake();
  }

  private withTimeout<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(onTimeout()), ms);
      work.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  }
}
