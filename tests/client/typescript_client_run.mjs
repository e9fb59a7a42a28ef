// Runs the compiled TypeScript client against a daemon: node typescript_client_run.mjs
// <compiled index.js> <ws url> <token>. Prints one JSON line per step for the Python test.
import { pathToFileURL } from "node:url";

const [, , modulePath, url, token] = process.argv;
const { SessiondClient, KeyNotFoundError, SeqGap } = await import(pathToFileURL(modulePath).href);
const print = (step) => console.log(JSON.stringify(step));

const client = await new SessiondClient(url, { token }).open();
const dry = await client.sessionsCleanup({ fixDmScope: true, dryRun: true });
print({ step: "cleanup", dryRun: dry.dryRun, agentId: dry.agentId, beforeCount: dry.beforeCount });

const page = await client.sessionsList({ limit: 10 });
print({ step: "list", keys: page.sessions.map((s) => s.key), totalCount: page.totalCount });

try {
  await client.sessionsGet({ key: "agent:main:nope" });
  print({ step: "error", thrown: false });
} catch (error) {
  print({ step: "error", keyNotFound: error instanceof KeyNotFoundError, code: error.code });
}

const changes = client.changes({ agent: "main" });
await changes.start();
const writer = await new SessiondClient(url, { token }).open();
await writer.sessionsPatch({ key: "agent:main:from-node", fields: { from: "node" } });
for await (const item of changes) {
  const { keys, reason, seq } = item;
  print({ step: "changed", gap: item instanceof SeqGap, keys, reason, seq });
  break;
}
await writer.close();
await client.close();
