/**
 * What the sessiond client throws, split by whose move it is next (as client/errors.py).
 *
 * `RpcError` is the daemon's answer (code, message, data of the JSON-RPC error object); the
 * generated module subclasses it once per code, so `error instanceof KeyNotFoundError` works.
 */

export class SessiondError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The daemon answered with a JSON-RPC error object; generated subclasses exist per code. */
export class RpcError extends SessiondError {
  constructor(
    readonly code: number,
    readonly rpcMessage: string,
    readonly data: unknown,
  ) {
    super(`${rpcMessage} (${code})`);
  }
}

/** The daemon could not be reached in time, or refused this client for good. */
export class ConnectError extends SessiondError {}

/** The connection dropped while a call that changes state was in flight: it may have happened. */
export class ConnectionLostError extends SessiondError {}

/** The client was closed; it makes no more calls. */
export class ClientClosedError extends SessiondError {}

export type RpcErrorClass = new (code: number, message: string, data: unknown) => RpcError;
