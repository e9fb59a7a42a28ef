/**
 * `sessions.changed` as an async iterator that says when changes were missed (as
 * client/changes.py): each `SessionsChanged` in order, and a `SeqGap` first wherever the
 * listener's copy of a store may be stale and should be read again.
 *
 * - `skipped`: a notification's seq is more than one past the last one seen;
 * - `overflow`: the caller fell `maxQueued` behind; the queue is dropped, the stream subscribes
 *   again and reports each store whose seq moved meanwhile;
 * - `reconnected`: after a lost connection it subscribes again and reports every store, since a
 *   restarted daemon counts from zero again.
 * Notifications whose seq is not past the last one seen are stale duplicates and are dropped.
 * A `StoresChanged` (a config reload added or removed stores) is yielded as it comes: the stores
 * it adds are followed from the seq it carries, the ones it removes no longer.
 */

import { ConnectError } from "./errors.js";
import type {
  SessionsChanged,
  StoresChanged,
  SubscribedStore,
  SubscribeResult,
} from "./generated.js";

export type GapReason = "skipped" | "overflow" | "reconnected";

/** What a ChangeStream yields. */
export type ChangeItem = SessionsChanged | SeqGap | StoresChanged;

/** Tells the two notifications apart (only `sessions.storesChanged` has `added`). */
export function isStoresChanged(item: object): item is StoresChanged {
  return "added" in item && "removed" in item;
}

/** Changes to one store may have been missed: read it again before trusting deltas. */
export class SeqGap {
  constructor(
    readonly agentId: string,
    readonly storePath: string,
    /** The seq this listener had; null if it had not seen the store before. */
    readonly lastSeen: number | null,
    /** The seq the daemon reports now, or carried on the notification that follows. */
    readonly current: number,
    readonly reason: GapReason,
  ) {}
}

/** The last seq seen per store, without I/O: says which notifications are new or missed. */
export class SeqTracker {
  last = new Map<string, number>();

  /** Take the daemon's current seqs; `reason` null is the first subscription (no gaps). */
  resync(stores: SubscribedStore[], reason: GapReason | null): SeqGap[] {
    const gaps: SeqGap[] = [];
    for (const store of stores) {
      const seen = this.last.get(store.storePath) ?? null;
      if (reason === "reconnected" || (reason !== null && seen !== store.seq)) {
        gaps.push(new SeqGap(store.agentId, store.storePath, seen, store.seq, reason));
      }
    }
    this.last = new Map(stores.map((store) => [store.storePath, store.seq]));
    return gaps;
  }

  /** What to yield for one notification: nothing (stale, or not ours), it, or a gap and it. */
  observe(change: SessionsChanged | StoresChanged): ChangeItem[] {
    if (isStoresChanged(change)) {
      for (const store of change.removed) this.last.delete(store.storePath);
      for (const store of change.added) this.last.set(store.storePath, store.seq);
      return [change];
    }
    const seen = this.last.get(change.storePath);
    if (seen === undefined || change.seq <= seen) return [];
    this.last.set(change.storePath, change.seq);
    if (change.seq === seen + 1) return [change];
    return [new SeqGap(change.agentId, change.storePath, seen, change.seq, "skipped"), change];
  }
}

class Resubscribe {
  constructor(readonly reason: GapReason) {}
}

/** The hooks a stream needs from its client. */
export interface StreamHost {
  subscribe(): Promise<SubscribeResult>;
  started(stream: ChangeStream): void;
  stopped(stream: ChangeStream): Promise<void>;
  isFinal(): boolean;
}

/**
 * Notifications for the stores one `sessions.subscribe` named, with gaps marked. `start()`
 * subscribes (iteration does it too); `stop()` (or leaving a `for await` loop) unsubscribes when
 * no other stream of the client is open.
 */
export class ChangeStream implements AsyncIterableIterator<ChangeItem> {
  private readonly tracker = new SeqTracker();
  private inbox: Array<SessionsChanged | StoresChanged | Resubscribe> = [];
  private queued = 0;
  private readonly ready: ChangeItem[] = [];
  private wakeUp: (() => void) | null = null;
  private starting: Promise<void> | null = null;
  private ended: { error: unknown } | null = null;

  constructor(
    private readonly host: StreamHost,
    private readonly maxQueued: number,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Subscribe, once: notifications from now on are delivered. */
  start(): Promise<void> {
    this.starting ??= (async () => {
      this.host.started(this);
      let result: SubscribeResult;
      try {
        result = await this.host.subscribe();
      } catch (error) {
        await this.stop();
        throw error;
      }
      this.tracker.resync(result.stores, null);
    })();
    return this.starting;
  }

  /** Stop delivering; unsubscribes on the daemon if no other stream is open. */
  async stop(): Promise<void> {
    if (this.ended !== null) return;
    this.end(null);
    await this.host.stopped(this);
  }

  async next(): Promise<IteratorResult<ChangeItem>> {
    await this.start();
    while (this.ready.length === 0) {
      const item = await this.take();
      if (item === null) return { done: true, value: undefined };
      if (item instanceof Resubscribe) {
        const result = await this.resubscribe();
        this.ready.push(...this.tracker.resync(result.stores, item.reason));
      } else {
        this.ready.push(...this.tracker.observe(item));
      }
    }
    return { done: false, value: this.ready.shift()! };
  }

  async return(): Promise<IteratorResult<ChangeItem>> {
    await this.stop();
    return { done: true, value: undefined };
  }

  // ----------------------------------------------------------------------- fed by the client

  push(change: SessionsChanged | StoresChanged): void {
    if (this.ended !== null) return;
    if (this.queued >= this.maxQueued) {
      const lostConnection = this.inbox.some(
        (i) => i instanceof Resubscribe && i.reason === "reconnected",
      );
      this.inbox = [new Resubscribe(lostConnection ? "reconnected" : "overflow")];
      this.queued = 0;
    } else {
      this.inbox.push(change);
      this.queued += 1;
    }
    this.wake();
  }

  reconnected(): void {
    if (this.ended !== null) return;
    this.inbox.push(new Resubscribe("reconnected"));
    this.wake();
  }

  /** No more items: iteration ends (error null) or throws `error`. */
  end(error: unknown): void {
    this.ended ??= { error };
    this.wake();
  }

  // ------------------------------------------------------------------------------ internals

  private wake(): void {
    const wakeUp = this.wakeUp;
    this.wakeUp = null;
    wakeUp?.();
  }

  private async take(): Promise<SessionsChanged | StoresChanged | Resubscribe | null> {
    for (;;) {
      const item = this.inbox.shift();
      if (item !== undefined) {
        if (!(item instanceof Resubscribe)) this.queued -= 1;
        return item;
      }
      if (this.ended !== null) {
        if (this.ended.error === null) return null;
        throw this.ended.error;
      }
      await new Promise<void>((resolve) => (this.wakeUp = resolve));
    }
  }

  private async resubscribe(): Promise<SubscribeResult> {
    for (;;) {
      try {
        return await this.host.subscribe();
      } catch (error) {
        if (!(error instanceof ConnectError) || this.host.isFinal() || this.ended !== null) {
          throw error;
        }
      }
    }
  }
}
