"""`GET /metrics`: the daemon's counters in the Prometheus text format, via prometheus_client.

Request counts and latencies are observed as requests are answered; flush durations as store
writes finish (`durable_file.write_observers`). Everything a store or the journal already
counts (flushes, failures, reloads, conflicts, stale writes repaired, rows, bytes, cleanup
removals, journal entries) is read at scrape time by a custom collector, so nothing is counted
twice and no request path pays for a metric it does not touch.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sessiond.daemon.durable_file import write_observers
from sessiond.daemon.methods import plan_inputs
from sessiond.daemon.registry import Registry

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class _StoreCollector(Collector):
    """Per-store and journal figures, read from the live objects at each scrape."""

    def __init__(self, registry: Registry, dialects: Callable[[], Iterable[str]]) -> None:
        self.registry = registry
        self.dialects = dialects

    def collect(self) -> Iterator[Metric]:
        labels = ["agent", "store"]
        counters = {
            "flushes": ("Durable writes of a store", "flushes"),
            "flush_failures": (
                "Store writes that failed (kept in memory, retried)",
                "flush_failures",
            ),
            "external_reloads": ("External edits loaded", "external_reloads"),
            "conflicts": ("Keys where an external edit and an unflushed change met", "conflicts"),
            "stale_writes_repaired": ("Stale writes found and repaired", "stale_writes_repaired"),
        }
        families = {
            name: CounterMetricFamily(f"sessiond_{name}", text, labels=labels)
            for name, (text, _attr) in counters.items()
        }
        rows = GaugeMetricFamily("sessiond_store_rows", "Rows in a store", labels=labels)
        size = GaugeMetricFamily(
            "sessiond_store_bytes", "Bytes of a store's file as last read or written", labels=labels
        )
        entries = GaugeMetricFamily(
            "sessiond_journal_entries", "Entries kept in a store's cleanup journal", labels=labels
        )
        kept = self.registry.journals.entry_counts()
        for live in self.registry:
            values = [live.agent_id, live.path]
            for name, (_text, attr) in counters.items():
                families[name].add_metric(values, float(getattr(live, attr, 0)))
            rows.add_metric(values, float(len(live.store)))
            size.add_metric(values, float(live.sig.size if live.sig is not None else 0))
            entries.add_metric(values, float(kept.get(live.path, 0)))
        yield from families.values()
        yield from (rows, size, entries)

        stats = self.registry.journals.stats
        removed = CounterMetricFamily(
            "sessiond_cleanup_rows_removed", "Rows removed by applied cleanups", labels=["action"]
        )
        for action, count in sorted(stats.rows_removed.items()):
            removed.add_metric([action], float(count))
        yield removed
        yield CounterMetricFamily(
            "sessiond_cleanup_files_archived",
            "Transcripts renamed to archives by cleanups and deletes",
            value=float(stats.files_archived),
        )
        yield CounterMetricFamily(
            "sessiond_cleanup_files_removed",
            "Files deleted outright by cleanups",
            value=float(stats.files_removed),
        )
        yield CounterMetricFamily(
            "sessiond_journal_entries_written",
            "Cleanup journal entries written",
            value=float(stats.entries_written),
        )
        listings = plan_inputs(self.registry).listings
        yield CounterMetricFamily(
            "sessiond_dir_reads",
            "Directory reads made by cleanup plans (a plan on an unchanged dir reads none)",
            value=float(listings.reads),
        )
        yield CounterMetricFamily(
            "sessiond_dir_reads_saved",
            "Directory reads a plan did not need: the dir was as the kept listing found it",
            value=float(listings.reuses),
        )
        clients = GaugeMetricFamily(
            "sessiond_connected_clients", "Open connections by dialect", labels=["dialect"]
        )
        for dialect, count in sorted(Tally(self.dialects()).items()):
            clients.add_metric([dialect], float(count))
        yield clients


class Metrics:
    """One daemon's metrics, on a registry of its own (not prometheus_client's global one)."""

    def __init__(self, registry: Registry, dialects: Callable[[], Iterable[str]]) -> None:
        self.stores = registry
        self.registry = CollectorRegistry(auto_describe=True)
        self._counts: dict[tuple[str, str], Counter] = {}
        self._timings: dict[str, Histogram] = {}
        self.requests = Counter(
            "sessiond_requests",
            "Requests answered, by method and outcome (ok, error, internal)",
            ["method", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sessiond_request_duration_seconds",
            "Time to answer a request, by method",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.flush_duration = Histogram(
            "sessiond_flush_duration_seconds",
            "Time of one durable store write (temp file, fsync, rename, directory fsync)",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StoreCollector(registry, dialects))
        write_observers.append(self._observe_write)

    def _observe_write(self, path: str, seconds: float, ok: bool) -> None:
        if path in self.stores.stores:
            self.flush_duration.observe(seconds)

    def request(self, method: str, outcome: str, seconds: float) -> None:
        # The labelled children, kept: `labels()` takes a lock and builds a key per call.
        count = self._counts.get((method, outcome))
        if count is None:
            count = self._counts[method, outcome] = self.requests.labels(method, outcome)
        timing = self._timings.get(method)
        if timing is None:
            timing = self._timings[method] = self.latency.labels(method)
        count.inc()
        timing.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def close(self) -> None:
        if self._observe_write in write_observers:
            write_observers.remove(self._observe_write)
