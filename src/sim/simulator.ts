/**
 * Simulator: the deterministic discrete-event engine. Owns the virtual clock, the agenda,
 * the peers (online state, NAT class, partition group, pending tick, core) and the
 * connections between them, and drives each peer's core exactly as net/ does:
 *
 *   core.handle(now, input); drain poll(); schedule one tick at nextDeadline()
 *
 * Generic over any core that takes NetworkInput<M> and RequestInput<M> and emits
 * NetworkAction<M> and RequestAction<M>; other actions (a core's `emit`) go to the
 * `onAction` hook. Driven by Scenario (or a test) through join/leave/partition/heal and
 * run(). Per-peer state lives in typed arrays so that an idle peer costs little beyond its
 * core.
 *
 * Requests (the request/response form of sans-io.ts) ride the connections as messages do.
 * One object, a RequestTransfer, carries a request there and its response back, and sits
 * on its connection's list of open requests meanwhile, so that a respond finds it and a
 * close fails it in O(requests open on that connection); a request waiting for a dial
 * queues on the dial. Nothing is allocated per request beyond that object, its events
 * and the inputs handed to the cores.
 */
import { Prng } from '../core/prng.ts'
import type { Core, NetworkAction, NetworkInput, PeerId, RequestAction, RequestId, RequestInput, WireCodec } from '../core/sans-io.ts'
import { EventQueue, type SimEvent } from './event-queue.ts'
import { Bandwidth, DEFAULT_NETWORK_CONFIG, NAT_CLASSES, pairLatencyMs, type Flow, type NatClass, type NetworkConfig } from './network-model.ts'
import { TraceHash } from './trace-hash.ts'

export type Seed = bigint | number | string

/** What a core factory learns about the peer it builds a core for. */
export interface PeerContext {
  index: number
  id: PeerId
  /** Forked from the run's seed per peer and incarnation: `peer:<index>:<incarnation>`. */
  prng: Prng
  /** How many times this peer has left before (0 for its first session). */
  incarnation: number
  natClass: NatClass
}

/** Any input the simulator gives a core. */
export type SimInput<M> = NetworkInput<M> | RequestInput<M>

/** Any action a core may emit: the network ones the simulator carries out, and its own. */
export type AnyAction<M> = NetworkAction<M> | RequestAction<M> | { type: string }

export type SimCore<M> = Core<SimInput<M>, AnyAction<M>>

/** Why the simulator failed a request (the `reason` of `request-failed`). */
export type RequestFailureReason = 'dial-failed' | 'unknown-peer' | 'protocol-unsupported' | 'connection-closed'

export interface SimulatorOptions<M> {
  peerCount: number
  seed: Seed
  /** Sizes every message (encode(message).byteLength) for bandwidth and byte counts, unless sizeOf is given. */
  codec?: WireCodec<M>
  /**
   * A message's encoded size in bytes, used instead of the codec: for messages no codec
   * can encode (the DHT's, with synthetic peer ids). Must be a pure function of the message.
   */
  sizeOf?(message: M): number
  /**
   * Whether a peer serves the request protocol (default: every peer). Asked once per peer
   * at construction. As libp2p's topology does, a core hears `peer-connected` and
   * `peer-disconnected` only of peers that serve; a request to one that does not fails
   * with 'protocol-unsupported'; a request's `remoteIsServer` says whether its sender serves.
   */
  servesProtocol?(index: number): boolean
  network?: Partial<NetworkConfig>
  createCore(context: PeerContext): SimCore<M>
  /** NAT class of each peer (default: all public). Asked once per peer at construction. */
  natClassOf?(index: number): NatClass
  /** Actions that are not send/dial/disconnect/request/respond, e.g. `{ type: 'emit' }`. */
  onAction?(peer: number, action: { type: string }, now: number): void
  /** Called when a peer comes online, after its core exists: give it bootstrap peers here. */
  onJoin?(peer: number, now: number): void
  onLeave?(peer: number, crashed: boolean, now: number): void
}

/** What happened to messages and dials so far. */
export interface SimCounters {
  messagesSent: number
  messagesDelivered: number
  /** Sent with no open connection to the receiver (the core's view was stale). */
  messagesDroppedNoConnection: number
  /** The connection was closed while the message was in flight. */
  messagesDroppedClosed: number
  /** The receiver crashed or left while the message was in flight. */
  messagesDroppedOffline: number
  messagesDroppedPartition: number
  bytesSent: number
  retransmissions: number
  dials: number
  dialsSucceeded: number
  dialsFailed: number
  /** Dials to an id no simulated peer has (e.g. one a Sybil made up). */
  dialsToUnknownPeer: number
  /** A dial that completed while a connection to the same peer was already open. */
  dialsToConnectedPeer: number
  disconnects: number
  /** Connections a peer closed to stay within connectionsPerPeerMax. */
  connectionsEvicted: number
  /** `request` actions, whatever became of them. */
  requestsSent: number
  /** Requests handed to the target's core. */
  requestsDelivered: number
  /** `response` inputs: replies, and one-way requests reported written. */
  responsesDelivered: number
  requestsFailedDial: number
  requestsFailedUnknownPeer: number
  requestsFailedProtocolUnsupported: number
  requestsFailedConnectionClosed: number
  /**
   * Requests or responses dropped in transit (closed connection, offline peer, partition).
   * Only a closed connection is reported ('connection-closed'); otherwise the requester's
   * core has to time out, as it would on a real network.
   */
  requestsLost: number
  /** Responds that matched no open request (wrong id or peer, answered twice, connection gone). */
  respondsDropped: number
  /** Ticks whose core still had a deadline at or before now afterwards (pushed 1 ms on). */
  stuckDeadlines: number
  otherActions: number
}

const enum Kind {
  Tick = 1,
  FlowDone = 2,
  Deliver = 3,
  DialDone = 4,
  DialFailed = 5,
  RemoteClosed = 6,
  Join = 7,
  Leave = 8,
  Callback = 9,
  RequestDialDone = 10,
  RequestDialFailed = 11,
  /** A request's end that is reported on its own: a one-way completion, an unknown peer. */
  RequestSettle = 12,
  /** The closer's own requests on a connection it closed fail. */
  LocalClosed = 13,
  /** As LocalClosed, and the closer's core hears of the close: it did not ask for it. */
  Evicted = 14,
}

const enum CloseCause {
  /** The core's `disconnect`. */
  Disconnect = 1,
  /** A graceful leave: the closer is going offline. */
  Leave = 2,
  /** connectionsPerPeerMax. */
  Evict = 3,
}

/** What a Transfer carries. */
const enum Carries {
  Message = 0,
  Request = 1,
  Response = 2,
  /** multistream-select's "na": the target does not serve the protocol. */
  Refusal = 3,
}

const enum RequestState {
  /** Queued on a dial. */
  Waiting = 1,
  /** On its way to the target (a one-way request: not yet reported written). */
  Outbound = 2,
  /** A one-way request reported written, still on its way; no longer on the connection's list. */
  OneWaySent = 3,
  /** Handed to the target's core, awaiting its respond. */
  AtTarget = 4,
  /** Its response (or refusal) is on its way back. */
  Returning = 5,
  /** Reported to the requester, or lost. */
  Done = 6,
}

const enum Failure {
  None = 0,
  DialFailed = 1,
  UnknownPeer = 2,
  ProtocolUnsupported = 3,
  ConnectionClosed = 4,
}

const FAILURE_REASONS: readonly RequestFailureReason[] = ['dial-failed', 'dial-failed', 'unknown-peer', 'protocol-unsupported', 'connection-closed']

const enum Outcome {
  Delivered = 1,
  DroppedClosed = 2,
  DroppedOffline = 3,
  DroppedPartition = 4,
}

/** Bounds a core's output per handle(): more is a runaway core, a bug worth stopping for. */
const ACTIONS_PER_HANDLE_MAX = 100_000
/** Bounds retransmissions of one message (each doubles the timeout). */
const RETRANSMISSIONS_MAX = 12
const NO_ADDRESSES: readonly string[] = Object.freeze([])
const NO_TIME = -1

/** An open connection between peers a and b (a < b), as the simulator sees it. */
export class Connection {
  readonly a: number
  readonly b: number
  readonly incarnationA: number
  readonly incarnationB: number
  readonly latencyMs: number
  open = true
  /** When the last message in each direction arrives: a stream delivers in order. */
  tailAtToB = 0
  tailAtToA = 0
  /** When one end crashed (NO_TIME if none): the other end has to notice by itself. */
  crashedAt = NO_TIME
  /** Its index in each end's connection list (-1 once out of it), for O(1) removal and use marks. */
  slotAtA = -1
  slotAtB = -1
  /** Head of its open requests, both directions (linked through RequestTransfer.next). */
  requests: RequestTransfer | undefined = undefined
  /** With streamsSerialized: the message on the wire in each direction, and those queued behind it. */
  sendingToB: Transfer | undefined = undefined
  sendingToA: Transfer | undefined = undefined
  queuedToB: Transfer[] | undefined = undefined
  queuedToA: Transfer[] | undefined = undefined

  constructor(a: number, b: number, incarnationA: number, incarnationB: number, latencyMs: number) {
    this.a = a
    this.b = b
    this.incarnationA = incarnationA
    this.incarnationB = incarnationB
    this.latencyMs = latencyMs
  }
}

/** Where a request waiting for its dial is: on no connection yet. */
const NO_CONNECTION = new Connection(-1, -1, 0, 0, 0)
NO_CONNECTION.open = false

/** Something in transit on a connection: its flow through the links, then its delivery. */
class Transfer implements Flow {
  from: number
  to: number
  bytesRemaining: number
  bytesPerMs = 0
  updatedAt = 0
  version = 0
  payload: unknown
  connection: Connection
  bytes: number
  carries: Carries

  constructor(from: number, to: number, bytes: number, payload: unknown, connection: Connection, carries: Carries) {
    this.from = from
    this.to = to
    this.bytes = bytes
    this.bytesRemaining = bytes
    this.payload = payload
    this.connection = connection
    this.carries = carries
  }
}

/** One request from dial to report: it travels as the request, then as its response or refusal. */
class RequestTransfer extends Transfer {
  readonly requester: number
  /** -1 for an id no simulated peer has. */
  readonly target: number
  readonly targetId: PeerId
  readonly requesterIncarnation: number
  /** The requester's id for it. */
  readonly id: RequestId
  /** The id the target's core knows it by (0 until delivered). */
  inboundId = 0
  readonly oneWay: boolean
  state: RequestState = RequestState.Waiting
  failure: Failure = Failure.None
  /** Neighbours on the connection's list of open requests (next only, while queued on a dial). */
  previous: RequestTransfer | undefined = undefined
  next: RequestTransfer | undefined = undefined

  constructor(requester: number, target: number, targetId: PeerId, requesterIncarnation: number, id: RequestId, message: unknown, oneWay: boolean) {
    super(requester, target, 0, message, NO_CONNECTION, Carries.Request)
    this.requester = requester
    this.target = target
    this.targetId = targetId
    this.requesterIncarnation = requesterIncarnation
    this.id = id
    this.oneWay = oneWay
  }
}

export class Simulator<M> {
  readonly peerCount: number
  readonly seed: Seed
  readonly network: NetworkConfig
  readonly counters: SimCounters = {
    messagesSent: 0, messagesDelivered: 0, messagesDroppedNoConnection: 0, messagesDroppedClosed: 0,
    messagesDroppedOffline: 0, messagesDroppedPartition: 0, bytesSent: 0, retransmissions: 0,
    dials: 0, dialsSucceeded: 0, dialsFailed: 0, dialsToUnknownPeer: 0, dialsToConnectedPeer: 0, disconnects: 0,
    connectionsEvicted: 0, requestsSent: 0, requestsDelivered: 0, responsesDelivered: 0, requestsFailedDial: 0,
    requestsFailedUnknownPeer: 0, requestsFailedProtocolUnsupported: 0, requestsFailedConnectionClosed: 0,
    requestsLost: 0, respondsDropped: 0, stuckDeadlines: 0, otherActions: 0,
  }
  /** Time from a crash until each former neighbour closed its connection, in ms. */
  readonly deadPeerDetectionDelaysMs: number[] = []

  readonly #options: SimulatorOptions<M>
  readonly #queue = new EventQueue()
  readonly #trace = new TraceHash()
  readonly #rootPrng: Prng
  readonly #networkPrng: Prng
  readonly #latencyKey: number
  readonly #bandwidth: Bandwidth
  readonly #unlimitedBandwidth: boolean
  readonly #sizeOf: (message: M) => number
  readonly #connectionsPerPeerMax: number
  readonly #streamsSerialized: boolean
  readonly #expressBytesMax: number
  #now = 0
  #eventCount = 0
  #onlineCount = 0
  #onlinePeerMs = 0

  readonly #ids: PeerId[]
  readonly #indexById = new Map<string, number>()
  readonly #online: Uint8Array
  readonly #natClass: Uint8Array
  /** 1 where the peer serves the request protocol. */
  readonly #serves: Uint8Array
  readonly #group: Uint16Array
  readonly #incarnation: Uint32Array
  readonly #tickAt: Float64Array
  readonly #tickVersion: Uint32Array
  readonly #joinedAt: Float64Array
  readonly #cores: (SimCore<M> | undefined)[]
  readonly #connectionsOf: (Connection[] | undefined)[]
  /**
   * When each connection in #connectionsOf was last used, slot for slot: a contiguous
   * array, so finding the least recently used is a scan of one small typed array. Only
   * kept when connectionsPerPeerMax is finite.
   */
  readonly #usedAtOf: (Float64Array | undefined)[] | undefined
  readonly #connectionByPair = new Map<number, Connection>()
  readonly #messageTypeCodes = new Map<unknown, number>()
  /** Requests queued on a dial made for them, by requester * peerCount + target: the first of a list. */
  readonly #requestDials = new Map<number, RequestTransfer>()
  #inboundRequestIdNext = 1

  constructor(options: SimulatorOptions<M>) {
    const peerCount = options.peerCount
    if (!Number.isSafeInteger(peerCount) || peerCount < 1 || peerCount > 65_535 * 64) throw new RangeError(`peerCount out of range: ${peerCount}`)
    this.peerCount = peerCount
    this.seed = options.seed
    this.#options = options
    this.network = { ...DEFAULT_NETWORK_CONFIG, ...options.network }
    if (!(this.network.connectionsPerPeerMax >= 1)) throw new RangeError(`connectionsPerPeerMax must be >= 1, got ${this.network.connectionsPerPeerMax}`)
    if (!(Number.isInteger(this.network.streamOpenRoundTripCount) && this.network.streamOpenRoundTripCount >= 0)) throw new RangeError('streamOpenRoundTripCount must be an integer >= 0')
    this.#connectionsPerPeerMax = this.network.connectionsPerPeerMax
    const { codec, sizeOf } = options
    if (sizeOf !== undefined) this.#sizeOf = sizeOf.bind(options)
    else if (codec !== undefined) this.#sizeOf = (message) => codec.encode(message).byteLength
    else throw new Error('a codec or sizeOf is needed to size messages')
    this.#rootPrng = Prng.fromSeed(options.seed)
    this.#networkPrng = this.#rootPrng.fork('network')
    this.#latencyKey = this.#rootPrng.fork('latency').nextUint32()
    this.#ids = new Array<PeerId>(peerCount)
    this.#online = new Uint8Array(peerCount)
    this.#natClass = new Uint8Array(peerCount)
    this.#serves = new Uint8Array(peerCount)
    this.#group = new Uint16Array(peerCount)
    this.#incarnation = new Uint32Array(peerCount)
    this.#tickAt = new Float64Array(peerCount).fill(NO_TIME)
    this.#tickVersion = new Uint32Array(peerCount)
    this.#joinedAt = new Float64Array(peerCount)
    this.#cores = new Array(peerCount).fill(undefined)
    this.#connectionsOf = new Array(peerCount).fill(undefined)
    this.#usedAtOf = this.#connectionsPerPeerMax === Infinity ? undefined : new Array(peerCount).fill(undefined)
    this.#bandwidth = new Bandwidth(peerCount, (flow, doneAt) => {
      this.#queue.push(doneAt, Kind.FlowDone, flow.from, flow.to, flow.version, flow)
    })
    this.#unlimitedBandwidth = this.network.uploadBytesPerSecond === Infinity && this.network.downloadBytesPerSecond === Infinity
    this.#streamsSerialized = this.network.streamsSerialized
    this.#expressBytesMax = this.network.streamsSerialized ? this.network.expressBytesMax : 0
    for (let index = 0; index < peerCount; index++) {
      const id = `p${index}` as PeerId
      this.#ids[index] = id
      this.#indexById.set(id, index)
      this.#natClass[index] = NAT_CLASSES.indexOf(options.natClassOf?.(index) ?? 'public')
      this.#serves[index] = (options.servesProtocol?.(index) ?? true) ? 1 : 0
      this.#bandwidth.setCapacity(index, this.network.uploadBytesPerSecond, this.network.downloadBytesPerSecond)
    }
  }

  // ---- observation ------------------------------------------------------------------

  get now(): number {
    return this.#now
  }

  /** Events processed (superseded ticks and flow reschedules are not counted). */
  get eventCount(): number {
    return this.#eventCount
  }

  get pendingEventCount(): number {
    return this.#queue.size
  }

  /** 16 hex digits over every processed event: equal hashes mean equal runs. */
  get traceHash(): string {
    return this.#trace.hex()
  }

  get onlineCount(): number {
    return this.#onlineCount
  }

  /** Sum over peers of their time online so far, in ms (for per-peer rates). */
  get onlinePeerMs(): number {
    let total = this.#onlinePeerMs
    for (let index = 0; index < this.peerCount; index++) if (this.#online[index] === 1) total += this.#now - this.#joinedAt[index]!
    return total
  }

  get activeFlowCount(): number {
    return this.#bandwidth.activeCount
  }

  idOf(index: number): PeerId {
    const id = this.#ids[index]
    if (id === undefined) throw new RangeError(`no peer ${index}`)
    return id
  }

  indexOf(id: PeerId | string): number | undefined {
    return this.#indexById.get(id)
  }

  isOnline(index: number): boolean {
    return this.#online[index] === 1
  }

  natClassOf(index: number): NatClass {
    return NAT_CLASSES[this.#natClass[index]!]!
  }

  servesProtocol(index: number): boolean {
    return this.#serves[index] === 1
  }

  /** How many connections the peer holds, including ones whose far end crashed unnoticed. */
  connectionCountOf(index: number): number {
    return this.#connectionsOf[index]?.length ?? 0
  }

  /** The peer's current core (undefined while offline). */
  core(index: number): SimCore<M> | undefined {
    return this.#cores[index]
  }

  latencyMs(a: number, b: number): number {
    return pairLatencyMs(this.network.latency, this.#latencyKey, a, b)
  }

  setCapacity(index: number, uploadBytesPerSecond: number, downloadBytesPerSecond: number): void {
    if (this.#unlimitedBandwidth) throw new Error('per-peer capacities need finite default capacities')
    this.#bandwidth.setCapacity(index, uploadBytesPerSecond, downloadBytesPerSecond)
  }

  /** Whether a and b have a connection that both ends still hold (crashed ends excluded). */
  connected(a: number, b: number): boolean {
    const connection = this.#connectionByPair.get(this.#pairKey(a, b))
    return connection !== undefined && this.#isLive(connection)
  }

  /** Calls `visit` for every connection that both ends hold (each once, a < b). */
  forEachLiveConnection(visit: (a: number, b: number) => void): void {
    for (const connection of this.#connectionByPair.values()) if (this.#isLive(connection)) visit(connection.a, connection.b)
  }

  /** Connections whose far end crashed and that the near end has not closed yet. */
  get deadConnectionCount(): number {
    let count = 0
    for (const connection of this.#connectionByPair.values()) if (connection.crashedAt !== NO_TIME) count++
    return count
  }

  /** A fork of the run's seed for scenario-level choices (who crashes, who is in which half). */
  prng(label: string): Prng {
    return this.#rootPrng.fork(label)
  }

  // ---- scenario controls ------------------------------------------------------------

  /** Brings a peer online at `time` (default now) with a fresh core. */
  join(index: number, time = this.#now): void {
    this.#queue.push(Math.max(time, this.#now), Kind.Join, this.#checkIndex(index), -1, 0, undefined)
  }

  /** Takes a peer offline at `time`: gracefully (closing its connections) or by crashing. */
  leave(index: number, options: { crash: boolean; time?: number; incarnation?: number }): void {
    // version 0 means any incarnation; otherwise incarnation + 1, so a departure drawn for
    // one session cannot end a later one.
    const version = options.incarnation === undefined ? 0 : options.incarnation + 1
    this.#queue.push(Math.max(options.time ?? this.#now, this.#now), Kind.Leave, this.#checkIndex(index), -1, version, options.crash)
  }

  /** How many times the peer has gone offline; the current session's number while online. */
  incarnationOf(index: number): number {
    return this.#incarnation[index]!
  }

  /** Runs `action` at virtual `time`, in order with the other events. */
  at(time: number, action: () => void): void {
    this.#queue.push(Math.max(time, this.#now), Kind.Callback, -1, -1, 0, action)
  }

  /**
   * Splits the network: peers in different groups (unlisted peers form group 0) cannot
   * exchange messages or dial each other. Messages across are dropped silently and
   * connections stay open, as when a route disappears: the protocols must notice.
   */
  partition(...groups: readonly (readonly number[])[]): void {
    if (groups.length > 65_535) throw new RangeError('too many groups')
    this.#group.fill(0)
    groups.forEach((members, groupIndex) => {
      for (const index of members) this.#group[this.#checkIndex(index)] = groupIndex + 1
    })
  }

  heal(): void {
    this.#group.fill(0)
  }

  /** Delivers an input to a peer's core now (e.g. `peer-discovered` at bootstrap). */
  input(index: number, input: SimInput<M>): void {
    if (this.#online[index] === 1) this.#handle(index, input)
  }

  /**
   * Processes events up to and including virtual time `untilMs`, or until `eventsMax`
   * events have been processed. Returns true when the time was reached.
   */
  run(untilMs: number, eventsMax = Infinity): boolean {
    const queue = this.#queue
    const eventCountEnd = this.#eventCount + eventsMax
    for (;;) {
      if (this.#eventCount >= eventCountEnd) return false
      const time = queue.peekTime()
      if (time === undefined || time > untilMs) break
      this.#process(queue.pop()!)
    }
    if (untilMs > this.#now && untilMs !== Infinity) this.#now = untilMs
    return true
  }

  // ---- the engine -------------------------------------------------------------------

  #process(event: SimEvent): void {
    const peer = event.peer
    switch (event.kind) {
      case Kind.Tick:
        // A superseded tick: the core's deadline moved since it was scheduled.
        if (event.version !== this.#tickVersion[peer] || this.#online[peer] !== 1) return
        this.#begin(event)
        this.#tickAt[peer] = NO_TIME
        this.#handle(peer, TICK)
        return
      case Kind.FlowDone: {
        const transfer = event.payload as Transfer
        if (event.version !== transfer.version) return
        this.#begin(event)
        if (this.#streamsSerialized) return this.#onStreamHeadSent(transfer)
        this.#bandwidth.finish(this.#now, transfer)
        this.#scheduleDelivery(transfer)
        return
      }
      case Kind.Deliver:
        this.#begin(event)
        this.#deliver(event.payload as Transfer)
        return
      case Kind.DialDone:
        this.#begin(event)
        this.#onDialDone(peer, event.other, event.version, event.payload as number)
        return
      case Kind.DialFailed:
        this.#begin(event)
        if (this.#online[peer] === 1 && this.#incarnation[peer] === event.version) {
          this.counters.dialsFailed++
          this.#handle(peer, { type: 'dial-failed', peer: this.#ids[event.other] ?? (event.payload as PeerId), reason: event.other < 0 ? 'unknown-peer' : 'timeout' })
        }
        return
      case Kind.RemoteClosed:
        this.#begin(event)
        this.#onRemoteClosed(peer, event.other, event.version, event.payload as Connection)
        return
      case Kind.LocalClosed:
      case Kind.Evicted:
        this.#begin(event)
        this.#onLocalClosed(peer, event.other, event.version, event.payload as Connection, event.kind === Kind.Evicted)
        return
      case Kind.RequestDialDone:
        this.#begin(event)
        this.#onRequestDialDone(peer, event.other, event.version, event.payload as number)
        return
      case Kind.RequestDialFailed:
        this.#begin(event)
        this.#onRequestDialFailed(peer, event.other, event.version)
        return
      case Kind.RequestSettle:
        this.#begin(event)
        this.#onRequestSettle(event.payload as RequestTransfer)
        return
      case Kind.Join:
        this.#begin(event)
        this.#onJoin(peer)
        return
      case Kind.Leave:
        this.#begin(event)
        if (event.version === 0 || event.version === this.#incarnation[peer]! + 1) this.#onLeave(peer, event.payload as boolean)
        return
      case Kind.Callback:
        this.#begin(event)
        ;(event.payload as () => void)()
        return
    }
  }

  /** Advances the clock to the event and folds it into the trace. */
  #begin(event: SimEvent): void {
    this.#now = event.time
    this.#eventCount++
    const trace = this.#trace
    trace.number(Math.round(event.time * 1000))
    trace.word(event.kind | (event.peer << 4))
    trace.word(event.other)
  }

  #handle(peer: number, input: SimInput<M>): void {
    const core = this.#cores[peer]!
    const now = this.#now
    core.handle(now, input)
    let actionCount = 0
    for (let action = core.poll(); action !== undefined; action = core.poll()) {
      if (++actionCount > ACTIONS_PER_HANDLE_MAX) throw new Error(`peer ${peer} emitted more than ${ACTIONS_PER_HANDLE_MAX} actions for one input`)
      this.#execute(peer, action)
      // A disconnect or an onAction hook may have taken the peer offline.
      if (this.#cores[peer] !== core) return
    }
    this.#scheduleTick(peer, core, input === TICK)
  }

  #scheduleTick(peer: number, core: SimCore<M>, afterTick: boolean): void {
    const deadline = core.nextDeadline()
    if (deadline === undefined) {
      if (this.#tickAt[peer] !== NO_TIME) {
        this.#tickAt[peer] = NO_TIME
        this.#tickVersion[peer]!++
      }
      return
    }
    let time = deadline > this.#now ? deadline : this.#now
    // A core that asks for a tick now right after a tick would spin at one instant forever.
    if (afterTick && time === this.#now) {
      this.counters.stuckDeadlines++
      time = this.#now + 1
    }
    if (time === this.#tickAt[peer]) return
    this.#tickAt[peer] = time
    this.#queue.push(time, Kind.Tick, peer, -1, ++this.#tickVersion[peer]!, undefined)
  }

  #execute(peer: number, action: AnyAction<M>): void {
    switch (action.type) {
      case 'send': {
        const send = action as Extract<NetworkAction<M>, { type: 'send' }>
        this.#send(peer, send.to, send.message)
        return
      }
      case 'dial':
        this.#dial(peer, (action as Extract<NetworkAction<M>, { type: 'dial' }>).peer)
        return
      case 'disconnect': {
        const target = this.#indexById.get((action as Extract<NetworkAction<M>, { type: 'disconnect' }>).peer)
        const connection = target === undefined ? undefined : this.#connectionByPair.get(this.#pairKey(peer, target))
        if (connection === undefined || !this.#usableBy(connection, peer)) return
        this.counters.disconnects++
        this.#close(connection, peer, CloseCause.Disconnect)
        return
      }
      case 'request':
        this.#request(peer, action as Extract<RequestAction<M>, { type: 'request' }>)
        return
      case 'respond':
        this.#respond(peer, action as Extract<RequestAction<M>, { type: 'respond' }>)
        return
      default:
        this.counters.otherActions++
        this.#options.onAction?.(peer, action, this.#now)
    }
  }

  #send(from: number, toId: PeerId, message: M): void {
    const to = this.#indexById.get(toId)
    const connection = to === undefined ? undefined : this.#connectionByPair.get(this.#pairKey(from, to))
    if (to === undefined || connection === undefined || !this.#usableBy(connection, from)) {
      this.counters.messagesDroppedNoConnection++
      return
    }
    this.counters.messagesSent++
    this.#transmit(new Transfer(from, to, 0, message, connection, Carries.Message), this.#sizeOf(message) + this.network.frameOverheadBytes)
  }

  /** Puts a transfer (from, to, connection and payload set) on the wire. */
  #transmit(transfer: Transfer, bytes: number): void {
    transfer.bytes = bytes
    transfer.bytesRemaining = bytes
    this.counters.bytesSent += bytes
    this.#markUsed(transfer.connection)
    if (this.#unlimitedBandwidth) this.#scheduleDelivery(transfer)
    else if (this.#streamsSerialized) this.#enqueueOnStream(transfer)
    else this.#bandwidth.start(this.#now, transfer)
  }

  /** streamsSerialized: the transfer goes on the wire if its stream is idle, else waits its turn. */
  #enqueueOnStream(transfer: Transfer): void {
    const connection = transfer.connection
    const toB = transfer.to === connection.b
    if ((toB ? connection.sendingToB : connection.sendingToA) !== undefined) {
      if (toB) (connection.queuedToB ??= []).push(transfer)
      else (connection.queuedToA ??= []).push(transfer)
      return
    }
    if (transfer.bytes <= this.#expressBytesMax) {
      this.#scheduleDelivery(transfer)
      return
    }
    if (toB) connection.sendingToB = transfer
    else connection.sendingToA = transfer
    this.#bandwidth.start(this.#now, transfer)
  }

  /**
   * streamsSerialized: the stream's head has left the sender. Express messages behind it
   * leave at once; the next larger one takes over its flow. A closed connection's queue
   * drains at once, each message to be dropped on arrival as any in flight would be.
   */
  #onStreamHeadSent(transfer: Transfer): void {
    this.#scheduleDelivery(transfer)
    const connection = transfer.connection
    const toB = transfer.to === connection.b
    const queued = toB ? connection.queuedToB : connection.queuedToA
    let next: Transfer | undefined
    while (queued !== undefined && queued.length > 0) {
      const candidate = queued.shift()!
      if (connection.open && candidate.bytes > this.#expressBytesMax) {
        next = candidate
        break
      }
      this.#scheduleDelivery(candidate)
    }
    if (toB) connection.sendingToB = next
    else connection.sendingToA = next
    if (next === undefined) this.#bandwidth.finish(this.#now, transfer)
    else this.#bandwidth.handOver(this.#now, transfer, next)
  }

  /** Whether `peer` may still use the connection: open, and held by its current incarnation. */
  #usableBy(connection: Connection, peer: number): boolean {
    return connection.open && this.#incarnation[peer] === (connection.a === peer ? connection.incarnationA : connection.incarnationB)
  }

  /** The last byte has left the sender: it arrives one latency (plus retransmissions) later, in stream order. */
  #scheduleDelivery(transfer: Transfer): void {
    const connection = transfer.connection
    let delayMs = connection.latencyMs
    const lossProbability = this.network.lossProbability
    if (lossProbability > 0) {
      let timeoutMs = Math.max(this.network.retransmitTimeoutMsMin, 4 * connection.latencyMs)
      for (let attempt = 0; attempt < RETRANSMISSIONS_MAX && this.#networkPrng.next() < lossProbability; attempt++) {
        this.counters.retransmissions++
        delayMs += timeoutMs
        timeoutMs *= 2
      }
    }
    let arrivalAt = this.#now + delayMs
    if (transfer.to === connection.b) {
      if (arrivalAt < connection.tailAtToB) arrivalAt = connection.tailAtToB
      connection.tailAtToB = arrivalAt
    } else {
      if (arrivalAt < connection.tailAtToA) arrivalAt = connection.tailAtToA
      connection.tailAtToA = arrivalAt
    }
    if (transfer.carries === Carries.Request) {
      const request = transfer as RequestTransfer
      // A new stream's negotiation delays only its own request (not the connection's tail):
      // yamux streams do not wait for one another.
      const streamOpenMs = 2 * connection.latencyMs * this.network.streamOpenRoundTripCount
      // Pushed before the delivery, so that at equal times the requester hears first.
      if (request.oneWay) this.#queue.push(this.#now + streamOpenMs, Kind.RequestSettle, request.requester, request.target, 0, request)
      arrivalAt += streamOpenMs
    }
    this.#queue.push(arrivalAt, Kind.Deliver, transfer.to, transfer.from, 0, transfer)
  }

  #deliver(transfer: Transfer): void {
    const { connection, to, from } = transfer
    const trace = this.#trace
    // Only what is not a plain message adds a word, so runs without requests keep their hashes.
    if (transfer.carries !== Carries.Message) trace.word(0x100 | transfer.carries)
    trace.word(this.#messageTypeCode(transfer.payload))
    trace.word(transfer.bytes)
    let outcome: Outcome
    if (!connection.open) outcome = Outcome.DroppedClosed
    else if (this.#incarnation[to] !== (connection.a === to ? connection.incarnationA : connection.incarnationB)) outcome = Outcome.DroppedOffline
    else if (this.#group[to] !== this.#group[from]) outcome = Outcome.DroppedPartition
    else outcome = Outcome.Delivered
    trace.word(outcome)
    if (transfer.carries !== Carries.Message) {
      this.#deliverRequest(transfer as RequestTransfer, outcome)
      return
    }
    if (outcome === Outcome.Delivered) this.#markUsed(connection)
    switch (outcome) {
      case Outcome.DroppedClosed: this.counters.messagesDroppedClosed++; return
      case Outcome.DroppedOffline: this.counters.messagesDroppedOffline++; return
      case Outcome.DroppedPartition: this.counters.messagesDroppedPartition++; return
      case Outcome.Delivered:
        this.counters.messagesDelivered++
        this.#handle(to, { type: 'message', from: this.#ids[from]!, message: transfer.payload as M })
    }
  }

  #messageTypeCode(message: unknown): number {
    const type = typeof message === 'object' && message !== null ? (message as { type?: unknown }).type : message
    let code = this.#messageTypeCodes.get(type)
    if (code === undefined) {
      code = this.#messageTypeCodes.size + 1
      this.#messageTypeCodes.set(type, code)
    }
    return code
  }

  #dial(from: number, targetId: PeerId): void {
    this.counters.dials++
    const to = this.#indexById.get(targetId)
    const incarnation = this.#incarnation[from]!
    if (to === undefined || to === from) {
      // An id no simulated peer has (a Sybil's, or garbage): nobody answers.
      if (to === undefined) this.counters.dialsToUnknownPeer++
      this.#queue.push(this.#now + this.network.dialTimeoutMs, Kind.DialFailed, from, -1, incarnation, targetId)
      return
    }
    this.#startDial(from, to, Kind.DialDone, Kind.DialFailed)
  }

  /** Schedules a dial's outcome: done after the handshake, or failed after the dial timeout. */
  #startDial(from: number, to: number, doneKind: Kind, failedKind: Kind): void {
    const incarnation = this.#incarnation[from]!
    if (this.#online[to] === 1 && this.#group[to] === this.#group[from] && this.#accepts(to)) {
      const handshakeMs = 2 * this.latencyMs(from, to) * this.network.handshakeRoundTripCount
      this.#queue.push(this.#now + handshakeMs, doneKind, from, to, incarnation, this.#incarnation[to])
    } else {
      this.#queue.push(this.#now + this.network.dialTimeoutMs, failedKind, from, to, incarnation, undefined)
    }
  }

  /** Whether an incoming dial gets through the target's NAT. */
  #accepts(target: number): boolean {
    switch (NAT_CLASSES[this.#natClass[target]!]) {
      case 'public': return true
      case 'nat': return this.network.holePunchProbability > 0 && this.#networkPrng.next() < this.network.holePunchProbability
      default: return false
    }
  }

  #onDialDone(from: number, to: number, fromIncarnation: number, toIncarnation: number): void {
    if (this.#online[from] !== 1 || this.#incarnation[from] !== fromIncarnation) return
    if (this.#online[to] !== 1 || this.#incarnation[to] !== toIncarnation || this.#group[to] !== this.#group[from]) {
      // The target went away or the route broke mid-handshake: the dialer sees a reset.
      this.counters.dialsFailed++
      this.#handle(from, { type: 'dial-failed', peer: this.#ids[to]!, reason: 'reset' })
      return
    }
    this.counters.dialsSucceeded++
    const existing = this.#connectionByPair.get(this.#pairKey(from, to))
    if (existing !== undefined && this.#isLive(existing)) {
      // As libp2p does, a dial to a connected peer yields the open connection.
      this.counters.dialsToConnectedPeer++
      if (this.#serves[to] === 1) this.#handle(from, { type: 'peer-connected', peer: this.#ids[to]!, direction: 'outbound', addresses: NO_ADDRESSES })
      return
    }
    const connection = this.#openConnection(from, to)
    this.#announceConnection(from, to, fromIncarnation, connection)
  }

  /** A new connection between two online peers; each end then keeps within connectionsPerPeerMax. */
  #openConnection(from: number, to: number): Connection {
    const a = from < to ? from : to
    const b = from < to ? to : from
    const connection = new Connection(a, b, this.#incarnation[a]!, this.#incarnation[b]!, this.latencyMs(a, b))
    // A stale connection to a crashed incarnation is replaced; its near end still holds it in its list.
    this.#connectionByPair.set(this.#pairKey(a, b), connection)
    if (this.#attach(a, connection) > this.#connectionsPerPeerMax) this.#evictLeastRecentlyUsed(a, connection)
    if (this.#attach(b, connection) > this.#connectionsPerPeerMax) this.#evictLeastRecentlyUsed(b, connection)
    return connection
  }

  /** Adds the connection to the peer's list; returns how many the peer now holds. */
  #attach(peer: number, connection: Connection): number {
    const connections = (this.#connectionsOf[peer] ??= [])
    const slot = connections.length
    connections.push(connection)
    if (connection.a === peer) connection.slotAtA = slot
    else connection.slotAtB = slot
    const usedAtOf = this.#usedAtOf
    if (usedAtOf !== undefined) {
      let usedAt = usedAtOf[peer]
      if (usedAt === undefined || usedAt.length <= slot) {
        // Never beyond connectionsPerPeerMax + 1: a peer holds one more only until it evicts.
        const grown = new Float64Array(Math.min(Math.max(8, 2 * slot), this.#connectionsPerPeerMax + 1))
        if (usedAt !== undefined) grown.set(usedAt)
        usedAtOf[peer] = usedAt = grown
      }
      usedAt[slot] = this.#now
    }
    return connections.length
  }

  /** Removes the connection from the peer's list (if it is there): the last one takes its slot. */
  #detach(peer: number, connection: Connection): void {
    const connections = this.#connectionsOf[peer]
    const slot = connection.a === peer ? connection.slotAtA : connection.slotAtB
    if (connections === undefined || slot < 0 || connections[slot] !== connection) return
    if (connection.a === peer) connection.slotAtA = -1
    else connection.slotAtB = -1
    const last = connections.pop()!
    if (last === connection) return
    connections[slot] = last
    if (last.a === peer) last.slotAtA = slot
    else last.slotAtB = slot
    const usedAt = this.#usedAtOf?.[peer]
    if (usedAt !== undefined) usedAt[slot] = usedAt[connections.length]!
  }

  #markUsed(connection: Connection): void {
    const usedAtOf = this.#usedAtOf
    if (usedAtOf === undefined) return
    // A crashed end's slot is -1: its list has been emptied.
    if (connection.slotAtA >= 0) usedAtOf[connection.a]![connection.slotAtA] = this.#now
    if (connection.slotAtB >= 0) usedAtOf[connection.b]![connection.slotAtB] = this.#now
  }

  /** `peer-connected` at both ends of a new connection, inbound first, for peers that serve the protocol. */
  #announceConnection(from: number, to: number, fromIncarnation: number, connection: Connection): void {
    if (this.#serves[from] === 1) this.#handle(to, { type: 'peer-connected', peer: this.#ids[from]!, direction: 'inbound', addresses: NO_ADDRESSES })
    if (this.#serves[to] === 1 && this.#online[from] === 1 && this.#incarnation[from] === fromIncarnation && connection.open) {
      this.#handle(from, { type: 'peer-connected', peer: this.#ids[to]!, direction: 'outbound', addresses: NO_ADDRESSES })
    }
  }

  /**
   * libp2p's connection manager prunes beyond its maximum; here the victim is the least
   * recently used connection other than the new one. O(degree), once per new connection.
   */
  #evictLeastRecentlyUsed(peer: number, keep: Connection): void {
    const connections = this.#connectionsOf[peer]!
    const usedAt = this.#usedAtOf![peer]!
    while (connections.length > this.#connectionsPerPeerMax) {
      let victimSlot = -1
      let oldest = Infinity
      for (let slot = 0; slot < connections.length; slot++) {
        if (usedAt[slot]! < oldest && connections[slot] !== keep) {
          oldest = usedAt[slot]!
          victimSlot = slot
        }
      }
      if (victimSlot < 0) return
      this.counters.connectionsEvicted++
      this.#close(connections[victimSlot]!, peer, CloseCause.Evict)
    }
  }

  /** Closes a connection from `closer`'s side; the other end hears of it one latency later. */
  #close(connection: Connection, closer: number, cause: CloseCause): void {
    connection.open = false
    const key = this.#pairKey(connection.a, connection.b)
    if (this.#connectionByPair.get(key) === connection) this.#connectionByPair.delete(key)
    this.#detach(connection.a, connection)
    this.#detach(connection.b, connection)
    const closerIsA = connection.a === closer
    const remote = closerIsA ? connection.b : connection.a
    // The closer's own requests fail, and an eviction is news to its core, once the current
    // handle() is over: a core is never re-entered while it is being polled.
    if (cause === CloseCause.Evict || (cause === CloseCause.Disconnect && connection.requests !== undefined)) {
      const closerIncarnation = closerIsA ? connection.incarnationA : connection.incarnationB
      this.#queue.push(this.#now, cause === CloseCause.Evict ? Kind.Evicted : Kind.LocalClosed, closer, remote, closerIncarnation, connection)
    }
    if (connection.crashedAt !== NO_TIME) {
      // Only a close decided by the surviving end's protocol counts as detecting the crash.
      if (cause === CloseCause.Disconnect) this.deadPeerDetectionDelaysMs.push(this.#now - connection.crashedAt)
      return
    }
    const remoteIncarnation = closerIsA ? connection.incarnationB : connection.incarnationA
    this.#queue.push(this.#now + connection.latencyMs, Kind.RemoteClosed, remote, closer, remoteIncarnation, connection)
  }

  #onRemoteClosed(peer: number, closer: number, incarnation: number, connection: Connection): void {
    if (this.#online[peer] !== 1 || this.#incarnation[peer] !== incarnation) return
    this.#failRequestsOn(connection, peer)
    this.#tellDisconnected(peer, closer, incarnation, connection)
  }

  #onLocalClosed(peer: number, remote: number, incarnation: number, connection: Connection, evicted: boolean): void {
    if (this.#online[peer] !== 1 || this.#incarnation[peer] !== incarnation) return
    this.#failRequestsOn(connection, peer)
    if (evicted) this.#tellDisconnected(peer, remote, incarnation, connection)
  }

  #tellDisconnected(peer: number, remote: number, incarnation: number, connection: Connection): void {
    if (this.#online[peer] !== 1 || this.#incarnation[peer] !== incarnation || this.#serves[remote] !== 1) return
    // A newer connection between the two is open: this close is not news to the core.
    const current = this.#connectionByPair.get(this.#pairKey(peer, remote))
    if (current !== undefined && current !== connection && this.#isLive(current)) return
    this.#handle(peer, { type: 'peer-disconnected', peer: this.#ids[remote]! })
  }

  // ---- requests ---------------------------------------------------------------------

  #request(from: number, action: Extract<RequestAction<M>, { type: 'request' }>): void {
    this.counters.requestsSent++
    const to = this.#indexById.get(action.to)
    const incarnation = this.#incarnation[from]!
    const request = new RequestTransfer(from, to ?? -1, action.to, incarnation, action.id, action.message, action.oneWay)
    if (to === undefined || to === from) {
      // As #dial: nobody answers, and the dial times out.
      this.counters.dials++
      if (to === undefined) this.counters.dialsToUnknownPeer++
      request.failure = Failure.UnknownPeer
      this.#queue.push(this.#now + this.network.dialTimeoutMs, Kind.RequestSettle, from, -1, 0, request)
      return
    }
    const connection = this.#connectionByPair.get(this.#pairKey(from, to))
    if (connection !== undefined && this.#usableBy(connection, from)) {
      this.#sendRequest(request, connection)
      return
    }
    // Requests to a peer being dialled for earlier ones share that dial (libp2p's dial queue does too).
    const key = from * this.peerCount + to
    const queued = this.#requestDials.get(key)
    if (queued !== undefined && queued.requesterIncarnation === incarnation) {
      let last = queued
      while (last.next !== undefined) last = last.next
      last.next = request
      return
    }
    // A queue left by an earlier incarnation is dropped here; its dial's outcome finds nobody.
    this.#requestDials.set(key, request)
    this.counters.dials++
    this.#startDial(from, to, Kind.RequestDialDone, Kind.RequestDialFailed)
  }

  #sendRequest(request: RequestTransfer, connection: Connection): void {
    request.connection = connection
    request.state = RequestState.Outbound
    const head = connection.requests
    request.next = head
    if (head !== undefined) head.previous = request
    connection.requests = request
    this.#transmit(request, this.#sizeOf(request.payload as M) + this.network.frameOverheadBytes)
  }

  #respond(from: number, action: Extract<RequestAction<M>, { type: 'respond' }>): void {
    const requester = this.#indexById.get(action.to)
    const connection = requester === undefined ? undefined : this.#connectionByPair.get(this.#pairKey(from, requester))
    let request = connection !== undefined && this.#usableBy(connection, from) ? connection.requests : undefined
    while (request !== undefined && !(request.inboundId === action.id && request.target === from && request.state === RequestState.AtTarget)) request = request.next
    if (request === undefined) {
      this.counters.respondsDropped++
      return
    }
    request.state = RequestState.Returning
    request.carries = Carries.Response
    request.from = from
    request.to = request.requester
    request.payload = action.message
    this.#transmit(request, this.#sizeOf(action.message) + this.network.frameOverheadBytes)
  }

  #deliverRequest(request: RequestTransfer, outcome: Outcome): void {
    if (outcome !== Outcome.Delivered) {
      this.counters.requestsLost++
      // A closed connection's requests are failed by the close; a vanished peer's are never reported.
      if (outcome !== Outcome.DroppedClosed) this.#unlink(request)
      return
    }
    this.#markUsed(request.connection)
    const { requester, target } = request
    switch (request.carries) {
      case Carries.Request:
        if (this.#serves[target] !== 1) {
          if (request.oneWay) {
            // Already reported written; the refusal has nobody waiting for it.
            this.counters.requestsLost++
            request.state = RequestState.Done
            return
          }
          request.state = RequestState.Returning
          request.carries = Carries.Refusal
          request.from = target
          request.to = requester
          request.payload = undefined
          this.#transmit(request, this.network.frameOverheadBytes)
          return
        }
        // A one-way request is reported written before it can arrive (#scheduleDelivery orders them).
        if (request.state !== (request.oneWay ? RequestState.OneWaySent : RequestState.Outbound)) throw new Error(`request arrived in state ${request.state}: request bookkeeping is broken`)
        // One-way requests are off the connection's list already: nothing answers them.
        request.state = request.oneWay ? RequestState.Done : RequestState.AtTarget
        request.inboundId = this.#inboundRequestIdNext++
        this.counters.requestsDelivered++
        this.#handle(target, { type: 'request', from: this.#ids[requester]!, id: request.inboundId, message: request.payload as M, addresses: NO_ADDRESSES, remoteIsServer: this.#serves[requester] === 1 })
        return
      case Carries.Response:
        this.#unlink(request)
        this.counters.responsesDelivered++
        this.#handle(requester, { type: 'response', from: request.targetId, id: request.id, message: request.payload as M })
        return
      case Carries.Refusal:
        this.#unlink(request)
        this.#reportFailure(request, Failure.ProtocolUnsupported)
        return
    }
  }

  #onRequestDialDone(from: number, to: number, fromIncarnation: number, toIncarnation: number): void {
    const queued = this.#takeQueued(from, to, fromIncarnation)
    if (queued === undefined || this.#online[from] !== 1 || this.#incarnation[from] !== fromIncarnation) return
    if (this.#online[to] !== 1 || this.#incarnation[to] !== toIncarnation || this.#group[to] !== this.#group[from]) {
      this.counters.dialsFailed++
      this.#failQueued(queued, Failure.DialFailed)
      return
    }
    this.counters.dialsSucceeded++
    const existing = this.#connectionByPair.get(this.#pairKey(from, to))
    if (existing !== undefined && this.#isLive(existing)) {
      // Connected meanwhile (the target dialled us, say): the core was told then, not again.
      this.counters.dialsToConnectedPeer++
      this.#sendQueued(queued, existing)
      return
    }
    const connection = this.#openConnection(from, to)
    // Sending schedules only, so the requests are on their way before any core can react.
    this.#sendQueued(queued, connection)
    this.#announceConnection(from, to, fromIncarnation, connection)
  }

  #onRequestDialFailed(from: number, to: number, fromIncarnation: number): void {
    const queued = this.#takeQueued(from, to, fromIncarnation)
    if (queued === undefined || this.#online[from] !== 1 || this.#incarnation[from] !== fromIncarnation) return
    this.counters.dialsFailed++
    this.#failQueued(queued, Failure.DialFailed)
  }

  /** Removes and returns the requests queued on a dial by this incarnation of `from`. */
  #takeQueued(from: number, to: number, fromIncarnation: number): RequestTransfer | undefined {
    const key = from * this.peerCount + to
    const queued = this.#requestDials.get(key)
    if (queued === undefined || queued.requesterIncarnation !== fromIncarnation) return undefined
    this.#requestDials.delete(key)
    return queued
  }

  #sendQueued(queued: RequestTransfer, connection: Connection): void {
    for (let request: RequestTransfer | undefined = queued; request !== undefined; ) {
      const next: RequestTransfer | undefined = request.next
      request.next = undefined
      this.#sendRequest(request, connection)
      request = next
    }
  }

  #failQueued(queued: RequestTransfer, failure: Failure): void {
    for (let request: RequestTransfer | undefined = queued; request !== undefined; ) {
      const next: RequestTransfer | undefined = request.next
      request.next = undefined
      this.#reportFailure(request, failure)
      request = next
    }
  }

  /** A one-way request has left the sender, or a request to an unknown peer has timed out. */
  #onRequestSettle(request: RequestTransfer): void {
    if (request.state === RequestState.Done) return
    const requester = request.requester
    if (request.failure !== Failure.None) {
      if (this.#online[requester] === 1 && this.#incarnation[requester] === request.requesterIncarnation) this.counters.dialsFailed++
      this.#reportFailure(request, request.failure)
      return
    }
    this.#unlink(request)
    request.state = RequestState.OneWaySent
    if (this.#online[requester] !== 1 || this.#incarnation[requester] !== request.requesterIncarnation) return
    this.counters.responsesDelivered++
    this.#handle(requester, { type: 'response', from: request.targetId, id: request.id, message: undefined })
  }

  /** Fails the requester's open requests on a connection it has heard is closed. */
  #failRequestsOn(connection: Connection, requester: number): void {
    let request = connection.requests
    while (request !== undefined) {
      const next: RequestTransfer | undefined = request.next
      if (request.requester === requester) {
        this.#unlink(request)
        this.#reportFailure(request, Failure.ConnectionClosed)
      }
      request = next
    }
  }

  /** Ends a request with `request-failed`, told to the requester if it is still the same incarnation. */
  #reportFailure(request: RequestTransfer, failure: Failure): void {
    request.state = RequestState.Done
    const requester = request.requester
    if (this.#online[requester] !== 1 || this.#incarnation[requester] !== request.requesterIncarnation) return
    switch (failure) {
      case Failure.DialFailed: this.counters.requestsFailedDial++; break
      case Failure.UnknownPeer: this.counters.requestsFailedUnknownPeer++; break
      case Failure.ProtocolUnsupported: this.counters.requestsFailedProtocolUnsupported++; break
      case Failure.ConnectionClosed: this.counters.requestsFailedConnectionClosed++; break
    }
    this.#trace.word(0x200 | failure)
    this.#handle(requester, { type: 'request-failed', peer: request.targetId, id: request.id, reason: FAILURE_REASONS[failure]! })
  }

  /** Takes a request off its connection's list (if it is on it) and marks it done. */
  #unlink(request: RequestTransfer): void {
    const state = request.state
    request.state = RequestState.Done
    if (state !== RequestState.Outbound && state !== RequestState.AtTarget && state !== RequestState.Returning) return
    const { previous, next } = request
    if (previous === undefined) request.connection.requests = next
    else previous.next = next
    if (next !== undefined) next.previous = previous
    request.previous = undefined
    request.next = undefined
  }

  #onJoin(peer: number): void {
    if (this.#online[peer] === 1) return
    this.#online[peer] = 1
    this.#onlineCount++
    this.#joinedAt[peer] = this.#now
    const incarnation = this.#incarnation[peer]!
    const core = this.#options.createCore({
      index: peer,
      id: this.#ids[peer]!,
      prng: this.#rootPrng.fork(`peer:${peer}:${incarnation}`),
      incarnation,
      natClass: this.natClassOf(peer),
    })
    this.#cores[peer] = core
    this.#handle(peer, TICK)
    this.#options.onJoin?.(peer, this.#now)
  }

  #onLeave(peer: number, crash: boolean): void {
    if (this.#online[peer] !== 1) return
    const connections = this.#connectionsOf[peer]
    if (connections !== undefined) {
      if (crash) {
        for (const connection of connections) {
          if (connection.a === peer) connection.slotAtA = -1
          else connection.slotAtB = -1
          if (connection.crashedAt === NO_TIME) {
            connection.crashedAt = this.#now
            continue
          }
          // Both ends have now crashed: nobody is left to detect anything.
          connection.open = false
          const key = this.#pairKey(connection.a, connection.b)
          if (this.#connectionByPair.get(key) === connection) this.#connectionByPair.delete(key)
        }
        connections.length = 0
      } else {
        for (const connection of connections.slice()) this.#close(connection, peer, CloseCause.Leave)
      }
    }
    this.#online[peer] = 0
    this.#onlineCount--
    this.#onlinePeerMs += this.#now - this.#joinedAt[peer]!
    // Every event still addressed to this incarnation (ticks, deliveries, dials) is now stale.
    this.#incarnation[peer]!++
    this.#cores[peer] = undefined
    this.#tickAt[peer] = NO_TIME
    this.#tickVersion[peer]!++
    this.#options.onLeave?.(peer, crash, this.#now)
  }

  #isLive(connection: Connection): boolean {
    return connection.open && this.#incarnation[connection.a] === connection.incarnationA && this.#incarnation[connection.b] === connection.incarnationB
  }

  #pairKey(a: number, b: number): number {
    return a < b ? a * this.peerCount + b : b * this.peerCount + a
  }

  #checkIndex(index: number): number {
    if (!Number.isInteger(index) || index < 0 || index >= this.peerCount) throw new RangeError(`no peer ${index}`)
    return index
  }
}

const TICK: { type: 'tick' } = Object.freeze({ type: 'tick' })

