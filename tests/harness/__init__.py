"""The one harness for real daemons, shared by the tests, stress/ and bench/.

- `state_dirs`: throwaway OpenClaw state dirs (`write_state_dir`, `store_path`, `read_rows`).
- `daemon_process`: `DaemonProcess`, a `sessiond serve` subprocess on port 0; HTTP probes.
- `zygote`: daemons forked from one pre-imported interpreter, for runs with hundreds of restarts.
- `proc_status`: whether a pid is alive, its RSS.
- `raw_frames`: `RpcClient`, a JSON-RPC client that can also send and read raw frames.
- `async_run`: `run` a coroutine from a sync test, poll `until` a condition holds.
- `reference_gateway`: `ReferenceGateway`, OpenClaw 2026.5.12's `gateway run` in its own
  process group; `gateway_client`: `GatewayClient`, a protocol v4 client with a device identity.
- `beside_gateway`: the reference gateway and sessiond (or two gateways) writing one store at
  once, and the check that no acknowledged write was taken back (issue 18).
- `stress_report`: the `Report` of a stress script (figures, violations), `machine`, `percentile`.

stress/ and bench/ run with `PYTHONPATH=tests`; pytest has `pythonpath = ["tests"]`.
"""
