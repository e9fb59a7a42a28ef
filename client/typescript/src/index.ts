/** The sessiond client for browsers and Node: `import { SessiondClient } from "@sessiond/client"`. */

export * from "./generated.js";
export { ClientBase } from "./base.js";
export {
  ChangeStream,
  SeqGap,
  SeqTracker,
  isStoresChanged,
  type ChangeItem,
  type GapReason,
} from "./changes.js";
export type { ClientOptions, WebSocketClass } from "./connection.js";
export {
  ClientClosedError,
  ConnectError,
  ConnectionLostError,
  RpcError,
  SessiondError,
  type RpcErrorClass,
} from "./errors.js";
