/**
 * Simulator: the deterministic discrete-event engine. Owns the virtual clock, the agenda,
 * the peers (online state, NAT class, partition group, pending tick, core) and the
 * connections between them, and drives each peer's core exactly as net/ does:
 *
 *   core.handle(now, input); drain poll(); schedule one tick at nextDeadline()
 *
 * Generic over any core that takes NetworkInput<M> and emits NetworkAction<M>; other
 * actions (a core's `emit`) go to the `onAction` hook. Driven by Scenario (or a test)
 * through join/leave/partition/heal and run(). Per-peer state lives in typed arrays so
 * that an idle peer costs little beyond its core.
 */
import { Prng } from '../core/prng.ts'
import type { Core, NetworkAction, NetworkInput, PeerId, WireCodec } from '../core/sans-io.ts'
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

/** Any action a core may emit: the network ones the simulator carries out, and its own. */
export type AnyAction<M> = NetworkAction<M> | { type: string }

export type SimCore<M> = Core<NetworkInput<M>, AnyAction<M>>

export interface SimulatorOptions<M> {
  peerCount: number
  seed: Seed
  /** Sizes every message (encode(message).byteLength) for bandwidth and byte counts. */
  codec: WireCodec<M>
  network?: Partial<NetworkConfig>
  createCore(context: PeerContext): SimCore<M>
  /** NAT class of each peer (default: all public). Asked once per peer at construction. */
  natClassOf?(index: number): NatClass
  /** Actions that are not send/dial/disconnect, e.g. `{ type: 'emit' }`. */
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
}

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

  constructor(a: number, b: number, incarnationA: number, incarnationB: number, latencyMs: number) {
    this.a = a
    this.b = b
    this.incarnationA = incarnationA
    this.incarnationB = incarnationB
    this.latencyMs = latencyMs
  }
}

/** A message in transit: its flow through the links, then its delivery. */
class Transfer implements Flow {
  from: number
  to: number
  bytesRemaining: number
  bytesPerMs = 0
  updatedAt = 0
  version = 0
  payload: unknown
  readonly connection: Connection
  readonly bytes: number

  constructor(from: number, to: number, bytes: number, message: unknown, connection: Connection) {
    this.from = from
    this.to = to
    this.bytes = bytes
    this.bytesRemaining = bytes
    this.payload = message
    this.connection = connection
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
    stuckDeadlines: 0, otherActions: 0,
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
  #now = 0
  #eventCount = 0
  #onlineCount = 0
  #onlinePeerMs = 0

  readonly #ids: PeerId[]
  readonly #indexById = new Map<string, number>()
  readonly #online: Uint8Array
  readonly #natClass: Uint8Array
  readonly #group: Uint16Array
  readonly #incarnation: Uint32Array
  readonly #tickAt: Float64Array
  readonly #tickVersion: Uint32Array
  readonly #joinedAt: Float64Array
  readonly #cores: (SimCore<M> | undefined)[]
  readonly #connectionsOf: (Connection[] | undefined)[]
  readonly #connectionByPair = new Map<number, Connection>()
  readonly #messageTypeCodes = new Map<unknown, number>()

  constructor(options: SimulatorOptions<M>) {
    const peerCount = options.peerCount
    if (!Number.isSafeInteger(peerCount) || peerCount < 1 || peerCount > 65_535 * 64) throw new RangeError(`peerCount out of range: ${peerCount}`)
    this.peerCount = peerCount
    this.seed = options.seed
    this.#options = options
    this.network = { ...DEFAULT_NETWORK_CONFIG, ...options.network }
    this.#rootPrng = Prng.fromSeed(options.seed)
    this.#networkPrng = this.#rootPrng.fork('network')
    this.#latencyKey = this.#rootPrng.fork('latency').nextUint32()
    this.#ids = new Array<PeerId>(peerCount)
    this.#online = new Uint8Array(peerCount)
    this.#natClass = new Uint8Array(peerCount)
    this.#group = new Uint16Array(peerCount)
    this.#incarnation = new Uint32Array(peerCount)
    this.#tickAt = new Float64Array(peerCount).fill(NO_TIME)
    this.#tickVersion = new Uint32Array(peerCount)
    this.#joinedAt = new Float64Array(peerCount)
    this.#cores = new Array(peerCount).fill(undefined)
    this.#connectionsOf = new Array(peerCount).fill(undefined)
    this.#bandwidth = new Bandwidth(peerCount, (flow, doneAt) => {
      this.#queue.push(doneAt, Kind.FlowDone, flow.from, flow.to, flow.version, flow)
    })
    this.#unlimitedBandwidth = this.network.uploadBytesPerSecond === Infinity && this.network.downloadBytesPerSecond === Infinity
    for (let index = 0; index < peerCount; index++) {
      const id = `p${index}` as PeerId
      this.#ids[index] = id
      this.#indexById.set(id, index)
      this.#natClass[index] = NAT_CLASSES.indexOf(options.natClassOf?.(index) ?? 'public')
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
  input(index: number, input: NetworkInput<M>): void {
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

  #handle(peer: number, input: NetworkInput<M>): void {
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
        if (connection === undefined || !connection.open || this.#incarnation[peer] !== (connection.a === peer ? connection.incarnationA : connection.incarnationB)) return
        this.counters.disconnects++
        this.#close(connection, peer, true)
        return
      }
      default:
        this.counters.otherActions++
        this.#options.onAction?.(peer, action, this.#now)
    }
  }

  #send(from: number, toId: PeerId, message: M): void {
    const to = this.#indexById.get(toId)
    const connection = to === undefined ? undefined : this.#connectionByPair.get(this.#pairKey(from, to))
    if (to === undefined || connection === undefined || !connection.open || this.#incarnation[from] !== (connection.a === from ? connection.incarnationA : connection.incarnationB)) {
      this.counters.messagesDroppedNoConnection++
      return
    }
    const bytes = this.#options.codec.encode(message).byteLength + this.network.frameOverheadBytes
    this.counters.messagesSent++
    this.counters.bytesSent += bytes
    const transfer = new Transfer(from, to, bytes, message, connection)
    if (this.#unlimitedBandwidth) this.#scheduleDelivery(transfer)
    else this.#bandwidth.start(this.#now, transfer)
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
    this.#queue.push(arrivalAt, Kind.Deliver, transfer.to, transfer.from, 0, transfer)
  }

  #deliver(transfer: Transfer): void {
    const { connection, to, from } = transfer
    const trace = this.#trace
    trace.word(this.#messageTypeCode(transfer.payload))
    trace.word(transfer.bytes)
    let outcome: Outcome
    if (!connection.open) outcome = Outcome.DroppedClosed
    else if (this.#incarnation[to] !== (connection.a === to ? connection.incarnationA : connection.incarnationB)) outcome = Outcome.DroppedOffline
    else if (this.#group[to] !== this.#group[from]) outcome = Outcome.DroppedPartition
    else outcome = Outcome.Delivered
    trace.word(outcome)
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
    if (this.#online[to] === 1 && this.#group[to] === this.#group[from] && this.#accepts(to)) {
      const handshakeMs = 2 * this.latencyMs(from, to) * this.network.handshakeRoundTripCount
      this.#queue.push(this.#now + handshakeMs, Kind.DialDone, from, to, incarnation, this.#incarnation[to])
    } else {
      this.#queue.push(this.#now + this.network.dialTimeoutMs, Kind.DialFailed, from, to, incarnation, undefined)
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
    const key = this.#pairKey(from, to)
    const existing = this.#connectionByPair.get(key)
    if (existing !== undefined && this.#isLive(existing)) {
      // As libp2p does, a dial to a connected peer yields the open connection.
      this.counters.dialsToConnectedPeer++
      this.#handle(from, { type: 'peer-connected', peer: this.#ids[to]!, direction: 'outbound', addresses: NO_ADDRESSES })
      return
    }
    const a = from < to ? from : to
    const b = from < to ? to : from
    const connection = new Connection(a, b, this.#incarnation[a]!, this.#incarnation[b]!, this.latencyMs(a, b))
    // A stale connection to a crashed incarnation is replaced; its near end still holds it in its list.
    this.#connectionByPair.set(key, connection)
    ;(this.#connectionsOf[a] ??= []).push(connection)
    ;(this.#connectionsOf[b] ??= []).push(connection)
    this.#handle(to, { type: 'peer-connected', peer: this.#ids[from]!, direction: 'inbound', addresses: NO_ADDRESSES })
    if (this.#online[from] === 1 && this.#incarnation[from] === fromIncarnation && connection.open) {
      this.#handle(from, { type: 'peer-connected', peer: this.#ids[to]!, direction: 'outbound', addresses: NO_ADDRESSES })
    }
  }

  /** Closes a connection from `closer`'s side; the other end hears of it one latency later. */
  #close(connection: Connection, closer: number, byProtocol: boolean): void {
    connection.open = false
    const key = this.#pairKey(connection.a, connection.b)
    if (this.#connectionByPair.get(key) === connection) this.#connectionByPair.delete(key)
    removeConnection(this.#connectionsOf[connection.a], connection)
    removeConnection(this.#connectionsOf[connection.b], connection)
    if (connection.crashedAt !== NO_TIME) {
      // Only a close decided by the surviving end's protocol counts as detecting the crash.
      if (byProtocol) this.deadPeerDetectionDelaysMs.push(this.#now - connection.crashedAt)
      return
    }
    const remote = connection.a === closer ? connection.b : connection.a
    const remoteIncarnation = connection.a === closer ? connection.incarnationB : connection.incarnationA
    this.#queue.push(this.#now + connection.latencyMs, Kind.RemoteClosed, remote, closer, remoteIncarnation, connection)
  }

  #onRemoteClosed(peer: number, closer: number, incarnation: number, connection: Connection): void {
    if (this.#online[peer] !== 1 || this.#incarnation[peer] !== incarnation) return
    // A newer connection between the two is open: this close is not news to the core.
    const current = this.#connectionByPair.get(this.#pairKey(peer, closer))
    if (current !== undefined && current !== connection && this.#isLive(current)) return
    this.#handle(peer, { type: 'peer-disconnected', peer: this.#ids[closer]! })
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
        for (const connection of connections.slice()) this.#close(connection, peer, false)
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

function removeConnection(connections: Connection[] | undefined, connection: Connection): void {
  if (connections === undefined) return
  const index = connections.indexOf(connection)
  if (index < 0) return
  connections[index] = connections[connections.length - 1]!
  connections.pop()
}
