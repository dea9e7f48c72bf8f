/**
 * The network model: what a link costs (latency, loss, bandwidth) and who can reach whom
 * (NAT classes). Owns per-peer capacities and the flows in progress; the Simulator asks it
 * how long a message or a dial takes and tells it when flows start and end.
 *
 * Bandwidth approximation: each message is one flow of (encoded size + frame overhead)
 * bytes. A flow's rate is min(sender upload / sender's concurrent uploads, receiver
 * download / receiver's concurrent downloads), recomputed for every flow at the sender's
 * uplink and the receiver's downlink whenever a flow starts or ends there. This is a
 * per-endpoint fair share, not max-min fairness: share left unused by a flow that is
 * bottlenecked elsewhere is not handed to the others, and the core of the Internet is
 * assumed never to be the bottleneck. It is exact for one bottleneck per flow, cheap
 * (a change touches only flows at two peers), and errs towards slower transfers.
 *
 * With streamsSerialized, a flow is a connection's direction rather than a message: the
 * message at the head of the stream is the flow, and when it finishes the next one takes
 * its place at the same rate (handOver), so a busy stream costs one event per message and
 * its endpoints are rebalanced only when it falls idle or wakes up.
 */
import { durationAt, mix3, type DurationDistribution } from './distributions.ts'

export type NatClass = 'public' | 'nat' | 'unreachable'
export const NAT_CLASSES: readonly NatClass[] = ['public', 'nat', 'unreachable']

export interface NetworkConfig {
  /** One-way latency of a pair of peers; a deterministic, symmetric function of (seed, pair). */
  latency: DurationDistribution
  uploadBytesPerSecond: number
  downloadBytesPerSecond: number
  /**
   * Bytes added to every message: length prefix, yamux header and Noise tag (about 2 + 12
   * + 16), and TCP/IP headers amortised. Small control messages are dominated by it.
   */
  frameOverheadBytes: number
  /**
   * Probability that a message's packets need a retransmission. Our protocols run over
   * reliable streams, so loss never drops a message: it delays it (and everything behind
   * it on the stream) by one retransmission timeout per loss, doubling each time.
   */
  lossProbability: number
  retransmitTimeoutMsMin: number
  /** A dial takes this many round trips (TCP, Noise, multistream) before both ends see the connection. */
  handshakeRoundTripCount: number
  /** A dial to a silent address (offline, unreachable, partitioned) fails after this long. */
  dialTimeoutMs: number
  /** Chance that a dial to a peer behind NAT succeeds by hole punching (DCUtR); 0 until relays exist. */
  holePunchProbability: number
  /**
   * Round trips spent opening a request's stream before the request goes out: 0 with
   * libp2p's optimistic protocol select (the protocol proposal travels with the request),
   * 1 with full multistream negotiation.
   */
  streamOpenRoundTripCount: number
  /**
   * Connections a peer keeps, as libp2p's connection manager bounds them: a new connection
   * beyond it makes the peer close its least recently used one. Infinity: no bound.
   */
  connectionsPerPeerMax: number
  /**
   * Each connection carries one message at a time in each direction, as one TCP stream
   * does: a message waits for those sent before it, and the connection, not each message,
   * takes a share of its endpoints' capacities. Off: every message is a flow of its own,
   * so a connection with ten messages queued gets ten shares.
   */
  streamsSerialized: boolean
  /**
   * With streamsSerialized: a message of at most this many bytes (frame overhead
   * included) that finds its direction of the connection idle, or that reaches the head
   * of its queue, takes no share of capacity and leaves at once (it arrives one latency
   * later). Control messages beside bulk transfers cost microseconds of a link; this
   * spares rebalancing every flow at both ends for each of them. 0: none.
   */
  expressBytesMax: number
}

export const DEFAULT_NETWORK_CONFIG: NetworkConfig = {
  latency: { kind: 'lognormal', medianMs: 40, sigma: 0.5, maxMs: 400 },
  uploadBytesPerSecond: 2_500_000,
  downloadBytesPerSecond: 12_500_000,
  frameOverheadBytes: 32,
  lossProbability: 0,
  retransmitTimeoutMsMin: 200,
  handshakeRoundTripCount: 1,
  dialTimeoutMs: 10_000,
  holePunchProbability: 0,
  streamOpenRoundTripCount: 0,
  connectionsPerPeerMax: Infinity,
  streamsSerialized: false,
  expressBytesMax: 0,
}

/**
 * One-way latency of the pair {a, b} in ms: a hash of (latencyKey, min, max) picks the
 * quantile, so it needs no O(N²) table and is the same in both directions.
 */
export function pairLatencyMs(distribution: DurationDistribution, latencyKey: number, a: number, b: number): number {
  const low = a < b ? a : b
  const high = a < b ? b : a
  const first = mix3(latencyKey, low, high)
  const second = mix3(first ^ 0x5bd1e995, high, low)
  return durationAt(distribution, first / 4294967296, second / 4294967296)
}

/** A message on its way through the sender's uplink and the receiver's downlink. */
export interface Flow {
  from: number
  to: number
  bytesRemaining: number
  /** Current rate; Infinity when both ends have unlimited capacity. */
  bytesPerMs: number
  updatedAt: number
  /** Bumped at each reschedule, so a superseded completion event is recognised and skipped. */
  version: number
  payload: unknown
}

/** Fair sharing of each peer's uplink and downlink among its concurrent flows (see the module comment). */
export class Bandwidth {
  readonly #uploadBytesPerMs: Float64Array
  readonly #downloadBytesPerMs: Float64Array
  readonly #uploads: (Flow[] | undefined)[]
  readonly #downloads: (Flow[] | undefined)[]
  readonly #schedule: (flow: Flow, doneAt: number) => void
  #activeCount = 0

  /** `schedule` must arrange for finish(flow) at doneAt unless flow.version changes first. */
  constructor(peerCount: number, schedule: (flow: Flow, doneAt: number) => void) {
    this.#uploadBytesPerMs = new Float64Array(peerCount)
    this.#downloadBytesPerMs = new Float64Array(peerCount)
    this.#uploads = new Array(peerCount).fill(undefined)
    this.#downloads = new Array(peerCount).fill(undefined)
    this.#schedule = schedule
  }

  get activeCount(): number {
    return this.#activeCount
  }

  setCapacity(peer: number, uploadBytesPerSecond: number, downloadBytesPerSecond: number): void {
    if (!(uploadBytesPerSecond > 0 && downloadBytesPerSecond > 0)) throw new Error('capacities must be > 0 (Infinity for unlimited)')
    this.#uploadBytesPerMs[peer] = uploadBytesPerSecond / 1000
    this.#downloadBytesPerMs[peer] = downloadBytesPerSecond / 1000
  }

  start(now: number, flow: Flow): void {
    const uploads = (this.#uploads[flow.from] ??= [])
    const downloads = (this.#downloads[flow.to] ??= [])
    uploads.push(flow)
    downloads.push(flow)
    this.#activeCount++
    flow.updatedAt = now
    flow.bytesPerMs = 0
    this.#rebalance(now, uploads, downloads)
  }

  /** Called when a flow's completion event fires with its current version. */
  finish(now: number, flow: Flow): void {
    const uploads = this.#uploads[flow.from]!
    const downloads = this.#downloads[flow.to]!
    removeItem(uploads, flow)
    removeItem(downloads, flow)
    this.#activeCount--
    flow.bytesRemaining = 0
    this.#rebalance(now, uploads, downloads)
  }

  /**
   * `next` takes over the place of `done`, a flow between the same two peers that has just
   * finished (the next message on a serialized stream): the counts at both ends stay the
   * same, so every rate does, and nothing else is rescheduled.
   */
  handOver(now: number, done: Flow, next: Flow): void {
    replaceItem(this.#uploads[done.from]!, done, next)
    replaceItem(this.#downloads[done.to]!, done, next)
    done.bytesRemaining = 0
    next.updatedAt = now
    next.bytesPerMs = done.bytesPerMs
    next.version++
    this.#schedule(next, now + next.bytesRemaining / next.bytesPerMs)
  }

  #rateOf(flow: Flow): number {
    const uploadShare = this.#uploadBytesPerMs[flow.from]! / this.#uploads[flow.from]!.length
    const downloadShare = this.#downloadBytesPerMs[flow.to]! / this.#downloads[flow.to]!.length
    return uploadShare < downloadShare ? uploadShare : downloadShare
  }

  /**
   * Only the counts at the two touched peers changed, so only flows there can change
   * rate. #update is idempotent, so a flow in both lists is harmless.
   */
  #rebalance(now: number, uploads: Flow[], downloads: Flow[]): void {
    for (let index = 0; index < uploads.length; index++) this.#update(now, uploads[index]!)
    for (let index = 0; index < downloads.length; index++) this.#update(now, downloads[index]!)
  }

  #update(now: number, flow: Flow): void {
    const rate = this.#rateOf(flow)
    // Progress is linear at a constant rate, so an unchanged rate keeps its completion event.
    if (rate === flow.bytesPerMs) return
    if (flow.bytesPerMs !== Infinity) flow.bytesRemaining = Math.max(0, flow.bytesRemaining - flow.bytesPerMs * (now - flow.updatedAt))
    flow.updatedAt = now
    flow.bytesPerMs = rate
    flow.version++
    this.#schedule(flow, rate === Infinity ? now : now + flow.bytesRemaining / rate)
  }
}

function replaceItem<T>(items: T[], item: T, replacement: T): void {
  const index = items.indexOf(item)
  if (index < 0) throw new Error('flow not found: bandwidth bookkeeping is broken')
  items[index] = replacement
}

function removeItem<T>(items: T[], item: T): void {
  const index = items.indexOf(item)
  if (index < 0) throw new Error('flow not found: bandwidth bookkeeping is broken')
  items[index] = items[items.length - 1]!
  items.pop()
}
