/**
 * Soak: `daemons` real daemons on loopback (the first the bootstrap node, the others
 * bootstrapped to it; DHT servers, no mDNS) under steady, bounded load for `minutes`:
 *   - gossip: every daemon subscribes to one topic and publishes to it at a fixed rate (the
 *     daemons' schedules interleaved); every delivery to every other daemon is counted;
 *   - DHT: rounds at a fixed interval, each a provide and a find-providers (from another
 *     daemon) of one of a few CIDs per daemon, and a put and a get (from another daemon) of
 *     the daemon's IPNS record, its sequence raised each time;
 *   - transfers: at a fixed interval a daemon adds fresh random content, another fetches it
 *     through the swarm and reads it back (SHA-256 compared), then both unpin it and run
 *     repo gc, so the disk stays bounded.
 * Every daemon's resident memory (VmRSS) and V8 heap (from its /metrics) is sampled every
 * `sampleSeconds`. After the warm-up, a least-squares line per daemon and metric gives the
 * change over the measured window relative to the line's value at its start; the soak is
 * flat when every daemon's RSS and retained heap change within CHANGE_PERCENT_MAX.
 * The retained heap is the daemon's shoal_heap_retained_bytes: the heap outside the young
 * generation as the last major GC left it, one point per major GC seen: the part a leak
 * grows. Heap used as sampled rises between major GCs (about one every 45 s here) and falls
 * at each, so its line says more of where the window starts in that cycle than of a leak; it
 * is reported, not judged. (Heap used less the young generation, sampled up to an interval
 * after a GC, also counted what had been promoted since.)
 *
 * The state the load leaves is bounded, so that what grows is a leak: the provided CIDs and
 * IPNS names are a fixed set, and transfers cycle through `transferContents` contents, each
 * added, fetched and removed again in turn (fresh content each time made every daemon hold
 * provider records, with a 48 h lifetime, for every transfer of the run).
 *
 * Driven by bench/soak.ts (`npm run soak`); the result describes itself for other reports.
 */
import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createIPNSRecord, marshalIPNSRecord } from 'ipns'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { equals } from 'uint8arrays/equals'
import { HttpClient } from '../api/http-client.ts'
import { Prng } from '../core/prng.ts'
import type { AddCandidate, PubSubSubscription } from '../node/api.ts'
import { percentile } from '../sim/metrics.ts'
import { eventually, startDaemon, withTimeout, type Daemon } from './cli.ts'
import { cpuSeconds, mainHeapResidentBytes, residentMemory } from './proc-stats.ts'
import { cleanupScope, pseudoRandomBytes } from './temp.ts'

const MiB = 2 ** 20

export interface SoakLoad {
  /** Messages a second, all daemons together (each publishes its share on its own schedule). */
  gossipMessagesPerSecond: number
  gossipMessageBytes: number
  /** One round: provide + find-providers, put + get of an IPNS record. */
  dhtRoundSeconds: number
  transferSeconds: number
  transferBytes: number
  /** Distinct contents the transfers cycle through. */
  transferContents: number
}

/** Chosen to keep 10 daemons well under 1.2 cores of a 2-core machine (measured: see the result's cpu). */
export const DEFAULT_SOAK_LOAD: SoakLoad = {
  gossipMessagesPerSecond: 5,
  gossipMessageBytes: 256,
  dhtRoundSeconds: 2,
  transferSeconds: 15,
  transferBytes: 4 * MiB,
  transferContents: 8,
}

export interface SoakOptions {
  daemons: number
  minutes: number
  /** Default: warmupMinutesDefault(minutes). */
  warmupMinutes?: number
  sampleSeconds: number
  seed?: string
  load?: Partial<SoakLoad>
  /** Where the repositories go: default the OS temp folder (the real disk, as benchmarks use). */
  directory?: string
  /** Set-up steps, and one line a minute while the load runs. */
  onProgress?: (line: string) => void
  /** Each sample as it is taken, for a caller that keeps the series (the result keeps only their trends). */
  onSample?: (sample: SoakSample) => void
  /** Stops the load and the daemons; runSoak then rejects. */
  signal?: AbortSignal
}

/** The line's change over the window relative to its value at the start; positive is growth. */
export interface MemoryTrend {
  sampleCount: number
  /** The fitted line's values at the first and the last sample of the window. */
  startBytes: number
  endBytes: number
  changePercent: number
  mibPerHour: number
}

export interface TrendSummary {
  changePercentMedian: number
  /** The change of largest magnitude, with its sign, and whose it is. */
  changePercentWorst: number
  worstDaemon: number
  mibPerHourMedian: number
  mibPerHourWorst: number
  flat: boolean
}

export interface OperationCount {
  ok: number
  failed: number
}

/**
 * Where RSS goes, reported to explain its trend, not judged. RSS is anonymous plus
 * file-backed memory (plus shared, none here); anonymous memory less V8's heap and the
 * external memory is native: the allocator's heaps (LevelDB, libuv, OpenSSL, Node's own).
 */
export interface RssParts {
  anonymous: MemoryTrend
  /** Resident pages of mapped files: the executable, libraries, LevelDB's tables. */
  file: MemoryTrend
  /** The C allocator's main heap (mainHeapResidentBytes), part of the anonymous memory. */
  allocatorMainHeap: MemoryTrend
  /** The memory V8 holds for its heap (nodejs_heap_size_total_bytes). */
  heapCommitted: MemoryTrend
  /** Buffers and other memory outside the heap that V8 is told of (nodejs_external_memory_bytes). */
  external: MemoryTrend
}

export interface DaemonMemory {
  index: number
  rss: MemoryTrend
  /** The retained heap (see the module's comment), or heap used when too few major GCs were seen. */
  heap: MemoryTrend
  heapUsed: MemoryTrend
  samplesAfterMajorGc: number
  rssParts: RssParts
  /** The daemon's V8 heap trims (node/heap-trimmer.ts) in the window, and the RSS they gave back. */
  heapTrims: number
  heapTrimmedBytes: number
  /** The RSS glibc's malloc_trim gave back in the window (it runs after every major GC). */
  mallocTrimmedBytes: number
}

export interface SoakMemory {
  /** From the first sample of the window (the end of the warm-up) to the last. */
  windowMinutes: number
  rss: TrendSummary
  heap: TrendSummary
  daemons: DaemonMemory[]
}

export interface SoakResult {
  passed: boolean
  /** Every daemon's retained heap and RSS within ±changePercentMax over the measured window. */
  flat: boolean
  /** Every kind of load ran, nothing failed, gossip delivered at least gossipDeliveryRatioMin. */
  loadOk: boolean
  /** Why it did not pass, a line each. */
  failures: string[]
  settings: {
    daemons: number
    minutes: number
    warmupMinutes: number
    sampleSeconds: number
    seed: string
    load: SoakLoad
    changePercentMax: number
    gossipDeliveryRatioMin: number
  }
  /** The load phase as it ran, from the first operation to the end of the drain. */
  loadMs: number
  memory: SoakMemory & { daemons: Array<DaemonMemory & { peerId: string }> }
  load: {
    gossip: {
      published: number
      publishFailed: number
      /** Published messages sent to no peer (the publisher knew no subscriber). */
      publishedToNobody: number
      expectedDeliveries: number
      delivered: number
      deliveryRatio: number
      duplicateDeliveries: number
      /** Messages the daemons' subscription queues dropped because this harness read too slowly. */
      droppedForSlowReader: number
      ticksSkipped: number
    }
    dht: { rounds: number; provide: OperationCount; findProviders: OperationCount; put: OperationCount; get: OperationCount; ticksSkipped: number }
    transfers: OperationCount & { bytesReceived: number; fetchMsMedian: number | undefined; ticksSkipped: number }
    errorCount: number
    /** The first ERRORS_KEPT_MAX errors, each `what: message`. */
    errors: string[]
  }
  cpu: {
    /** CPU of all daemons together over the load phase, in cores (1 = one core busy). */
    daemonsCores: number
    daemonPercentMax: number
    harnessCores: number
    loadAverageStart: number[]
    loadAverageEnd: number[]
  }
}

/** What the soak samples of each daemon: from /proc (rss, anonymous, file, allocatorMainHeap) and from its /metrics. */
export type SampledSeries = 'rss' | 'anonymous' | 'file' | 'allocatorMainHeap' | 'heap' | 'retained' | 'majorGcs' | 'heapCommitted' | 'external' | 'heapTrims' | 'heapTrimmedBytes' | 'mallocTrimmedBytes'

/** One sample: ms since the load started, and every daemon's series (a series missing when it could not be read). */
export interface SoakSample {
  atMs: number
  daemons: Array<Partial<Record<SampledSeries, number>>>
}

export const CHANGE_PERCENT_MAX = 5
/** Samples after a major GC needed for a trend of the retained heap. */
const AFTER_MAJOR_GC_POINTS_MIN = 4
/** On loopback GossipSub should lose nothing; a little slack for messages in flight at a sample's edge. */
export const GOSSIP_DELIVERY_RATIO_MIN = 0.999
/**
 * V8 goes on compiling the daemon's code for about 15 minutes of this load: the code spaces
 * grew 5–9 MiB/h over minutes 5–15 and 0.6–3.2 MiB/h over 15–40, while the rest of the
 * retained heap changed −0.1 to +1.3 MiB/h (40-minute run, 2026-12-06).
 */
const WARMUP_MINUTES_MAX = 15
const SAMPLES_IN_WINDOW_MIN = 10
const TOPIC = 'shoal-soak'
/** Each daemon provides a few CIDs of its own again and again: the provider records stay a fixed set. */
const PROVIDED_CIDS_PER_DAEMON = 4
const IPNS_LIFETIME_MS = 3_600_000
const SETTLE_MS_MAX = 180_000
const API_CALL_MS_MAX = 30_000
const TRANSFER_MS_MAX = 120_000
const DRAIN_MS_MAX = 15_000
const ERRORS_KEPT_MAX = 20
const STDERR_TAIL_CHARS = 2_000

/** The default warm-up: 15 minutes, or half the run when that is shorter. */
export function warmupMinutesDefault(minutes: number): number {
  return Math.min(WARMUP_MINUTES_MAX, minutes / 2)
}

/** Least-squares line through (x, y). */
export function fitLine(xs: readonly number[], ys: readonly number[]): { slope: number; intercept: number } {
  if (xs.length !== ys.length || xs.length < 2) throw new Error(`a line needs two points or more, got ${xs.length}`)
  const count = xs.length
  const xMean = xs.reduce((sum, x) => sum + x, 0) / count
  const yMean = ys.reduce((sum, y) => sum + y, 0) / count
  let covariance = 0
  let variance = 0
  for (let index = 0; index < count; index++) {
    covariance += (xs[index]! - xMean) * (ys[index]! - yMean)
    variance += (xs[index]! - xMean) ** 2
  }
  if (variance === 0) throw new Error('a line needs two distinct x values')
  const slope = covariance / variance
  return { slope, intercept: yMean - slope * xMean }
}

/** The trend of byte samples taken at `atMs` (any origin), over the span of the samples given. */
export function memoryTrend(samples: ReadonlyArray<{ atMs: number; bytes: number }>): MemoryTrend {
  const { slope, intercept } = fitLine(samples.map((sample) => sample.atMs), samples.map((sample) => sample.bytes))
  const firstMs = samples[0]!.atMs
  const lastMs = samples.at(-1)!.atMs
  const startBytes = intercept + slope * firstMs
  const endBytes = intercept + slope * lastMs
  return {
    sampleCount: samples.length,
    startBytes,
    endBytes,
    changePercent: ((endBytes - startBytes) / startBytes) * 100,
    mibPerHour: (slope * 3_600_000) / MiB,
  }
}

export function summarizeTrends(trends: readonly MemoryTrend[], changePercentMax = CHANGE_PERCENT_MAX): TrendSummary {
  let worstDaemon = 0
  trends.forEach((trend, index) => {
    if (Math.abs(trend.changePercent) > Math.abs(trends[worstDaemon]!.changePercent)) worstDaemon = index
  })
  const worstMibPerHour = trends.reduce((worst, trend) => (Math.abs(trend.mibPerHour) > Math.abs(worst) ? trend.mibPerHour : worst), 0)
  return {
    changePercentMedian: percentile(trends.map((trend) => trend.changePercent), 0.5)!,
    changePercentWorst: trends[worstDaemon]!.changePercent,
    worstDaemon,
    mibPerHourMedian: percentile(trends.map((trend) => trend.mibPerHour), 0.5)!,
    mibPerHourWorst: worstMibPerHour,
    flat: trends.every((trend) => Math.abs(trend.changePercent) <= changePercentMax),
  }
}

/** The value of a series in Prometheus text, e.g. `nodejs_heap_size_used_bytes` or `nodejs_gc_duration_seconds_count{kind="major"}`. */
export function prometheusValue(text: string, series: string): number | undefined {
  const match = new RegExp(`^${series.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} (\\S+)$`, 'm').exec(text)
  return match === null ? undefined : Number(match[1])
}

/**
 * Calls `body` every `intervalMs` from `startMs` until `endAtMs` (performance.now()) or
 * the signal; a tick that falls while the last call still runs is skipped, so the load
 * never bursts to catch up. Resolves with the count of ticks skipped.
 */
async function paced(intervalMs: number, startMs: number, endAtMs: number, signal: AbortSignal, body: (call: number) => Promise<void>): Promise<number> {
  let skipped = 0
  for (let tick = 0, call = 0; ; call++) {
    const dueMs = startMs + tick * intervalMs
    if (dueMs >= endAtMs || signal.aborted) return skipped
    if (dueMs > performance.now()) await sleep(dueMs - performance.now(), undefined, { signal }).catch(() => undefined)
    if (signal.aborted) return skipped
    await body(call)
    const nextTick = Math.max(tick + 1, Math.ceil((performance.now() - startMs) / intervalMs))
    skipped += nextTick - tick - 1
    tick = nextTick
  }
}

async function* oneFile(path: string, content: Uint8Array): AsyncGenerator<AddCandidate> {
  yield { kind: 'file', path, content: (async function* () { yield content })() }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** Per-daemon memory trends from the samples taken at or after `fromMs`, and the trends beyond ±CHANGE_PERCENT_MAX, a line each. */
export function soakMemory(samples: readonly SoakSample[], fromMs: number): SoakMemory & { failures: string[] } {
  const failures: string[] = []
  const windowSamples = samples.filter((sample) => sample.atMs >= fromMs)
  if (windowSamples.length === 0) throw new Error(`no sample at or after ${(fromMs / 60_000).toFixed(1)} min`)
  const trendOf = (index: number, metric: SampledSeries) => {
    const points = windowSamples.flatMap((sample) => {
      const bytes = sample.daemons[index]![metric]
      return bytes === undefined ? [] : [{ atMs: sample.atMs, bytes }]
    })
    if (points.length < SAMPLES_IN_WINDOW_MIN) throw new Error(`only ${points.length} ${metric} samples of daemon ${index} after the warm-up: too few for a trend (at least ${SAMPLES_IN_WINDOW_MIN}; run longer or sample more often)`)
    return memoryTrend(points)
  }
  const retainedHeapOf = (index: number): Array<{ atMs: number; bytes: number }> => {
    const points: Array<{ atMs: number; bytes: number }> = []
    for (let at = 1; at < samples.length; at++) {
      const [previous, current] = [samples[at - 1]!.daemons[index]!, samples[at]!.daemons[index]!]
      if (samples[at]!.atMs < fromMs || current.retained === undefined) continue
      if ((current.majorGcs ?? 0) > (previous.majorGcs ?? Infinity)) points.push({ atMs: samples[at]!.atMs, bytes: current.retained })
    }
    return points
  }
  const daemons = windowSamples[0]!.daemons.map((_, index): DaemonMemory => {
    const retained = retainedHeapOf(index)
    const heapUsed = trendOf(index, 'heap')
    if (retained.length < AFTER_MAJOR_GC_POINTS_MIN) failures.push(`daemon ${index}: ${retained.length} samples after a major GC, too few to judge its retained heap (at least ${AFTER_MAJOR_GC_POINTS_MIN}); heap used judged instead`)
    const heap = retained.length < AFTER_MAJOR_GC_POINTS_MIN ? heapUsed : memoryTrend(retained)
    const rssParts = { anonymous: trendOf(index, 'anonymous'), file: trendOf(index, 'file'), allocatorMainHeap: trendOf(index, 'allocatorMainHeap'), heapCommitted: trendOf(index, 'heapCommitted'), external: trendOf(index, 'external') }
    // Counters: what the window added (a daemon without the series, 0).
    const added = (series: SampledSeries) => (windowSamples.at(-1)!.daemons[index]![series] ?? 0) - (windowSamples[0]!.daemons[index]![series] ?? 0)
    return { index, rss: trendOf(index, 'rss'), heap, heapUsed, samplesAfterMajorGc: retained.length, rssParts, heapTrims: added('heapTrims'), heapTrimmedBytes: added('heapTrimmedBytes'), mallocTrimmedBytes: added('mallocTrimmedBytes') }
  })
  for (const daemon of daemons) {
    for (const [metric, trend] of [['RSS', daemon.rss], ['retained heap', daemon.heap]] as const) {
      if (Math.abs(trend.changePercent) > CHANGE_PERCENT_MAX) failures.push(`${metric} of daemon ${daemon.index} changed ${trend.changePercent.toFixed(1)}% after the warm-up (limit ±${CHANGE_PERCENT_MAX}%)`)
    }
  }
  return {
    windowMinutes: (windowSamples.at(-1)!.atMs - windowSamples[0]!.atMs) / 60_000,
    rss: summarizeTrends(daemons.map((daemon) => daemon.rss)),
    heap: summarizeTrends(daemons.map((daemon) => daemon.heap)),
    daemons,
    failures,
  }
}

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const load: SoakLoad = { ...DEFAULT_SOAK_LOAD, ...options.load }
  const warmupMinutes = options.warmupMinutes ?? warmupMinutesDefault(options.minutes)
  const seed = options.seed ?? '1'
  const daemonCount = options.daemons
  if (daemonCount < 2) throw new Error('a soak needs two daemons or more')
  if (!(warmupMinutes < options.minutes)) throw new Error('the warm-up must end before the run does')
  const progress = options.onProgress ?? (() => {})
  const prng = Prng.fromSeed(`soak/${seed}`)
  const stop = new AbortController()
  const onAbort = () => stop.abort()
  options.signal?.addEventListener('abort', onAbort)
  const failures: string[] = []
  const errors: string[] = []
  let errorCount = 0
  const recordError = (what: string, error: unknown) => {
    errorCount++
    if (errors.length < ERRORS_KEPT_MAX) errors.push(`${what}: ${messageOf(error)}`)
  }

  // A daemon that exited on its own has said why in `failures` (on Ctrl-C they get SIGINT too).
  const throwIfStopped = () => {
    if (!stop.signal.aborted) return
    throw new Error(options.signal?.aborted === true || failures.length === 0 ? 'soak aborted' : failures.join('; '))
  }
  let stopping = false

  const directory = await mkdtemp(join(options.directory ?? tmpdir(), 'shoal-soak-'))
  const scope = cleanupScope()
  // Registered first, so it runs last: after every daemon has exited.
  scope.after(() => rm(directory, { recursive: true, force: true }))
  try {
    const daemons: Daemon[] = []
    const stderrTails: string[] = []
    for (let index = 0; index < daemonCount; index++) {
      throwIfStopped()
      const bootstrap = index === 0 ? [] : [daemons[0]!.address]
      const daemon = await startDaemon(scope, join(directory, `daemon${index}`), { bootstrap, config: { 'dht.mode': 'server' } })
      daemons.push(daemon)
      // Read, or a daemon that writes to stderr would block on the full pipe.
      stderrTails[index] = ''
      daemon.process.stderr!.on('data', (chunk: Buffer) => { stderrTails[index] = (stderrTails[index] + chunk.toString('utf8')).slice(-STDERR_TAIL_CHARS) })
      daemon.process.once('exit', (code, signal) => {
        if (stopping) return
        failures.push(`daemon ${index} exited (${code ?? signal}); its stderr ends with: ${stderrTails[index]!.trim() || '(nothing)'}`)
        stop.abort()
      })
      progress(`daemon ${index} started: ${daemon.peerId}`)
    }
    const clients = daemons.map((daemon) => new HttpClient(daemon.apiUrl))
    const peerIds = daemons.map((daemon) => daemon.peerId)

    await Promise.all(clients.map((client, index) => eventually(`daemon ${index}'s routing table to hold every other daemon`, async () => {
      const table = await client.dhtTable()
      return table.size === daemonCount - 1 ? table : undefined
    }, SETTLE_MS_MAX)))
    throwIfStopped()
    progress('every routing table holds every other daemon')

    const received = daemons.map(() => new Set<number>())
    let delivered = 0
    let duplicateDeliveries = 0
    const subscriptions: PubSubSubscription[] = []
    const readers = clients.map(async (client, index) => {
      try {
        const subscription = await client.pubsubSubscribe(TOPIC, { signal: stop.signal })
        subscriptions[index] = subscription
        for await (const message of subscription) {
          // A daemon hands its own messages to its subscribers too.
          if (message.from === peerIds[index]) continue
          const messageIndex = new DataView(message.data.buffer, message.data.byteOffset, message.data.byteLength).getUint32(0)
          if (received[index]!.has(messageIndex)) duplicateDeliveries++
          else {
            received[index]!.add(messageIndex)
            delivered++
          }
        }
      } catch (error) {
        recordError(`subscription on daemon ${index}`, error)
      }
    })
    await Promise.all(clients.map((client, index) => eventually(`daemon ${index} to see every other daemon on the topic`, async () => {
      const peers = await client.pubsubPeers(TOPIC)
      return peers.length === daemonCount - 1 ? peers : undefined
    }, SETTLE_MS_MAX)))
    throwIfStopped()
    progress('every daemon sees every other on the gossip topic; load starts')

    const providedCids = await Promise.all(daemons.map((_, daemon) => Promise.all(Array.from({ length: PROVIDED_CIDS_PER_DAEMON }, async (_, index) =>
      CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode(`shoal-soak/${seed}/${daemon}/${index}`))).toString()))))
    const ipnsKeys = await Promise.all(daemons.map(() => generateKeyPair('Ed25519')))
    const ipnsNames = ipnsKeys.map((key) => `/ipns/${peerIdFromPrivateKey(key).toString()}`)

    const gossip = { published: 0, publishFailed: 0, publishedToNobody: 0 }
    const dht = { rounds: 0, provide: { ok: 0, failed: 0 }, findProviders: { ok: 0, failed: 0 }, put: { ok: 0, failed: 0 }, get: { ok: 0, failed: 0 } }
    const transfers = { ok: 0, failed: 0, bytesReceived: 0 }
    const fetchMs: number[] = []
    const samples: SoakSample[] = []

    const otherThan = (index: number, random: Prng) => (index + 1 + random.int(daemonCount - 1)) % daemonCount
    const dhtOperation = async <T>(count: OperationCount, what: string, call: () => Promise<T>, succeeded: (result: T) => string | undefined) => {
      try {
        const problem = succeeded(await withTimeout(call(), API_CALL_MS_MAX, what))
        if (problem === undefined) count.ok++
        else {
          count.failed++
          recordError(what, problem)
        }
      } catch (error) {
        count.failed++
        recordError(what, error)
      }
    }

    const publish = async (publisher: number, call: number) => {
      const data = new Uint8Array(load.gossipMessageBytes)
      new DataView(data.buffer).setUint32(0, call * daemonCount + publisher)
      try {
        const published = await withTimeout(clients[publisher]!.pubsubPublish(TOPIC, data), API_CALL_MS_MAX, 'publish')
        gossip.published++
        if (published.recipients === 0) gossip.publishedToNobody++
      } catch (error) {
        gossip.publishFailed++
        recordError(`publish on daemon ${publisher}`, error)
      }
    }

    const dhtRandom = prng.fork('dht')
    const dhtRound = async (call: number) => {
      dht.rounds++
      const provider = call % daemonCount
      const finder = otherThan(provider, dhtRandom)
      const cid = providedCids[provider]![Math.floor(call / daemonCount) % PROVIDED_CIDS_PER_DAEMON]!
      await dhtOperation(dht.provide, `provide on daemon ${provider}`, () => clients[provider]!.dhtProvide(cid), (result) =>
        (result.outcome === 'ok' && result.storedCount > 0 ? undefined : `outcome ${result.outcome}, stored on ${result.storedCount}`))
      await dhtOperation(dht.findProviders, `find-providers on daemon ${finder}`, () => clients[finder]!.dhtFindProviders(cid, { max: daemonCount }), (result) =>
        (result.providers.some((found) => found.peerId === peerIds[provider]) ? undefined : `outcome ${result.outcome}, daemon ${provider} not among ${result.providers.length} providers`))
      const record = marshalIPNSRecord(await createIPNSRecord(ipnsKeys[provider]!, `/ipfs/${cid}`, BigInt(call + 1), IPNS_LIFETIME_MS))
      await dhtOperation(dht.put, `put on daemon ${provider}`, () => clients[provider]!.dhtPut(ipnsNames[provider]!, record), (result) =>
        (result.outcome === 'ok' && result.storedCount > 0 ? undefined : `outcome ${result.outcome}, stored on ${result.storedCount}`))
      await dhtOperation(dht.get, `get on daemon ${finder}`, () => clients[finder]!.dhtGet(ipnsNames[provider]!), (result) =>
        (equals(result.value, record) ? undefined : `outcome ${result.outcome}, not the record just put`))
    }

    const transferRandom = prng.fork('transfers')
    const contentSeeds = Array.from({ length: load.transferContents }, () => transferRandom.nextUint32())
    const transfer = async (call: number) => {
      const adder = call % daemonCount
      const fetcher = otherThan(adder, transferRandom)
      const content = pseudoRandomBytes(load.transferBytes, contentSeeds[call % load.transferContents]!)
      const expectedDigest = createHash('sha256').update(content).digest('hex')
      const what = `transfer ${call} from daemon ${adder} to ${fetcher}`
      let cid: string | undefined
      let fetched = false
      try {
        const [root] = await withTimeout(clients[adder]!.add(oneFile(`soak-${call}.bin`, content)), API_CALL_MS_MAX, 'add')
        cid = root!.cid
        const signal = AbortSignal.timeout(TRANSFER_MS_MAX)
        const result = await clients[fetcher]!.fetch(cid, { signal })
        fetched = true
        const digest = createHash('sha256')
        let byteCount = 0
        for await (const chunk of clients[fetcher]!.cat(cid, { signal })) {
          digest.update(chunk)
          byteCount += chunk.byteLength
        }
        if (byteCount !== content.byteLength || digest.digest('hex') !== expectedDigest) throw new Error(`read back ${byteCount} bytes that differ from the ${content.byteLength} added`)
        transfers.ok++
        transfers.bytesReceived += result.bytesReceived
        fetchMs.push(result.durationMs)
      } catch (error) {
        transfers.failed++
        recordError(what, error)
      }
      // Both let go of the content: the disk stays bounded however long the soak runs.
      const holders = fetched ? [adder, fetcher] : [adder]
      for (const holder of cid === undefined ? [] : holders) {
        try {
          await withTimeout(clients[holder]!.pinRm(cid!), API_CALL_MS_MAX, 'pin rm')
        } catch (error) {
          recordError(`pin rm after ${what} on daemon ${holder}`, error)
        }
      }
      for (const holder of [adder, fetcher]) {
        try {
          await withTimeout(clients[holder]!.gc(), API_CALL_MS_MAX, 'repo gc')
        } catch (error) {
          recordError(`repo gc after ${what} on daemon ${holder}`, error)
        }
      }
    }

    const loadStartMs = performance.now()
    const endAtMs = loadStartMs + options.minutes * 60_000
    const sample = async () => {
      const atMs = performance.now() - loadStartMs
      const values = daemons.map(() => ({} as Partial<Record<SampledSeries, number>>))
      for (const [index, daemon] of daemons.entries()) {
        const daemonValues = values[index]!
        try {
          const resident = residentMemory(daemon.process.pid!)
          daemonValues.rss = resident.totalBytes
          daemonValues.anonymous = resident.anonymousBytes
          daemonValues.file = resident.fileBytes
          daemonValues.allocatorMainHeap = mainHeapResidentBytes(daemon.process.pid!)
        } catch (error) {
          recordError(`RSS of daemon ${index}`, error)
        }
        try {
          const response = await fetch(`${daemon.apiUrl}/metrics`, { signal: AbortSignal.timeout(API_CALL_MS_MAX) })
          const text = await response.text()
          const heap = prometheusValue(text, 'nodejs_heap_size_used_bytes')
          const retained = prometheusValue(text, 'shoal_heap_retained_bytes')
          if (heap === undefined || retained === undefined) throw new Error('no nodejs_heap_size_used_bytes or shoal_heap_retained_bytes in /metrics')
          Object.assign(daemonValues, {
            heap,
            retained,
            majorGcs: prometheusValue(text, 'nodejs_gc_duration_seconds_count{kind="major"}') ?? 0,
            heapCommitted: prometheusValue(text, 'nodejs_heap_size_total_bytes'),
            external: prometheusValue(text, 'nodejs_external_memory_bytes'),
            heapTrims: prometheusValue(text, 'shoal_heap_trims_total{heap="v8"}'),
            heapTrimmedBytes: prometheusValue(text, 'shoal_heap_trimmed_bytes_total{heap="v8"}'),
            mallocTrimmedBytes: prometheusValue(text, 'shoal_heap_trimmed_bytes_total{heap="malloc"}'),
          })
        } catch (error) {
          recordError(`heap of daemon ${index}`, error)
        }
      }
      samples.push({ atMs, daemons: values })
      options.onSample?.({ atMs, daemons: values })
      if (samples.length % Math.max(1, Math.round(60 / options.sampleSeconds)) === 0) {
        const mib = (series: SampledSeries) => ((percentile(values.flatMap((daemon) => daemon[series] ?? []), 0.5) ?? NaN) / MiB).toFixed(1)
        progress(`${(atMs / 60_000).toFixed(1)} min: gossip ${delivered}/${gossip.published * (daemonCount - 1)} delivered; DHT rounds ${dht.rounds}; transfers ${transfers.ok} ok, ${transfers.failed} failed; errors ${errorCount}; median RSS ${mib('rss')} MiB, heap ${mib('heap')} MiB`)
      }
    }

    const cpuStart = daemons.map((daemon) => cpuSeconds(daemon.process.pid!))
    const harnessCpuStart = process.cpuUsage()
    const loadAverageStart = loadavg()
    // Each daemon publishes on a schedule of its own, interleaved with the others': one slow
    // publish then delays no other daemon's.
    const publishIntervalMs = (1000 * daemonCount) / load.gossipMessagesPerSecond
    const [dhtSkipped, transferSkipped, , ...gossipSkipped] = await Promise.all([
      paced(load.dhtRoundSeconds * 1000, loadStartMs, endAtMs, stop.signal, dhtRound),
      paced(load.transferSeconds * 1000, loadStartMs, endAtMs, stop.signal, transfer),
      // A last sample at the end of the run: the window ends with the load.
      paced(options.sampleSeconds * 1000, loadStartMs, endAtMs + 1, stop.signal, sample),
      ...clients.map((_, publisher) =>
        paced(publishIntervalMs, loadStartMs + (publisher * publishIntervalMs) / daemonCount, endAtMs, stop.signal, (call) => publish(publisher, call))),
    ])
    throwIfStopped()
    const loadEndMs = performance.now()
    const daemonsCpu = daemons.map((daemon, index) => cpuSeconds(daemon.process.pid!) - cpuStart[index]!)
    const harnessCpu = process.cpuUsage(harnessCpuStart)
    const loadAverageEnd = loadavg()
    const expectedDeliveries = () => gossip.published * (daemonCount - 1)
    const drainEndMs = performance.now() + DRAIN_MS_MAX
    while (delivered < expectedDeliveries() && performance.now() < drainEndMs && !stop.signal.aborted) await sleep(100)
    throwIfStopped()
    const droppedForSlowReader = subscriptions.reduce((sum, subscription) => sum + (subscription?.droppedCount ?? 0), 0)
    stopping = true
    stop.abort()
    await Promise.all(readers)

    const memory = soakMemory(samples, warmupMinutes * 60_000)
    failures.push(...memory.failures)
    const flat = memory.rss.flat && memory.heap.flat

    const deliveryRatio = expectedDeliveries() === 0 ? 0 : delivered / expectedDeliveries()
    const loadFailures: string[] = []
    if (gossip.published === 0) loadFailures.push('no gossip message was published')
    if (deliveryRatio < GOSSIP_DELIVERY_RATIO_MIN) loadFailures.push(`gossip delivered ${delivered} of ${expectedDeliveries()} (${(deliveryRatio * 100).toFixed(2)}%, minimum ${GOSSIP_DELIVERY_RATIO_MIN * 100}%)`)
    for (const [name, count] of Object.entries({ provide: dht.provide, 'find-providers': dht.findProviders, put: dht.put, get: dht.get, transfers })) {
      if (count.ok === 0) loadFailures.push(`no ${name} succeeded`)
      if (count.failed > 0) loadFailures.push(`${count.failed} ${name} failed`)
    }
    if (errorCount > 0) loadFailures.push(`${errorCount} errors, the first: ${errors[0]}`)
    failures.push(...loadFailures)
    const loadOk = loadFailures.length === 0

    const loadSeconds = (loadEndMs - loadStartMs) / 1000
    return {
      passed: flat && loadOk,
      flat,
      loadOk,
      failures,
      settings: { daemons: daemonCount, minutes: options.minutes, warmupMinutes, sampleSeconds: options.sampleSeconds, seed, load, changePercentMax: CHANGE_PERCENT_MAX, gossipDeliveryRatioMin: GOSSIP_DELIVERY_RATIO_MIN },
      loadMs: performance.now() - loadStartMs,
      memory: { windowMinutes: memory.windowMinutes, rss: memory.rss, heap: memory.heap, daemons: memory.daemons.map((daemon) => ({ ...daemon, peerId: peerIds[daemon.index]! })) },
      load: {
        gossip: { ...gossip, expectedDeliveries: expectedDeliveries(), delivered, deliveryRatio, duplicateDeliveries, droppedForSlowReader, ticksSkipped: gossipSkipped.reduce((sum, skipped) => sum + skipped, 0) },
        dht: { ...dht, ticksSkipped: dhtSkipped },
        transfers: { ...transfers, fetchMsMedian: percentile(fetchMs, 0.5), ticksSkipped: transferSkipped },
        errorCount,
        errors,
      },
      cpu: {
        daemonsCores: daemonsCpu.reduce((sum, seconds) => sum + seconds, 0) / loadSeconds,
        daemonPercentMax: Math.max(...daemonsCpu) / loadSeconds * 100,
        harnessCores: (harnessCpu.user + harnessCpu.system) / 1e6 / loadSeconds,
        loadAverageStart,
        loadAverageEnd,
      },
    }
  } finally {
    stopping = true
    stop.abort()
    options.signal?.removeEventListener('abort', onAbort)
    await scope.close()
  }
}
