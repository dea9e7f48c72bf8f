/**
 * NodeMetrics: the node's Prometheus registry (served at GET /metrics and summarised by
 * `shoal stats`). Each node has its own registry, so several nodes can share a process.
 * Connection and stream gauges are read from the host when scraped; protocol traffic and
 * refusals are counted as they happen; a core's counters are exposed as they are, with
 * `registerCoreCounters`, which is how every later protocol adds its figures.
 */
import { constants as perfConstants, PerformanceObserver } from 'node:perf_hooks'
import { getHeapSpaceStatistics } from 'node:v8'
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'
import type { Direction } from '../core/sans-io.ts'
import type { DialFailure, DropReason, ProtocolMetrics } from './protocol-metrics.ts'

/** What the gauges read when scraped. */
export interface ConnectionSnapshot {
  direction: 'inbound' | 'outbound'
  relayed: boolean
  streamProtocols: readonly string[]
}

/** What a protocol in the node reports to: its driver's figures and its core's counters (NodeMetrics in the daemon). */
export type DriverMetrics = ProtocolMetrics & Pick<NodeMetrics, 'registerCoreCounters'>

/** The young generation: what a major collection leaves there is about to move or go. */
const YOUNG_SPACES = new Set(['new_space', 'new_large_object_space'])
let heapRetainedBytes: number | undefined
let observingMajorGcs = false

/** Calls `listener` after major collections (once per batch of gc entries that holds one); the returned function stops it. */
export function onMajorGc(listener: () => void): () => void {
  const observer = new PerformanceObserver((list) => {
    if (list.getEntries().some((entry) => (entry as { detail?: { kind?: number } }).detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR)) listener()
  })
  observer.observe({ entryTypes: ['gc'] })
  return () => observer.disconnect()
}

/**
 * Keeps heapRetainedBytes: heap used outside the young generation as the last major
 * collection left it, what the process keeps. Heap used also counts the garbage made since,
 * so it follows the collector's sawtooth, which hides a slow leak. The heap is the
 * process's: one observer serves every registry in it.
 */
function observeMajorGcs(): void {
  if (observingMajorGcs) return
  observingMajorGcs = true
  onMajorGc(() => {
    heapRetainedBytes = getHeapSpaceStatistics().reduce((sum, space) => (YOUNG_SPACES.has(space.space_name) ? sum : sum + space.space_used_size), 0)
  })
}

export class NodeMetrics implements ProtocolMetrics {
  readonly registry = new Registry()
  readonly #bytes: Counter<'protocol' | 'direction'>
  readonly #frames: Counter<'protocol' | 'direction'>
  readonly #relayedBytes: Counter<'protocol' | 'direction'>
  readonly #streamsMoved: Counter<'protocol'>
  readonly #rejected: Counter<'protocol' | 'reason'>
  readonly #dropped: Counter<'protocol' | 'reason'>
  readonly #refused: Counter<'reason'>
  readonly #disconnects: Counter<'protocol' | 'reason'>
  readonly #dialFailures: Counter<'protocol' | 'reason'>
  readonly #requestFailures: Counter<'protocol' | 'reason'>
  readonly #driverStreams: Gauge<'protocol' | 'direction'>
  readonly #heapTrims: Counter
  readonly #heapTrimmedBytes: Counter
  readonly #heapTrimSeconds: Counter

  constructor(connections: () => readonly ConnectionSnapshot[]) {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry })
    new Gauge({
      name: 'shoal_connections',
      help: 'Open connections by direction and kind',
      labelNames: ['direction', 'kind'],
      registers,
      collect() {
        this.reset()
        for (const connection of connections()) {
          this.inc({ direction: connection.direction, kind: connection.relayed ? 'relayed' : 'direct' })
        }
      },
    })
    new Gauge({
      name: 'shoal_streams',
      help: 'Open streams by protocol',
      labelNames: ['protocol'],
      registers,
      collect() {
        this.reset()
        for (const connection of connections()) {
          for (const protocol of connection.streamProtocols) this.inc({ protocol: protocol || 'negotiating' })
        }
      },
    })
    observeMajorGcs()
    new Gauge({
      name: 'shoal_heap_retained_bytes',
      help: 'JS heap in use outside the young generation just after the last major garbage collection (0 before the first): what the process keeps',
      registers,
      collect() {
        if (heapRetainedBytes !== undefined) this.set(heapRetainedBytes)
      },
    })
    this.#bytes = new Counter({ name: 'shoal_protocol_bytes_total', help: 'Frame bytes by protocol and direction', labelNames: ['protocol', 'direction'], registers })
    this.#relayedBytes = new Counter({ name: 'shoal_protocol_relayed_bytes_total', help: 'Frame bytes through a circuit relay (also counted in shoal_protocol_bytes_total), by protocol and direction', labelNames: ['protocol', 'direction'], registers })
    this.#streamsMoved = new Counter({ name: 'shoal_streams_moved_total', help: 'Streams to a peer moved from a relayed connection to a direct one, by protocol', labelNames: ['protocol'], registers })
    this.#frames = new Counter({ name: 'shoal_protocol_frames_total', help: 'Frames by protocol and direction', labelNames: ['protocol', 'direction'], registers })
    this.#rejected = new Counter({ name: 'shoal_wire_rejected_total', help: 'Streams, requests or peers refused for bad input or excess, by protocol and reason', labelNames: ['protocol', 'reason'], registers })
    this.#dropped = new Counter({ name: 'shoal_dropped_total', help: 'Frames or streams dropped by a bound, by protocol and reason', labelNames: ['protocol', 'reason'], registers })
    this.#refused = new Counter({ name: 'shoal_connections_refused_total', help: 'Inbound connections refused, by reason', labelNames: ['reason'], registers })
    this.#disconnects = new Counter({ name: 'shoal_disconnects_total', help: 'Peers disconnected by a protocol, by reason', labelNames: ['protocol', 'reason'], registers })
    this.#dialFailures = new Counter({ name: 'shoal_dial_failures_total', help: 'Dials a protocol asked for that failed, by reason', labelNames: ['protocol', 'reason'], registers })
    this.#requestFailures = new Counter({ name: 'shoal_request_failures_total', help: 'Outbound requests that ended without a response, by protocol and reason', labelNames: ['protocol', 'reason'], registers })
    this.#driverStreams = new Gauge({ name: 'shoal_protocol_streams', help: "Streams held by Shoal's protocol drivers", labelNames: ['protocol', 'direction'], registers })
    const heap = ['heap']
    this.#heapTrims = new Counter({ name: 'shoal_heap_trims_total', help: 'Free memory asked back, by heap: v8 (a last-resort collection, memory.heapTrimRssRiseBytes) or malloc (glibc\'s malloc_trim, memory.mallocTrim)', labelNames: heap, registers })
    this.#heapTrimmedBytes = new Counter({ name: 'shoal_heap_trimmed_bytes_total', help: 'Resident memory those trims gave back, by heap', labelNames: heap, registers })
    this.#heapTrimSeconds = new Counter({ name: 'shoal_heap_trim_seconds_total', help: 'Time those trims took, by heap', labelNames: heap, registers })
  }

  heapTrimmed(heap: 'v8' | 'malloc', releasedBytes: number, seconds: number): void {
    this.#heapTrims.inc({ heap })
    this.#heapTrimmedBytes.inc({ heap }, Math.max(0, releasedBytes))
    this.#heapTrimSeconds.inc({ heap }, seconds)
  }

  frameSent(protocol: string, bytes: number, relayed: boolean): void {
    this.#bytes.inc({ protocol, direction: 'out' }, bytes)
    this.#frames.inc({ protocol, direction: 'out' })
    if (relayed) this.#relayedBytes.inc({ protocol, direction: 'out' }, bytes)
  }

  frameReceived(protocol: string, bytes: number, relayed: boolean): void {
    this.#bytes.inc({ protocol, direction: 'in' }, bytes)
    this.#frames.inc({ protocol, direction: 'in' })
    if (relayed) this.#relayedBytes.inc({ protocol, direction: 'in' }, bytes)
  }

  streamMoved(protocol: string): void {
    this.#streamsMoved.inc({ protocol })
  }

  streamOpened(protocol: string, direction: Direction): void {
    this.#driverStreams.inc({ protocol, direction })
  }

  streamClosed(protocol: string, direction: Direction): void {
    this.#driverStreams.dec({ protocol, direction })
  }

  dialFailed(protocol: string, reason: DialFailure): void {
    this.#dialFailures.inc({ protocol, reason })
  }

  rejected(protocol: string, reason: string): void {
    this.#rejected.inc({ protocol, reason })
  }

  dropped(protocol: string, reason: DropReason): void {
    this.#dropped.inc({ protocol, reason })
  }

  connectionRefused(reason: string): void {
    this.#refused.inc({ reason })
  }

  disconnected(protocol: string, reason: string): void {
    this.#disconnects.inc({ protocol, reason })
  }

  requestFailed(protocol: string, reason: string): void {
    this.#requestFailures.inc({ protocol, reason })
  }

  /** Exposes a core's own counters as `shoal_<name>_total{counter=...}`, read when scraped. */
  registerCoreCounters(name: string, help: string, counters: object): void {
    new Counter({
      name: `shoal_${name}_total`,
      help,
      labelNames: ['counter'],
      registers: [this.registry],
      collect() {
        this.reset()
        for (const [counter, value] of Object.entries(counters)) if (typeof value === 'number') this.inc({ counter }, value)
      },
    })
  }

  /** Shoal's own figures (not the process defaults) as `{ metric: { labels: value } }`. */
  async summary(): Promise<MetricsSummary> {
    const summary: MetricsSummary = {}
    for (const metric of await this.registry.getMetricsAsJSON()) {
      if (!metric.name.startsWith('shoal_') && !PROCESS_METRICS.has(metric.name)) continue
      const values: Record<string, number> = {}
      for (const { labels, value } of metric.values) {
        const key = Object.entries(labels).map(([label, text]) => `${label}=${text}`).join(',')
        values[key] = value
      }
      summary[metric.name] = values
    }
    return summary
  }
}

export type MetricsSummary = Record<string, Record<string, number>>

const PROCESS_METRICS = new Set(['process_resident_memory_bytes', 'process_cpu_seconds_total', 'nodejs_heap_size_used_bytes'])
