/**
 * ProtocolDriver: runs one sans-IO protocol core (core/) over libp2p streams, the net/
 * twin of the simulator's driver. It owns, for one protocol, spoken under the codec's id and
 * any older fallback ids (newest first, all with the same codec):
 *   - the loop: core.handle(now, input), drain core.poll(), one timer at core.nextDeadline();
 *   - which peers the core is told are connected (a registrar topology per id: peers that
 *     speak any of the ids according to identify), and, when there are fallback ids, which
 *     id each speaks: the newest it lists;
 *   - dials the core asks for, each answered by exactly one `peer-connected` or `dial-failed`;
 *   - whether the protocol is served (every id handled), switchable at runtime with setServing().
 * Streams come in one of two styles, chosen per driver:
 *   - 'messages' (membership): one long-lived outbound stream per peer, opened lazily on the
 *     first send, fed from a queue bounded in bytes that waits for 'drain' when the stream is
 *     full; at most one inbound stream per peer (the one the remote opened), read frame by
 *     frame with a bounded FrameReader; a bad frame aborts that stream and is counted.
 *     Streams carry one direction each: we write on the stream we opened, read on theirs.
 *     An outbound stream offers every id, newest first; the remote takes the first it speaks.
 *   - 'requests' (the DHT): a stream per request, its response on the same stream; see
 *     RequestStreams (request-streams.ts), which this driver runs.
 *
 * Driven by node/network.ts, which constructs one driver per protocol over the host, calls
 * start()/stop(), and feeds discoveries and application commands through input().
 * Nothing that arrives from the wire throws: every failure is counted in ProtocolMetrics
 * and the offending stream (or, for stream churn, the peer) is closed. An exception out of
 * the core or the host's onAction is a bug and is not caught. Metrics are labelled with the
 * codec's own id whichever id a peer speaks.
 */
import type { Connection, IdentifyResult, Libp2p, PeerId as Libp2pPeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { anySignal } from 'any-signal'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import type { Uint8ArrayList } from 'uint8arraylist'
import { asPeerId, type Core, type Millis, type NetworkAction, type NetworkInput, type PeerId, type RequestAction, type RequestInput, type WireCodec } from '../core/sans-io.ts'
import { encodeFrameOfParts, FrameReader } from './frames.ts'
import type { DialFailure, DropReason, ProtocolMetrics } from './protocol-metrics.ts'
import { RequestStreams } from './request-streams.ts'
import { closeStream, decodeFrame, protocolIdsOf } from './streams.ts'

export interface ProtocolDriverLimits {
  /** Bytes of frames queued for one peer while its stream is full or opening. Default 4 × codec.frameBytesMax. */
  sendQueueBytesMax: number
  /**
   * libp2p's maxInboundStreams for the protocol, per connection: only a backstop. libp2p
   * refuses streams past it after negotiation without telling us, all of a burst at once,
   * so the driver could neither count them nor hang up the peer; it is set well above
   * inboundStreamOpensMax (inboundRequestStreamsPerPeerMax) so that the driver's own
   * admission (counted) acts first. libp2p counts streams per id, so with fallback ids the
   * bound holds for each. Default 64.
   */
  inboundStreamsPerConnectionMax: number
  /**
   * libp2p's maxOutboundStreams for the protocol, per connection. Messages: ours and one
   * closing, default 2. Requests: default requestsInFlightMax, which bounds them all anyway.
   */
  outboundStreamsPerConnectionMax: number
  /** Messages: inbound streams a peer may open per window; one more and the peer is hung up. Default 16. */
  inboundStreamOpensMax: number
  inboundStreamOpensWindowMs: number
  /** Dials in flight, the core's and those for requests; more fail at once with `too-many-dials`. Default 16. */
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
  /**
   * Requests: how long an outbound request (dial, stream, response) and its stream may take
   * from the `request` action, and how long an inbound stream may sit idle. The core times its
   * requests out itself, sooner; this is the backstop. Default 30 s.
   */
  requestTimeoutMs: number
  /** Requests: outbound requests held, in flight or with their stream closing; more fail with `too-many-requests`. Default 64. */
  requestsInFlightMax: number
  /** Requests: a peer's inbound streams still open for requests; one more is reset. Default 32. */
  inboundRequestStreamsPerPeerMax: number
  /** Requests: a peer's inbound requests per second, sustained; one past the bucket resets its stream. Default 20. */
  inboundRequestsPerSecondMax: number
  /** Requests: a peer's inbound requests at once after a quiet spell; as many refused in a row hang it up. Default 100. */
  inboundRequestsBurstMax: number
  /** Requests: requests held for an answer per inbound stream; past it the oldest is forgotten. Default 8. */
  unansweredRequestsPerStreamMax: number
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
  requestTimeoutMs: 30_000,
  requestsInFlightMax: 64,
  inboundRequestStreamsPerPeerMax: 32,
  inboundRequestsPerSecondMax: 20,
  inboundRequestsBurstMax: 100,
  unansweredRequestsPerStreamMax: 8,
}

/**
 * How a driver carries a protocol's messages. 'messages': long-lived streams, one each way
 * per peer, for `send` and `message`. 'requests': a stream per request, its response on the
 * same stream, for `request`, `respond` and the RequestInput events.
 */
export type DriverStyle = 'messages' | 'requests'

/** The inputs a driver of `Style` gives its core; a core's Input must include them all. */
export type StyleInput<Message, Style extends DriverStyle> = Style extends 'requests'
  ? Exclude<NetworkInput<Message>, { type: 'message' }> | RequestInput<Message>
  : NetworkInput<Message>

/** The actions a driver of `Style` carries out; a core's other actions go to onAction. */
export type StyleAction<Message, Style extends DriverStyle> = Style extends 'requests'
  ? Exclude<NetworkAction<Message>, { type: 'send' }> | RequestAction<Message>
  : NetworkAction<Message>

/**
 * What the host may feed a core through input(): discoveries and the core's own
 * application inputs; the other network inputs come from the driver alone.
 */
export type DriverInput<Message, Input> =
  | Extract<NetworkInput<Message>, { type: 'peer-discovered' }>
  | Exclude<Input, NetworkInput<Message> | RequestInput<Message>>

/**
 * A core the driver can run in `Style`: its Input accepts every input of the style, and its
 * actions named like the style's are the style's (any other action goes to onAction).
 */
export type DrivableCore<Message, Input, Action extends { type: string }, Style extends DriverStyle = 'messages'> = Core<Input, Action> &
  (StyleInput<Message, Style> extends Input ? unknown : { 'core input must include the inputs of the driver style (StyleInput)': never }) &
  (Extract<Action, { type: StyleAction<Message, Style>['type'] }> extends StyleAction<Message, Style> ? unknown : { 'core actions named like the driver style\'s must be StyleAction': never })

/** A core's actions that the driver does not carry out but hands to onAction, e.g. `emit`. */
export type HostAction<Message, Action, Style extends DriverStyle = 'messages'> = Exclude<Action, StyleAction<Message, Style>>

export interface ProtocolDriverOptions<Message, Input, Action extends { type: string }, Style extends DriverStyle = 'messages'> {
  libp2p: Libp2p
  codec: WireCodec<Message>
  core: DrivableCore<NoInfer<Message>, Input, Action, NoInfer<Style>>
  /** Default 'messages'. */
  style?: Style
  /** Whether start() handles the protocol, answering remotes' streams; see setServing(). Default true. */
  serve?: boolean
  /** The driver's only clock, passed to the core as `now`. */
  now: () => Millis
  /** Actions that are not network actions (e.g. `emit`), in the order the core polled them. */
  onAction: (action: HostAction<NoInfer<Message>, Action, Style>) => void
  /** Messages: every frame queued for `peer` has been handed to its stream (see queuedBytes); a sender that paces itself waits for this. */
  onSendQueueDrained?: (peer: PeerId) => void
  metrics: ProtocolMetrics
  limits?: Partial<ProtocolDriverLimits>
}

/** setTimeout fires at once for delays beyond 2^31 - 1 ms; a longer wait is cut and re-armed. */
const TIMER_DELAY_MS_MAX = 2 ** 31 - 1
/**
 * A core whose deadline is still due right after a tick is ticked again no sooner than
 * this: a core that leaves a deadline in the past must not spin the event loop.
 */
const STUCK_DEADLINE_RETRY_MS = 1_000

/** Stream-open windows are swept of ended ones when this many peers have one. */
const STREAM_OPENS_PEERS_SWEEP_COUNT = 1_024

const NETWORK_ACTION_TYPES: Readonly<Record<DriverStyle, ReadonlySet<string>>> = {
  messages: new Set(['send', 'dial', 'disconnect']),
  requests: new Set(['request', 'respond', 'dial', 'disconnect']),
}

interface ConnectedPeer {
  /** Set once `peer-connected` has reached the core: only then does it get `peer-disconnected`. */
  delivered: boolean
  /** As reported in `peer-connected`; empty until then. */
  addresses: readonly string[]
  /** The id the peer speaks as found for `peer-connected` (reported only with fallback ids); undefined until then. */
  protocol: string | undefined
}

interface Outbound {
  peer: PeerId
  /** Through a relay: the stream moves to a direct connection once identify has run on one. */
  relayed: boolean
  /** Undefined while the stream is being negotiated. */
  stream: Stream | undefined
  frames: Array<Uint8Array | Uint8ArrayList | undefined>
  head: number
  queuedBytes: number
}

interface Inbound {
  relayed: boolean
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

/** Every input a driver of either style may give its core, as the loop handles them. */
type AnyInput<Message, Input> = NetworkInput<Message> | RequestInput<Message> | Input

/**
 * `Action` is the core's whole action type; the style's actions are carried out here and the
 * rest (HostAction) handed to onAction.
 */
export class ProtocolDriver<Message, Input = NetworkInput<Message>, Action extends { type: string } = NetworkAction<Message>, Style extends DriverStyle = 'messages'> {
  readonly #libp2p: Libp2p
  readonly #codec: WireCodec<Message>
  /** The codec's own id: metrics are labelled with it. */
  readonly #protocol: string
  /** Every id the protocol is spoken under, newest first: #protocol, then the codec's fallbacks. */
  readonly #protocols: readonly string[]
  readonly #core: Core<Input, { type: string }>
  readonly #now: () => Millis
  readonly #onAction: (action: HostAction<Message, Action, Style>) => void
  readonly #onSendQueueDrained: ((peer: PeerId) => void) | undefined
  readonly #metrics: ProtocolMetrics
  readonly #limits: ProtocolDriverLimits
  readonly #style: DriverStyle
  readonly #stopController = new AbortController()
  /** Set for the 'requests' style only. */
  readonly #requests: RequestStreams<Message> | undefined

  readonly #connected = new Map<PeerId, ConnectedPeer>()
  readonly #outbound = new Map<PeerId, Outbound>()
  readonly #inbound = new Map<PeerId, Inbound>()
  /** Connections identify has run on: proven to carry streams. */
  readonly #identified = new WeakSet<Connection>()
  /** Request style: identified peers that do not speak the protocol (clients), as identify gave their addresses; until they disconnect. */
  readonly #clientAddresses = new Map<PeerId, readonly string[]>()
  /** Clients whose requests reached the core: it hears when they disconnect. */
  readonly #clientsReported = new Set<PeerId>()
  readonly #streamOpens = new Map<PeerId, StreamOpens>()
  readonly #dials = new Map<PeerId, PendingDial>()
  /** Dials for requests, each shared by the requests waiting on its peer. */
  readonly #requestDials = new Map<PeerId, Promise<Connection | DialFailure>>()
  /** Inputs that arrived while the loop was running (from actions it executed). */
  readonly #inputs: Array<AnyInput<Message, Input>> = []
  #running = false
  #started = false
  #stopped = false
  /** What setServing() asked for last; #handled is what libp2p has. */
  #serving: boolean
  #handled = false
  /** setServing() calls, applied one after the other. */
  #servingChange: Promise<void> = Promise.resolve()
  /** One topology per id: the registrar takes one id per topology. */
  readonly #topologyIds: string[] = []
  #timer: NodeJS.Timeout | undefined
  #timerDeadline: Millis | undefined
  /** Set while a tick is being delivered: see STUCK_DEADLINE_RETRY_MS. */
  #ticking = false

  constructor(options: ProtocolDriverOptions<Message, Input, Action, Style>) {
    this.#libp2p = options.libp2p
    this.#codec = options.codec
    this.#protocol = options.codec.protocol
    this.#protocols = protocolIdsOf(options.codec)
    if (new Set(this.#protocols).size !== this.#protocols.length) throw new RangeError('a codec\'s protocol ids must be distinct')
    this.#core = options.core
    this.#now = options.now
    this.#onAction = options.onAction
    this.#onSendQueueDrained = options.onSendQueueDrained
    this.#metrics = options.metrics
    this.#style = options.style ?? 'messages'
    this.#serving = options.serve ?? true
    const requestDefaults = this.#style === 'requests'
      ? { outboundStreamsPerConnectionMax: options.limits?.requestsInFlightMax ?? DEFAULT_PROTOCOL_DRIVER_LIMITS.requestsInFlightMax }
      : {}
    this.#limits = { ...DEFAULT_PROTOCOL_DRIVER_LIMITS, sendQueueBytesMax: 4 * options.codec.frameBytesMax, ...requestDefaults, ...options.limits }
    if (this.#limits.sendQueueBytesMax < options.codec.frameBytesMax) throw new RangeError('sendQueueBytesMax must hold at least one frame')
    this.#requests = this.#style === 'requests'
      ? new RequestStreams({
        codec: this.#codec,
        metrics: this.#metrics,
        limits: this.#limits,
        now: this.#now,
        stopSignal: this.#stopController.signal,
        deliver: (input) => this.#deliver(input),
        connect: (peer, addresses) => this.#connect(peer, addresses),
        requester: (peer) => this.#requester(peer),
        disconnect: (peer, reason) => this.#disconnect(peer, reason),
      })
      : undefined
  }

  /** The codec's own id, the newest. */
  get protocol(): string {
    return this.#protocol
  }

  /** Every id the protocol is served and negotiated under, newest first. */
  get protocols(): readonly string[] {
    return this.#protocols
  }

  /** Peers the core has been told are connected. */
  get connectedCount(): number {
    let count = 0
    for (const peer of this.#connected.values()) if (peer.delivered) count++
    return count
  }

  /** Inbound streams held: messages, one per peer at most; requests, those open for requests. */
  get inboundStreamCount(): number {
    return this.#inbound.size + (this.#requests?.inboundStreamCount ?? 0)
  }

  /** Requests: outbound requests held, in flight or with their stream still closing. */
  get outboundRequestCount(): number {
    return this.#requests?.outboundCount ?? 0
  }

  /** Whether the protocol is served, as setServing() last asked. */
  get serving(): boolean {
    return this.#serving
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
    await this.#changeServing()
    // A peer that speaks several ids is reported by each topology; #connected keeps one entry.
    for (const protocol of this.#protocols) {
      this.#topologyIds.push(await this.#libp2p.register(protocol, {
        onConnect: (peerId, connection) => this.#onPeerConnected(peerId, connection, protocol),
        onDisconnect: (peerId) => this.#onProtocolGone(peerId, protocol),
        // A peer behind NATs on both sides may only ever be reached through a relay.
        notifyOnLimitedConnection: true,
      }))
    }
    this.#libp2p.addEventListener('peer:identify', this.#onIdentify)
    // The registrar tells only of disconnects of peers whose record it can still read.
    this.#libp2p.addEventListener('peer:disconnect', this.#onPeerDisconnect)
    // The registrar reports identifies from now on; peers connected earlier are found here.
    await Promise.all(this.#libp2p.getConnections().map(async (connection) => {
      try {
        const record = await this.#libp2p.peerStore.get(connection.remotePeer)
        const protocol = this.#newestSpoken(record.protocols)
        if (protocol !== undefined) this.#onPeerConnected(connection.remotePeer, connection, protocol)
      } catch {
        // Not identified yet: the topology will report it.
      }
    }))
    this.#schedule()
  }

  /**
   * Serves the protocol (every id) or stops serving it, at once or after start(). Unhandled,
   * libp2p refuses remotes' streams for the protocol and identify no longer lists it
   * (identify-push tells connected peers), so peers stop counting us among those that speak
   * it: for the DHT, a client. Streams remotes opened are closed. Our own sends and requests, dials and the
   * topology go on either way.
   */
  async setServing(serving: boolean): Promise<void> {
    this.#serving = serving
    // Before start(), start() applies it.
    if (this.#started) await this.#changeServing()
  }

  /** Brings libp2p to what #serving says, after the changes already under way. */
  async #changeServing(): Promise<void> {
    const change = this.#servingChange.then(() => this.#applyServing())
    this.#servingChange = change.catch(() => {
      // The caller that asked for it gets the error; later changes still run.
    })
    await change
  }

  async #applyServing(): Promise<void> {
    if (this.#stopped || this.#serving === this.#handled) return
    if (this.#serving) {
      // Set first: a stream may arrive while libp2p records the protocol in our peer record.
      this.#handled = true
      // One id at a time: if one fails (another handler has it, say), only those we took are let go.
      const handled: string[] = []
      try {
        for (const protocol of this.#protocols) {
          await this.#libp2p.handle(protocol, (stream, connection) => this.#onInboundStream(stream, connection), {
            maxInboundStreams: this.#limits.inboundStreamsPerConnectionMax,
            maxOutboundStreams: this.#limits.outboundStreamsPerConnectionMax,
            // The relay's own limits (bytes and time per connection) bound what goes through it.
            runOnLimitedConnection: true,
          })
          handled.push(protocol)
        }
      } catch (error) {
        this.#handled = false
        if (handled.length > 0) await this.#libp2p.unhandle(handled).catch(() => {})
        throw error
      }
      return
    }
    this.#handled = false
    await this.#libp2p.unhandle([...this.#protocols])
    await Promise.all([this.#closeInbound(), this.#requests?.closeInbound()])
  }

  /** Closes the long-lived inbound streams, gracefully within stopTimeoutMs. */
  async #closeInbound(): Promise<void> {
    const signal = AbortSignal.timeout(this.#limits.stopTimeoutMs)
    const closing = [...this.#inbound.values()].map((inbound) => closeStream(inbound.stream, signal))
    this.#inbound.clear()
    await Promise.all(closing)
  }

  /**
   * Stops ticking and serving: no input reaches the core afterwards, not even the end of its
   * requests in flight (their streams abort; metrics count them request-failed 'stopped').
   * Queued frames are handed to their streams and every other stream is closed, gracefully
   * within stopTimeoutMs, then aborted.
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
    for (const topologyId of this.#topologyIds) this.#libp2p.unregister(topologyId)
    this.#topologyIds.length = 0
    const signal = AbortSignal.timeout(this.#limits.stopTimeoutMs)
    const closing: Array<Promise<void>> = []
    for (const outbound of this.#outbound.values()) {
      if (outbound.stream === undefined) continue
      // Frames the core already sent are in flight: they go, with no regard for drain.
      this.#flush(outbound, true)
      closing.push(closeStream(outbound.stream, signal))
    }
    for (const inbound of this.#inbound.values()) closing.push(closeStream(inbound.stream, signal))
    if (this.#requests !== undefined) closing.push(this.#requests.stop())
    await Promise.all([
      ...closing,
      // A setServing() under way may be handling the protocol: unhandle after it.
      this.#servingChange.then(() => this.#libp2p.unhandle([...this.#protocols])).catch(() => {
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

  #deliver(input: AnyInput<Message, Input>): void {
    if (this.#stopped) return
    this.#inputs.push(input)
    // An action can produce an input at once (a dial refused on the spot): it waits its
    // turn so that the core never sees handle() inside its own poll() loop.
    if (this.#running) return
    this.#running = true
    try {
      for (let next = this.#inputs.shift(); next !== undefined; next = this.#inputs.shift()) {
        // DrivableCore checked that Input includes every input of the style.
        this.#core.handle(this.#now(), next as Input)
        for (let action = this.#core.poll(); action !== undefined; action = this.#core.poll()) this.#execute(action)
      }
    } finally {
      this.#running = false
    }
    this.#schedule()
  }

  #execute(action: { type: string }): void {
    if (!NETWORK_ACTION_TYPES[this.#style].has(action.type)) {
      this.#onAction(action as HostAction<Message, Action, Style>)
      return
    }
    // DrivableCore checked that the core's actions of these types are the style's.
    const networkAction = action as NetworkAction<Message> | RequestAction<Message>
    switch (networkAction.type) {
      case 'send': this.#send(networkAction.to, networkAction.message); break
      case 'dial': this.#dial(networkAction.peer, networkAction.addresses); break
      case 'disconnect': this.#disconnect(networkAction.peer, networkAction.reason); break
      case 'request': this.#requests!.request(networkAction); break
      case 'respond': this.#requests!.respond(networkAction); break
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
    const dueInMs = deadline - this.#now()
    const delayMs = dueInMs <= 0 && this.#ticking ? STUCK_DEADLINE_RETRY_MS : Math.min(Math.max(0, dueInMs), TIMER_DELAY_MS_MAX)
    this.#timer = setTimeout(this.#onTimer, delayMs)
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined
    this.#ticking = true
    try {
      this.#deliver({ type: 'tick' })
    } finally {
      this.#ticking = false
    }
  }

  // --- peers -------------------------------------------------------------------------

  /** `via`: an id the peer was found to speak, by a topology or by its record. */
  #onPeerConnected(peerId: Libp2pPeerId, connection: Connection, via: string): void {
    if (this.#stopped) return
    const peer = asPeerId(peerId.toString())
    const known = this.#connected.get(peer)
    if (known !== undefined) {
      // A dial to a peer the core already has: its answer is the peer-connected it got.
      if (known.delivered) this.#dials.get(peer)?.settle(undefined)
      return
    }
    const entry: ConnectedPeer = { delivered: false, addresses: [], protocol: undefined }
    this.#connected.set(peer, entry)
    void this.#recordOf(peerId).then(({ addresses, protocol = via }) => {
      // The peer may have gone (or come back as a new entry) while its record was read.
      if (this.#connected.get(peer) !== entry || this.#stopped) return
      entry.delivered = true
      entry.addresses = addresses
      entry.protocol = protocol
      this.#deliver(this.#protocols.length > 1
        ? { type: 'peer-connected', peer, direction: connection.direction, addresses, protocol }
        : { type: 'peer-connected', peer, direction: connection.direction, addresses })
      // Only now is a dial answered: had the peer left first, it would fail instead.
      this.#dials.get(peer)?.settle(undefined)
    })
  }

  /**
   * What `peer-connected` reports from the peer's record: its addresses, and the newest of our
   * ids it lists (identify records them before the topology hears of the peer).
   */
  async #recordOf(peerId: Libp2pPeerId): Promise<{ addresses: string[]; protocol: string | undefined }> {
    try {
      const record = await this.#libp2p.peerStore.get(peerId)
      return { addresses: this.#bounded(record.addresses.map((address) => address.multiaddr)), protocol: this.#newestSpoken(record.protocols) }
    } catch {
      return { addresses: [], protocol: undefined }
    }
  }

  #bounded(addresses: readonly Multiaddr[]): string[] {
    return addresses
      .map((address) => address.toString())
      .filter((address) => address.length <= this.#limits.addressLengthMax)
      .slice(0, this.#limits.addressesCountMax)
  }

  /**
   * A request's sender: a server if the core has it connected; else a client, which the core
   * hears `peer-disconnected` of once it has asked something (the DHT names connected
   * clients when asked for them: they are in no routing table).
   */
  #requester(peer: PeerId): { addresses: readonly string[]; server: boolean } {
    const server = this.#connected.get(peer)
    if (server !== undefined) return { addresses: server.addresses, server: true }
    this.#clientsReported.add(peer)
    return { addresses: this.#clientAddresses.get(peer) ?? [], server: false }
  }

  /** The first of our ids, newest first, that `protocols` lists. */
  #newestSpoken(protocols: readonly string[]): string | undefined {
    return this.#protocols.find((protocol) => protocols.includes(protocol))
  }

  /**
   * A topology's onDisconnect: the peer disconnected, or identify says it no longer speaks
   * `protocol`. With fallback ids it may still speak another. If the core knew it by another,
   * nothing changes; if by `protocol`, it is gone, and the identify that dropped `protocol`
   * goes on to report it to the topologies of the ids it still lists: the core hears it
   * connect again with the id it speaks now.
   */
  #onProtocolGone(peerId: Libp2pPeerId, protocol: string): void {
    const peer = asPeerId(peerId.toString())
    const entry = this.#connected.get(peer)
    if (entry === undefined || (entry.delivered && entry.protocol !== protocol)) return
    this.#onPeerGone(peer)
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
    this.#clientAddresses.delete(peer)
    if (this.#clientsReported.delete(peer) && !this.#connected.has(peer)) this.#deliver({ type: 'peer-disconnected', peer })
    // Streams close with their connection and their listeners clean up; this is for a
    // stream whose close came before we listened.
    const outbound = this.#outbound.get(peer)
    if (outbound !== undefined && outbound.stream !== undefined) this.#discard(outbound, 'stream-closed')
    this.#inbound.delete(peer)
    this.#dials.get(peer)?.settle('unreachable')
    this.#onPeerGone(peer)
  }

  readonly #onIdentify = (event: CustomEvent<IdentifyResult>): void => {
    const { connection, protocols, listenAddrs } = event.detail
    this.#identified.add(connection)
    const peer = asPeerId(connection.remotePeer.toString())
    if (this.#style === 'requests' && this.#newestSpoken(protocols) === undefined) {
      const addresses = this.#bounded(listenAddrs)
      this.#clientAddresses.set(peer, addresses)
      // Behind a NAT, a client's relayed addresses come after its first requests.
      if (this.#clientsReported.has(peer)) this.#deliver({ type: 'client-identified', peer, addresses })
    } else {
      this.#clientAddresses.delete(peer)
    }
    if (connection.limits === undefined) this.#moveOffRelay(peer)
    const dial = this.#dials.get(peer)
    // A peer that speaks the protocol (any id) is reported by a topology, which settles the dial.
    if (dial !== undefined && this.#newestSpoken(protocols) === undefined) dial.settle('protocol-unsupported')
  }

  // --- dial and disconnect -----------------------------------------------------------

  #dial(peer: PeerId, addresses: readonly string[]): void {
    // One answer serves both asks: the pending dial will report.
    if (this.#dials.has(peer)) return
    if (this.#dialsInFlight >= this.#limits.dialsInFlightMax) return this.#dialFailed(peer, 'too-many-dials')
    const peerId = this.#dialablePeerId(peer)
    if (typeof peerId === 'string') return this.#dialFailed(peer, peerId)
    const multiaddrs = multiaddrsOf(addresses)
    const outcome = Promise.withResolvers<DialFailure | undefined>()
    const settle = (failure: DialFailure | undefined): void => outcome.resolve(failure)
    this.#dials.set(peer, { settle })
    void this.#runDial(peer, peerId, multiaddrs, outcome.promise, settle)
  }

  async #runDial(peer: PeerId, peerId: Libp2pPeerId, multiaddrs: Multiaddr[], outcome: Promise<DialFailure | undefined>, settle: (failure: DialFailure | undefined) => void): Promise<void> {
    const signal = anySignal([AbortSignal.timeout(this.#limits.dialTimeoutMs), this.#stopController.signal])
    let identifyTimer: NodeJS.Timeout | undefined
    let failure: DialFailure | undefined
    try {
      if (multiaddrs.length > 0) await this.#libp2p.peerStore.merge(peerId, { multiaddrs }, { signal })
      // libp2p dials again past a relayed connection; the one we have will do.
      if (this.#connectionTo(peer) === undefined) await this.#libp2p.dial(peerId, { signal })
      // Already reported by the topology (an existing connection, or identify was quick).
      if (this.#connected.get(peer)?.delivered === true) settle(undefined)
      identifyTimer = setTimeout(() => settle('identify-timeout'), this.#limits.identifyTimeoutMs)
      failure = await outcome
      if (failure === 'identify-timeout' && await this.#knownNotToSpeak(peerId)) failure = 'protocol-unsupported'
    } catch (error) {
      failure = this.#stopped ? 'stopped' : dialFailureOf(error, signal)
    } finally {
      signal.clear()
      if (identifyTimer !== undefined) clearTimeout(identifyTimer)
      this.#dials.delete(peer)
    }
    if (failure === undefined) return
    // The peer may have become connected by its own dial meanwhile: the core has its answer.
    if (failure !== 'stopped' && this.#connected.has(peer)) return
    this.#dialFailed(peer, failure)
  }

  get #dialsInFlight(): number {
    return this.#dials.size + this.#requestDials.size
  }

  #dialablePeerId(peer: PeerId): Libp2pPeerId | 'bad-peer-id' | 'self' {
    let peerId: Libp2pPeerId
    try {
      peerId = peerIdFromString(peer)
    } catch {
      return 'bad-peer-id'
    }
    return peerId.equals(this.#libp2p.peerId) ? 'self' : peerId
  }

  /**
   * A connection for a request: an open one, or a dial shared by the requests waiting on the
   * peer. It counts against dialsInFlightMax with the core's dials but waits for no identify:
   * negotiating the request's stream tells whether the peer speaks the protocol.
   */
  #connect(peer: PeerId, addresses: readonly string[]): Promise<Connection | DialFailure> {
    const open = this.#connectionTo(peer)
    if (open !== undefined) return Promise.resolve(open)
    const pending = this.#requestDials.get(peer)
    if (pending !== undefined) return pending
    const peerId = this.#dialsInFlight >= this.#limits.dialsInFlightMax ? 'too-many-dials' : this.#dialablePeerId(peer)
    if (typeof peerId === 'string') {
      this.#metrics.dialFailed(this.#protocol, peerId)
      return Promise.resolve(peerId)
    }
    const dial = this.#dialForRequest(peerId, multiaddrsOf(addresses))
    this.#requestDials.set(peer, dial)
    void dial.then(() => {
      if (this.#requestDials.get(peer) === dial) this.#requestDials.delete(peer)
    })
    return dial
  }

  async #dialForRequest(peerId: Libp2pPeerId, multiaddrs: Multiaddr[]): Promise<Connection | DialFailure> {
    const signal = anySignal([AbortSignal.timeout(this.#limits.dialTimeoutMs), this.#stopController.signal])
    try {
      if (multiaddrs.length > 0) await this.#libp2p.peerStore.merge(peerId, { multiaddrs }, { signal })
      return await this.#libp2p.dial(peerId, { signal })
    } catch (error) {
      const failure = this.#stopped ? 'stopped' : dialFailureOf(error, signal)
      this.#metrics.dialFailed(this.#protocol, failure)
      return failure
    } finally {
      signal.clear()
    }
  }

  /** True when identify ran on an earlier connection and listed none of the protocol's ids. */
  async #knownNotToSpeak(peerId: Libp2pPeerId): Promise<boolean> {
    try {
      const record = await this.#libp2p.peerStore.get(peerId)
      return record.protocols.length > 0 && this.#newestSpoken(record.protocols) === undefined
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
    const parts = this.#codec.encodeParts?.(message) ?? [this.#codec.encode(message)]
    if (parts.reduce((sum, part) => sum + part.byteLength, 0) > this.#codec.frameBytesMax) return this.#metrics.dropped(this.#protocol, 'frame-too-large')
    let outbound = this.#outbound.get(peer)
    if (outbound === undefined) {
      const connection = this.#connectionTo(peer)
      // Sends never dial: a peer without a connection is the core's to dial.
      if (connection === undefined) return this.#metrics.dropped(this.#protocol, 'not-connected')
      outbound = { peer, relayed: connection.limits !== undefined, stream: undefined, frames: [], head: 0, queuedBytes: 0 }
      this.#outbound.set(peer, outbound)
      void this.#openStream(outbound, connection)
    }
    const frame = encodeFrameOfParts(parts)
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
    const open = this.#libp2p.getConnections(peerId).filter((connection) => connection.status === 'open')
    const direct = open.filter((connection) => connection.limits === undefined)
    const relayed = open.find((connection) => connection.limits !== undefined)
    // A direct connection beside a relayed one is an upgrade (WebRTC), used once identify has
    // run on it: a WebRTC connection can be open while ICE never connected (the answering
    // side upgrades when the offerer gives up), and its streams would never open.
    return direct.find((connection) => this.#identified.has(connection)) ?? relayed ?? direct[0]
  }

  /**
   * A direct connection to a peer we send to through a relay (a hole punch succeeded, and
   * identify ran on it): later frames go to a new stream on it, the relayed stream sends what
   * it has queued and closes. One still negotiating moves once negotiated (#openStream).
   */
  #moveOffRelay(peer: PeerId): void {
    const outbound = this.#outbound.get(peer)
    if (outbound?.relayed === true && outbound.stream !== undefined) this.#moveToDirect(outbound, outbound.stream)
  }

  #moveToDirect(outbound: Outbound, stream: Stream): void {
    this.#outbound.delete(outbound.peer)
    this.#metrics.streamMoved(this.#protocol)
    this.#flush(outbound, true)
    void closeStream(stream, AbortSignal.timeout(this.#limits.stopTimeoutMs))
  }

  async #openStream(outbound: Outbound, connection: Connection): Promise<void> {
    let stream: Stream
    const signal = anySignal([AbortSignal.timeout(this.#limits.streamOpenTimeoutMs), this.#stopController.signal])
    try {
      // Multistream-select offers the ids in turn, newest first.
      stream = await connection.newStream([...this.#protocols], { signal, runOnLimitedConnection: true })
    } catch {
      this.#discard(outbound, this.#stopped ? 'stopped' : 'stream-open-failed')
      return
    } finally {
      signal.clear()
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
    if (outbound.relayed && this.#connectionTo(outbound.peer)?.limits === undefined) return this.#moveToDirect(outbound, stream)
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
      this.#metrics.frameSent(this.#protocol, frame.byteLength, outbound.relayed)
    }
    outbound.frames = []
    outbound.head = 0
    this.#onSendQueueDrained?.(outbound.peer)
  }

  #discard(outbound: Outbound, reason: DropReason): void {
    if (this.#outbound.get(outbound.peer) === outbound) this.#outbound.delete(outbound.peer)
    for (let index = outbound.head; index < outbound.frames.length; index++) this.#metrics.dropped(this.#protocol, reason)
    outbound.frames = []
    outbound.head = 0
    outbound.queuedBytes = 0
    // Nothing is queued any more: a paced sender must not wait for a drain that will not come.
    this.#onSendQueueDrained?.(outbound.peer)
  }

  // --- receiving -----------------------------------------------------------------------

  #onInboundStream(stream: Stream, connection: Connection): void {
    // Not serving: a stream negotiated just before the protocol was unhandled.
    if (this.#stopped || !this.#handled) {
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
    // A DHT peer opens a stream per request: RequestStreams meters requests instead.
    if (this.#requests !== undefined) return this.#requests.accept(stream, peer, connection.limits !== undefined)
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
    const inbound: Inbound = { relayed: connection.limits !== undefined, stream, reader: new FrameReader(this.#codec.frameBytesMax) }
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
      const decoded = decodeFrame(this.#codec, read.frame)
      if (!decoded.ok) return this.#reject(peer, inbound, decoded.error.code)
      this.#metrics.frameReceived(this.#protocol, read.frame.byteLength, inbound.relayed)
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

/** Addresses come from other peers: a bad one is skipped, the others may work. */
function multiaddrsOf(addresses: readonly string[]): Multiaddr[] {
  const multiaddrs: Multiaddr[] = []
  for (const address of addresses) {
    try {
      multiaddrs.push(multiaddr(address))
    } catch {
      // Skipped.
    }
  }
  return multiaddrs
}

function dialFailureOf(error: unknown, signal: AbortSignal): DialFailure {
  if (signal.aborted) return 'timeout'
  if ((error as Error | undefined)?.name === 'NoValidAddressesError') return 'no-addresses'
  return 'unreachable'
}
