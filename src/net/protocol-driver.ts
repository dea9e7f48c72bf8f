/**
 * ProtocolDriver: runs one sans-IO protocol core (core/) over libp2p streams, the net/
 * twin of the simulator's driver. It owns, for one protocol id:
 *   - the loop: core.handle(now, input), drain core.poll(), one timer at core.nextDeadline();
 *   - which peers the core is told are connected (registrar topology: peers that speak the
 *     protocol according to identify);
 *   - one long-lived outbound stream per peer, opened lazily on the first send, fed from a
 *     queue bounded in bytes that waits for 'drain' when the stream is full;
 *   - at most one inbound stream per peer (the one the remote opened), read frame by frame
 *     with a bounded FrameReader; a bad frame aborts that stream and is counted;
 *   - dials the core asks for, each answered by exactly one `peer-connected` or `dial-failed`.
 * Streams carry one direction each: we write on the stream we opened, read on theirs.
 *
 * Driven by node/network.ts, which constructs one driver per protocol over the host, calls
 * start()/stop(), and feeds discoveries and application commands through input().
 * Nothing that arrives from the wire throws: every failure is counted in ProtocolMetrics
 * and the offending stream (or, for stream churn, the peer) is closed. An exception out of
 * the core or the host's onAction is a bug and is not caught.
 */
import type { Connection, IdentifyResult, Libp2p, PeerId as Libp2pPeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import type { Uint8ArrayList } from 'uint8arraylist'
import { asPeerId, type Core, type Millis, type NetworkAction, type NetworkInput, type PeerId, type WireCodec } from '../core/sans-io.ts'
import { encodeFrame, FrameReader } from './frames.ts'
import type { DialFailure, DropReason, ProtocolMetrics } from './protocol-metrics.ts'

export interface ProtocolDriverLimits {
  /** Bytes of frames queued for one peer while its stream is full or opening. Default 4 × codec.frameBytesMax. */
  sendQueueBytesMax: number
  /**
   * libp2p's maxInboundStreams for the protocol, per connection: only a backstop. libp2p
   * refuses streams past it after negotiation without telling us, all of a burst at once,
   * so the driver could neither count them nor hang up the peer; it is set well above
   * inboundStreamOpensMax so that the driver's own admission (counted) acts first. Default 64.
   */
  inboundStreamsPerConnectionMax: number
  /** libp2p's maxOutboundStreams for the protocol, per connection: ours and one closing. Default 2. */
  outboundStreamsPerConnectionMax: number
  /** Inbound streams a peer may open per window; one more and the peer is hung up. Default 16. */
  inboundStreamOpensMax: number
  inboundStreamOpensWindowMs: number
  /** Dials in flight; more are answered at once with dial-failed `too-many-dials`. Default 16. */
  dialsInFlightMax: number
  /** From dial to connection. Default 10 s. */
  dialTimeoutMs: number
  /** From connection to identify saying whether the peer speaks the protocol. Default 5 s. */
  identifyTimeoutMs: number
  /** Protocol negotiation of an outbound stream. Default 5 s. */
  streamOpenTimeoutMs: number
  /** How long stop() lets streams flush and close before aborting them. Default 2 s. */
  stopTimeoutMs: number
  /** Addresses reported per peer in `peer-connected`: they travel in exchanges, whose codecs bound them. Default 8. */
  addressesCountMax: number
  /** Longest address reported. Default 256 characters. */
  addressLengthMax: number
}

export const DEFAULT_PROTOCOL_DRIVER_LIMITS: Omit<ProtocolDriverLimits, 'sendQueueBytesMax'> = {
  inboundStreamsPerConnectionMax: 64,
  outboundStreamsPerConnectionMax: 2,
  inboundStreamOpensMax: 16,
  inboundStreamOpensWindowMs: 10_000,
  dialsInFlightMax: 16,
  dialTimeoutMs: 10_000,
  identifyTimeoutMs: 5_000,
  streamOpenTimeoutMs: 5_000,
  stopTimeoutMs: 2_000,
  addressesCountMax: 8,
  addressLengthMax: 256,
}

/**
 * What the host may feed a core through input(): discoveries and the core's own
 * application inputs; the other network inputs come from the driver alone.
 */
export type DriverInput<Message, Input> = Extract<NetworkInput<Message>, { type: 'peer-discovered' }> | Exclude<Input, NetworkInput<Message>>

/** A core's Input must accept every NetworkInput; its Action is NetworkAction plus its own. */
export type DrivableCore<Message, Input, AppAction> = Core<Input, NetworkAction<Message> | AppAction> &
  (NetworkInput<Message> extends Input ? unknown : { 'core input must include NetworkInput<Message>': never })

export interface ProtocolDriverOptions<Message, Input, AppAction extends { type: string }> {
  libp2p: Libp2p
  codec: WireCodec<Message>
  core: DrivableCore<NoInfer<Message>, Input, AppAction>
  /** The driver's only clock, passed to the core as `now`. */
  now: () => Millis
  /** Actions that are not network actions (e.g. `emit`), in the order the core polled them. */
  onAction: (action: AppAction) => void
  metrics: ProtocolMetrics
  limits?: Partial<ProtocolDriverLimits>
}

/** setTimeout fires at once for delays beyond 2^31 - 1 ms; a longer wait is cut and re-armed. */
const TIMER_DELAY_MS_MAX = 2 ** 31 - 1

/** Stream-open windows are swept of ended ones when this many peers have one. */
const STREAM_OPENS_PEERS_SWEEP_COUNT = 1_024

const NETWORK_ACTION_TYPES: ReadonlySet<string> = new Set(['send', 'dial', 'disconnect'])

interface ConnectedPeer {
  /** Set once `peer-connected` has reached the core: only then does it get `peer-disconnected`. */
  delivered: boolean
}

interface Outbound {
  peer: PeerId
  /** Undefined while the stream is being negotiated. */
  stream: Stream | undefined
  frames: Array<Uint8Array | undefined>
  head: number
  queuedBytes: number
}

interface Inbound {
  stream: Stream
  reader: FrameReader
}

interface StreamOpens {
  windowStartMs: Millis
  count: number
}

interface PendingDial {
  /** The first call decides: undefined is success. */
  settle(failure: DialFailure | undefined): void
}

export class ProtocolDriver<Message, Input = NetworkInput<Message>, AppAction extends { type: string } = never> {
  readonly #libp2p: Libp2p
  readonly #codec: WireCodec<Message>
  readonly #protocol: string
  readonly #core: Core<Input, NetworkAction<Message> | AppAction>
  readonly #now: () => Millis
  readonly #onAction: (action: AppAction) => void
  readonly #metrics: ProtocolMetrics
  readonly #limits: ProtocolDriverLimits
  readonly #stopController = new AbortController()

  readonly #connected = new Map<PeerId, ConnectedPeer>()
  readonly #outbound = new Map<PeerId, Outbound>()
  readonly #inbound = new Map<PeerId, Inbound>()
  readonly #streamOpens = new Map<PeerId, StreamOpens>()
  readonly #dials = new Map<PeerId, PendingDial>()
  /** Inputs that arrived while the loop was running (from actions it executed). */
  readonly #inputs: Array<NetworkInput<Message> | Input> = []
  #running = false
  #started = false
  #stopped = false
  #topologyId: string | undefined
  #timer: NodeJS.Timeout | undefined
  #timerDeadline: Millis | undefined

  constructor(options: ProtocolDriverOptions<Message, Input, AppAction>) {
    this.#libp2p = options.libp2p
    this.#codec = options.codec
    this.#protocol = options.codec.protocol
    this.#core = options.core
    this.#now = options.now
    this.#onAction = options.onAction
    this.#metrics = options.metrics
    this.#limits = { ...DEFAULT_PROTOCOL_DRIVER_LIMITS, sendQueueBytesMax: 4 * options.codec.frameBytesMax, ...options.limits }
    if (this.#limits.sendQueueBytesMax < options.codec.frameBytesMax) throw new RangeError('sendQueueBytesMax must hold at least one frame')
  }

  get protocol(): string {
    return this.#protocol
  }

  /** Peers the core has been told are connected. */
  get connectedCount(): number {
    let count = 0
    for (const peer of this.#connected.values()) if (peer.delivered) count++
    return count
  }

  /** Inbound streams held, one per peer at most. */
  get inboundStreamCount(): number {
    return this.#inbound.size
  }

  /** Bytes queued for `peer` and not yet handed to its stream. */
  queuedBytes(peer: PeerId): number {
    return this.#outbound.get(peer)?.queuedBytes ?? 0
  }

  /** When the driver will next tick the core, if it will. */
  get timerDeadline(): Millis | undefined {
    return this.#timer === undefined ? undefined : this.#timerDeadline
  }

  async start(): Promise<void> {
    if (this.#started) throw new Error('ProtocolDriver.start() called twice')
    this.#started = true
    await this.#libp2p.handle(this.#protocol, (stream, connection) => this.#onInboundStream(stream, connection), {
      maxInboundStreams: this.#limits.inboundStreamsPerConnectionMax,
      maxOutboundStreams: this.#limits.outboundStreamsPerConnectionMax,
    })
    this.#topologyId = await this.#libp2p.register(this.#protocol, {
      onConnect: (peerId, connection) => this.#onPeerConnected(peerId, connection),
      onDisconnect: (peerId) => this.#onPeerGone(asPeerId(peerId.toString())),
    })
    this.#libp2p.addEventListener('peer:identify', this.#onIdentify)
    // The registrar tells only of disconnects of peers whose record it can still read.
    this.#libp2p.addEventListener('peer:disconnect', this.#onPeerDisconnect)
    // The registrar reports identifies from now on; peers connected earlier are found here.
    await Promise.all(this.#libp2p.getConnections().map(async (connection) => {
      try {
        const record = await this.#libp2p.peerStore.get(connection.remotePeer)
        if (record.protocols.includes(this.#protocol)) this.#onPeerConnected(connection.remotePeer, connection)
      } catch {
        // Not identified yet: the topology will report it.
      }
    }))
    this.#schedule()
  }

  /**
   * Stops ticking and serving: no input reaches the core afterwards. Queued frames are
   * handed to their streams and every stream is closed, gracefully within stopTimeoutMs,
   * then aborted.
   */
  async stop(): Promise<void> {
    if (!this.#started || this.#stopped) return
    this.#stopped = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#stopController.abort()
    for (const dial of this.#dials.values()) dial.settle('stopped')
    this.#libp2p.removeEventListener('peer:identify', this.#onIdentify)
    this.#libp2p.removeEventListener('peer:disconnect', this.#onPeerDisconnect)
    if (this.#topologyId !== undefined) this.#libp2p.unregister(this.#topologyId)
    const signal = AbortSignal.timeout(this.#limits.stopTimeoutMs)
    const closing: Array<Promise<void>> = []
    for (const outbound of this.#outbound.values()) {
      if (outbound.stream === undefined) continue
      // Frames the core already sent are in flight: they go, with no regard for drain.
      this.#flush(outbound, true)
      closing.push(closeStream(outbound.stream, signal))
    }
    for (const inbound of this.#inbound.values()) closing.push(closeStream(inbound.stream, signal))
    await Promise.all([
      ...closing,
      this.#libp2p.unhandle(this.#protocol).catch(() => {
        // libp2p already stopped: nothing is served either way.
      }),
    ])
    this.#outbound.clear()
    this.#inbound.clear()
    this.#connected.clear()
    this.#streamOpens.clear()
  }

  /** Feeds the core a discovery or an application input, then runs its actions. */
  input(input: DriverInput<Message, Input>): void {
    if (!this.#started) throw new Error('ProtocolDriver.input() before start()')
    this.#deliver(input)
  }

  #deliver(input: NetworkInput<Message> | Input): void {
    if (this.#stopped) return
    this.#inputs.push(input)
    // An action can produce an input at once (a dial refused on the spot): it waits its
    // turn so that the core never sees handle() inside its own poll() loop.
    if (this.#running) return
    this.#running = true
    try {
      for (let next = this.#inputs.shift(); next !== undefined; next = this.#inputs.shift()) {
        // DrivableCore checked that Input includes every NetworkInput.
        this.#core.handle(this.#now(), next as Input)
        for (let action = this.#core.poll(); action !== undefined; action = this.#core.poll()) this.#execute(action)
      }
    } finally {
      this.#running = false
    }
    this.#schedule()
  }

  #execute(action: NetworkAction<Message> | AppAction): void {
    if (!isNetworkAction<Message>(action)) {
      this.#onAction(action as AppAction)
      return
    }
    switch (action.type) {
      case 'send': this.#send(action.to, action.message); break
      case 'dial': this.#dial(action.peer, action.addresses); break
      case 'disconnect': this.#disconnect(action.peer, action.reason); break
    }
  }

  #schedule(): void {
    if (this.#stopped) return
    const deadline = this.#core.nextDeadline()
    // Most messages leave the deadline where it was: keep the timer rather than re-arm it.
    if (this.#timer !== undefined && deadline === this.#timerDeadline) return
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#timerDeadline = deadline
    if (deadline === undefined) return
    const delayMs = Math.min(Math.max(0, deadline - this.#now()), TIMER_DELAY_MS_MAX)
    this.#timer = setTimeout(this.#onTimer, delayMs)
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined
    this.#deliver({ type: 'tick' })
  }

  // --- peers -------------------------------------------------------------------------

  #onPeerConnected(peerId: Libp2pPeerId, connection: Connection): void {
    if (this.#stopped) return
    const peer = asPeerId(peerId.toString())
    const known = this.#connected.get(peer)
    if (known !== undefined) {
      // A dial to a peer the core already has: its answer is the peer-connected it got.
      if (known.delivered) this.#dials.get(peer)?.settle(undefined)
      return
    }
    const entry: ConnectedPeer = { delivered: false }
    this.#connected.set(peer, entry)
    void this.#addressesOf(peerId).then((addresses) => {
      // The peer may have gone (or come back as a new entry) while its record was read.
      if (this.#connected.get(peer) !== entry || this.#stopped) return
      entry.delivered = true
      this.#deliver({ type: 'peer-connected', peer, direction: connection.direction, addresses })
      // Only now is a dial answered: had the peer left first, it would fail instead.
      this.#dials.get(peer)?.settle(undefined)
    })
  }

  async #addressesOf(peerId: Libp2pPeerId): Promise<string[]> {
    try {
      const record = await this.#libp2p.peerStore.get(peerId)
      return record.addresses
        .map((address) => address.multiaddr.toString())
        .filter((address) => address.length <= this.#limits.addressLengthMax)
        .slice(0, this.#limits.addressesCountMax)
    } catch {
      return []
    }
  }

  #onPeerGone(peer: PeerId): void {
    const entry = this.#connected.get(peer)
    if (entry === undefined) return
    this.#connected.delete(peer)
    if (entry.delivered) this.#deliver({ type: 'peer-disconnected', peer })
    else this.#dials.get(peer)?.settle('unreachable')
  }

  readonly #onPeerDisconnect = (event: CustomEvent<Libp2pPeerId>): void => {
    const peer = asPeerId(event.detail.toString())
    // Streams close with their connection and their listeners clean up; this is for a
    // stream whose close came before we listened.
    const outbound = this.#outbound.get(peer)
    if (outbound !== undefined && outbound.stream !== undefined) this.#discard(outbound, 'stream-closed')
    this.#inbound.delete(peer)
    this.#dials.get(peer)?.settle('unreachable')
    this.#onPeerGone(peer)
  }

  readonly #onIdentify = (event: CustomEvent<IdentifyResult>): void => {
    const dial = this.#dials.get(asPeerId(event.detail.peerId.toString()))
    // A peer that speaks the protocol is reported by the topology, which settles the dial.
    if (dial !== undefined && !event.detail.protocols.includes(this.#protocol)) dial.settle('protocol-unsupported')
  }

  // --- dial and disconnect -----------------------------------------------------------

  #dial(peer: PeerId, addresses: readonly string[]): void {
    // One answer serves both asks: the pending dial will report.
    if (this.#dials.has(peer)) return
    if (this.#dials.size >= this.#limits.dialsInFlightMax) return this.#dialFailed(peer, 'too-many-dials')
    let peerId: Libp2pPeerId
    try {
      peerId = peerIdFromString(peer)
    } catch {
      return this.#dialFailed(peer, 'bad-peer-id')
    }
    if (peerId.equals(this.#libp2p.peerId)) return this.#dialFailed(peer, 'self')
    const multiaddrs: Multiaddr[] = []
    for (const address of addresses) {
      try {
        multiaddrs.push(multiaddr(address))
      } catch {
        // Addresses come from other peers: a bad one is skipped, the others may work.
      }
    }
    const outcome = Promise.withResolvers<DialFailure | undefined>()
    const settle = (failure: DialFailure | undefined): void => outcome.resolve(failure)
    this.#dials.set(peer, { settle })
    void this.#runDial(peer, peerId, multiaddrs, outcome.promise, settle)
  }

  async #runDial(peer: PeerId, peerId: Libp2pPeerId, multiaddrs: Multiaddr[], outcome: Promise<DialFailure | undefined>, settle: (failure: DialFailure | undefined) => void): Promise<void> {
    const signal = AbortSignal.any([AbortSignal.timeout(this.#limits.dialTimeoutMs), this.#stopController.signal])
    let identifyTimer: NodeJS.Timeout | undefined
    let failure: DialFailure | undefined
    try {
      if (multiaddrs.length > 0) await this.#libp2p.peerStore.merge(peerId, { multiaddrs }, { signal })
      await this.#libp2p.dial(peerId, { signal })
      // Already reported by the topology (an existing connection, or identify was quick).
      if (this.#connected.get(peer)?.delivered === true) settle(undefined)
      identifyTimer = setTimeout(() => settle('identify-timeout'), this.#limits.identifyTimeoutMs)
      failure = await outcome
      if (failure === 'identify-timeout' && await this.#knownNotToSpeak(peerId)) failure = 'protocol-unsupported'
    } catch (error) {
      failure = this.#stopped ? 'stopped' : dialFailureOf(error, signal)
    } finally {
      if (identifyTimer !== undefined) clearTimeout(identifyTimer)
      this.#dials.delete(peer)
    }
    if (failure === undefined) return
    // The peer may have become connected by its own dial meanwhile: the core has its answer.
    if (failure !== 'stopped' && this.#connected.has(peer)) return
    this.#dialFailed(peer, failure)
  }

  /** True when identify ran on an earlier connection and did not list the protocol. */
  async #knownNotToSpeak(peerId: Libp2pPeerId): Promise<boolean> {
    try {
      const record = await this.#libp2p.peerStore.get(peerId)
      return record.protocols.length > 0 && !record.protocols.includes(this.#protocol)
    } catch {
      return false
    }
  }

  #dialFailed(peer: PeerId, reason: DialFailure): void {
    this.#metrics.dialFailed(this.#protocol, reason)
    this.#deliver({ type: 'dial-failed', peer, reason })
  }

  #disconnect(peer: PeerId, reason: string): void {
    let peerId: Libp2pPeerId
    try {
      peerId = peerIdFromString(peer)
    } catch {
      return
    }
    this.#metrics.disconnected(this.#protocol, reason)
    // A failed hang-up leaves a connection the connection manager prunes in time.
    this.#libp2p.hangUp(peerId).catch(() => {})
  }

  // --- sending -------------------------------------------------------------------------

  #send(peer: PeerId, message: Message): void {
    if (this.#stopped) return this.#metrics.dropped(this.#protocol, 'stopped')
    const body = this.#codec.encode(message)
    if (body.byteLength > this.#codec.frameBytesMax) return this.#metrics.dropped(this.#protocol, 'frame-too-large')
    let outbound = this.#outbound.get(peer)
    if (outbound === undefined) {
      const connection = this.#connectionTo(peer)
      // Sends never dial: a peer without a connection is the core's to dial.
      if (connection === undefined) return this.#metrics.dropped(this.#protocol, 'not-connected')
      outbound = { peer, stream: undefined, frames: [], head: 0, queuedBytes: 0 }
      this.#outbound.set(peer, outbound)
      void this.#openStream(outbound, connection)
    }
    const frame = encodeFrame(body)
    if (outbound.queuedBytes + frame.byteLength > this.#limits.sendQueueBytesMax) return this.#metrics.dropped(this.#protocol, 'send-queue-full')
    outbound.frames.push(frame)
    outbound.queuedBytes += frame.byteLength
    this.#flush(outbound, false)
  }

  #connectionTo(peer: PeerId): Connection | undefined {
    let peerId: Libp2pPeerId
    try {
      peerId = peerIdFromString(peer)
    } catch {
      return undefined
    }
    return this.#libp2p.getConnections(peerId).find((connection) => connection.status === 'open' && connection.limits === undefined)
  }

  async #openStream(outbound: Outbound, connection: Connection): Promise<void> {
    let stream: Stream
    try {
      stream = await connection.newStream(this.#protocol, {
        signal: AbortSignal.any([AbortSignal.timeout(this.#limits.streamOpenTimeoutMs), this.#stopController.signal]),
      })
    } catch {
      this.#discard(outbound, this.#stopped ? 'stopped' : 'stream-open-failed')
      return
    }
    if (this.#stopped || this.#outbound.get(outbound.peer) !== outbound) {
      stream.abort(new Error('protocol driver stopped'))
      this.#discard(outbound, 'stopped')
      return
    }
    // Closed during negotiation: its 'close' event has passed and would never reach us.
    if (stream.status !== 'open') {
      this.#discard(outbound, 'stream-open-failed')
      return
    }
    outbound.stream = stream
    this.#metrics.streamOpened(this.#protocol, 'outbound')
    stream.addEventListener('drain', () => this.#flush(outbound, false))
    stream.addEventListener('message', () => {
      this.#metrics.rejected(this.#protocol, 'unexpected-data')
      stream.abort(new Error('data on a write-only stream'))
    })
    // The remote closed its end: it is going away. New frames go to a new stream.
    stream.addEventListener('remoteCloseWrite', () => {
      if (this.#outbound.get(outbound.peer) === outbound) this.#outbound.delete(outbound.peer)
      this.#flush(outbound, true)
      void closeStream(stream, AbortSignal.timeout(this.#limits.stopTimeoutMs))
    })
    stream.addEventListener('close', () => {
      this.#metrics.streamClosed(this.#protocol, 'outbound')
      this.#discard(outbound, 'stream-closed')
    })
    this.#flush(outbound, false)
  }

  /**
   * Hands queued frames to the stream until it asks for a drain (or, when `force`, all of
   * them: at stop, what is queued is bounded and the stream's own buffer takes it).
   */
  #flush(outbound: Outbound, force: boolean): void {
    const stream = outbound.stream
    if (stream === undefined) return
    while (outbound.head < outbound.frames.length) {
      if (stream.writeStatus !== 'writable') {
        // Its 'close' listener discards the queue, unless the close came first.
        if (stream.status !== 'open') this.#discard(outbound, 'stream-closed')
        return
      }
      if (stream.writableNeedsDrain && !force) return
      const frame = outbound.frames[outbound.head]!
      outbound.frames[outbound.head] = undefined
      outbound.head++
      outbound.queuedBytes -= frame.byteLength
      try {
        stream.send(frame)
      } catch {
        // The stream failed under us; its 'close' listener discards the rest.
        this.#metrics.dropped(this.#protocol, 'stream-closed')
        return
      }
      this.#metrics.frameSent(this.#protocol, frame.byteLength)
    }
    outbound.frames = []
    outbound.head = 0
  }

  #discard(outbound: Outbound, reason: DropReason): void {
    if (this.#outbound.get(outbound.peer) === outbound) this.#outbound.delete(outbound.peer)
    for (let index = outbound.head; index < outbound.frames.length; index++) this.#metrics.dropped(this.#protocol, reason)
    outbound.frames = []
    outbound.head = 0
    outbound.queuedBytes = 0
  }

  // --- receiving -----------------------------------------------------------------------

  #onInboundStream(stream: Stream, connection: Connection): void {
    if (this.#stopped) {
      stream.abort(new Error('protocol driver stopped'))
      return
    }
    // A stream that closed (with its connection, often) while libp2p negotiated it: its
    // 'close' event has passed, so it is not ours to track.
    if (stream.status !== 'open' || connection.status !== 'open') {
      stream.abort(new Error('connection closing'))
      return
    }
    const peer = asPeerId(connection.remotePeer.toString())
    if (!this.#admitStreamOpen(peer, connection.remotePeer)) {
      this.#metrics.rejected(this.#protocol, 'stream-churn')
      stream.abort(new Error('too many streams'))
      return
    }
    const previous = this.#inbound.get(peer)
    if (previous !== undefined) {
      // The newer stream wins: a peer that lost its end of the old one opens a new one.
      this.#inbound.delete(peer)
      this.#metrics.rejected(this.#protocol, 'stream-replaced')
      previous.stream.abort(new Error('replaced by a newer stream'))
    }
    const inbound: Inbound = { stream, reader: new FrameReader(this.#codec.frameBytesMax) }
    this.#inbound.set(peer, inbound)
    this.#metrics.streamOpened(this.#protocol, 'inbound')
    stream.addEventListener('message', (event) => this.#onInboundData(peer, inbound, event.data))
    // The remote finished writing: close our unused half so the stream is released.
    stream.addEventListener('remoteCloseWrite', () => {
      void closeStream(stream, AbortSignal.timeout(this.#limits.stopTimeoutMs))
    })
    stream.addEventListener('close', () => {
      this.#metrics.streamClosed(this.#protocol, 'inbound')
      if (this.#inbound.get(peer) === inbound) this.#inbound.delete(peer)
    })
  }

  /**
   * Counts a peer's stream opens in a window; past the bound the peer is hung up, once a
   * window. The count outlives the connection so that reconnecting does not reset it.
   */
  #admitStreamOpen(peer: PeerId, peerId: Libp2pPeerId): boolean {
    const now = this.#now()
    if (this.#streamOpens.size >= STREAM_OPENS_PEERS_SWEEP_COUNT) this.#sweepStreamOpens(now)
    let opens = this.#streamOpens.get(peer)
    if (opens === undefined || now - opens.windowStartMs >= this.#limits.inboundStreamOpensWindowMs) {
      opens = { windowStartMs: now, count: 0 }
      this.#streamOpens.set(peer, opens)
    }
    opens.count++
    if (opens.count <= this.#limits.inboundStreamOpensMax) return true
    if (opens.count === this.#limits.inboundStreamOpensMax + 1) {
      this.#metrics.disconnected(this.#protocol, 'stream-churn')
      this.#libp2p.hangUp(peerId).catch(() => {})
    }
    return false
  }

  /** Forgets windows that have ended: the map holds peers seen within one window. */
  #sweepStreamOpens(now: Millis): void {
    for (const [peer, opens] of this.#streamOpens) {
      if (now - opens.windowStartMs >= this.#limits.inboundStreamOpensWindowMs) this.#streamOpens.delete(peer)
    }
  }

  #onInboundData(peer: PeerId, inbound: Inbound, chunk: Uint8Array | Uint8ArrayList): void {
    // Late data on a stream already replaced, rejected or stopped is not read.
    if (this.#stopped || this.#inbound.get(peer) !== inbound) return
    inbound.reader.push(chunk)
    for (;;) {
      const read = inbound.reader.read()
      if (!read.ok) return this.#reject(peer, inbound, read.error.code)
      if (read.frame === undefined) return
      let decoded
      try {
        decoded = this.#codec.decode(read.frame)
      } catch {
        // A codec must return errors; one that throws is refused like bad input rather
        // than let a remote crash the node with it.
        decoded = { ok: false as const, error: { code: 'decoder-threw' } }
      }
      if (!decoded.ok) return this.#reject(peer, inbound, decoded.error.code)
      this.#metrics.frameReceived(this.#protocol, read.frame.byteLength)
      this.#deliver({ type: 'message', from: peer, message: decoded.value })
      if (this.#stopped || this.#inbound.get(peer) !== inbound) return
    }
  }

  #reject(peer: PeerId, inbound: Inbound, reason: string): void {
    this.#metrics.rejected(this.#protocol, reason)
    if (this.#inbound.get(peer) === inbound) this.#inbound.delete(peer)
    inbound.stream.abort(new Error(`rejected: ${reason}`))
  }
}

function isNetworkAction<Message>(action: { type: string }): action is NetworkAction<Message> {
  return NETWORK_ACTION_TYPES.has(action.type)
}

function dialFailureOf(error: unknown, signal: AbortSignal): DialFailure {
  if (signal.aborted) return 'timeout'
  if ((error as Error | undefined)?.name === 'NoValidAddressesError') return 'no-addresses'
  return 'unreachable'
}

/** Closes a stream after what it holds is written, and aborts it if that takes past `signal`. */
async function closeStream(stream: Stream, signal: AbortSignal): Promise<void> {
  try {
    await stream.close({ signal })
  } catch {
    stream.abort(new Error('close timed out'))
    return
  }
  if (stream.status !== 'open' && stream.status !== 'closing') return
  // Our half is closed; wait (bounded) for the remote to close its half.
  await new Promise<void>((resolve) => {
    const onAbort = (): void => stream.abort(new Error('close timed out'))
    stream.addEventListener('close', () => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, { once: true })
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
  })
}
