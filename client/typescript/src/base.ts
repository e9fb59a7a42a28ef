/**
 * What the generated client inherits: open and close, typed calls, the change stream (as
 * client/base.py). The generated `SessiondClient` adds one method per entry of the method table.
 *
 * Results are typed, not validated: the daemon and this file are generated from one schema.
 */

import { ChangeStream } from "./changes.js";
import { Connection, type ClientOptions } from "./connection.js";
import { RpcError, SessiondError, type RpcErrorClass } from "./errors.js";
import type {
  ProgressParams,
  SessionsChanged,
  StoresChanged,
  SubscribeParams,
  SubscribeResult,
} from "./generated.js";

export class ClientBase {
  protected readonly connection: Connection;
  private streams: ChangeStream[] = [];
  private progress = new Map<string | number, (step: ProgressParams) => void>();

  constructor(
    readonly url: string,
    options: ClientOptions,
    private readonly errors: ReadonlyMap<number, RpcErrorClass>,
  ) {
    this.connection = new Connection(url, options, (code, message, data) => {
      const ErrorClass = this.errors.get(code) ?? RpcError;
      return new ErrorClass(code, message, data);
    });
    this.connection.onNotification = (method, params) => this.notified(method, params);
    this.connection.onReconnect = () => {
      for (const stream of this.streams) stream.reconnected();
    };
  }

  /** Connect, retrying for up to `connectTimeoutMs`; rejects with ConnectError or a refusal. */
  async open(): Promise<this> {
    await this.connection.open();
    return this;
  }

  async close(): Promise<void> {
    for (const stream of this.streams) stream.end(null);
    this.streams = [];
    await this.connection.close();
  }

  /** How many times this client has connected (1 + reconnects). */
  get connections(): number {
    return this.connection.connections;
  }

  /**
   * `sessions.changed` for one agent's store, every store, or (neither) the default agent's:
   * `for await (const item of client.changes())` yields SessionsChanged, and a SeqGap before
   * any point where changes may have been missed; with `allAgents`, a StoresChanged when a
   * config reload adds or removes stores.
   */
  changes(params: SubscribeParams = {}, maxQueued = 1000): ChangeStream {
    const stream: ChangeStream = new ChangeStream(
      {
        subscribe: () => this.request<SubscribeResult>("sessions.subscribe", params, false),
        started: (s) => {
          this.streams.push(s);
        },
        stopped: async (s) => {
          this.streams = this.streams.filter((other) => other !== s);
          if (this.streams.length > 0 || this.connection.final !== null) return;
          try {
            await this.request("sessions.unsubscribe", {}, false);
          } catch (error) {
            if (!(error instanceof SessiondError)) throw error;
          }
        },
        isFinal: () => this.connection.final !== null,
      },
      maxQueued,
    );
    return stream;
  }

  /**
   * Hear `$/progress` for calls made with `progressToken: token` (begin, report..., end, in
   * order, before the call's own reply); returns the remover.
   */
  onProgress(token: string | number, listener: (step: ProgressParams) => void): () => void {
    this.progress.set(token, listener);
    return () => {
      this.progress.delete(token);
    };
  }

  /** An untyped call, for a method newer than this client. */
  call(method: string, params: object = {}, mutates = true): Promise<unknown> {
    return this.connection.call(method, params, !mutates);
  }

  protected async request<R>(method: string, params: object, mutates: boolean): Promise<R> {
    return (await this.connection.call(method, params, !mutates)) as R;
  }

  private notified(method: string, params: unknown): void {
    if (method === "$/progress") {
      const step = params as ProgressParams;
      this.progress.get(step.token)?.(step);
      return;
    }
    if (method !== "sessions.changed" && method !== "sessions.storesChanged") return;
    const change = params as SessionsChanged | StoresChanged;
    for (const stream of this.streams) stream.push(change);
  }
}
