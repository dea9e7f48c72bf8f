/**
 * NAT traversal on a running host: what AutoNAT found (reachability), what follows from it
 * (relaying for others while public; reservations on relays while not), and the upgrade of
 * relayed connections to direct ones.
 *
 * Why WebRTC rather than DCUtR: behind NATs, js-libp2p's DCUtR never gets a usable address
 * (identify drops TCP observed addresses, Node cannot dial TCP from its listening port, and
 * the QUIC transport dials from a socket other than the one it listens on). ICE does what
 * DCUtR needs: it gathers server-reflexive candidates from STUN on the socket it then
 * listens on, and both sides send connectivity checks, so the NATs' mappings open from both
 * ends. The offer and answer go over the relayed connection (the WebRTC transport's
 * signalling protocol).
 *
 * The upgrade: the peer that dialled through the relay dials `<relay>/p2p-circuit/webrtc/p2p/<peer>`
 * once identify has run on the relayed connection. On success the drivers move their streams
 * to the direct connection (protocol-driver.ts) and the relayed one is closed once its last
 * stream has gone; on failure it stays, and the upgrade is tried again later.
 */
import type { Connection, IdentifyResult, PeerId, StreamCloseEvent, StreamHandler, StreamHandlerRecord } from '@libp2p/interface'
import { RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { hasPublicIp } from '../core/ip-address.ts'
import { hostInternals, isWebRtc, type ShoalHost } from './host.ts'

/** public: a peer can dial us (AutoNAT confirmed an address, or the operator announced one). */
export type Reachability = 'public' | 'private' | 'unknown'

export type Switch = 'auto' | 'on' | 'off'

export interface NatTraversalSettings {
  /** auto: relay for others while public. The host must have been created with a relay service. */
  relayServer: Switch
  /** auto: keep reservations on relays while not public. */
  relayClient: Switch
  reservations: number
  holePunching: boolean
}

export interface UpgradeOutcome {
  /** The relayed connection this is about. */
  connectionId: string
  /** When the relayed connection opened and, on success, when the direct one did (ms since the epoch). */
  relayedAtMs: number
  directAtMs: number | undefined
  attempts: number
}

/** Whether an address is one a peer on the internet could dial: a public IP or a DNS name, not through a relay. */
function isPublicAddress(address: Multiaddr): boolean {
  const text = address.toString()
  if (text.includes('/p2p-circuit')) return false
  return hasPublicIp(text) || /^\/dns(4|6|addr)?\//.test(text)
}

/**
 * public when one public address is verified; unknown while public ones wait for AutoNAT;
 * private when the node has none (every address it knows is a private one: behind a NAT).
 */
export function reachabilityOf(addresses: ReadonlyArray<{ multiaddr: Multiaddr; verified: boolean }>): Reachability {
  let candidate = false
  for (const { multiaddr, verified } of addresses) {
    if (!isPublicAddress(multiaddr)) continue
    if (verified) return 'public'
    candidate = true
  }
  return candidate ? 'unknown' : 'private'
}

/** `<relay>/p2p-circuit/p2p/<peer>` → `<relay>/p2p-circuit/webrtc/p2p/<peer>`; undefined if not relayed. */
export function webRtcAddressThrough(relayed: Multiaddr, peer: PeerId): Multiaddr | undefined {
  const text = relayed.toString()
  const circuit = text.indexOf('/p2p-circuit')
  if (circuit < 0) return undefined
  return multiaddr(`${text.slice(0, circuit)}/p2p-circuit/webrtc/p2p/${peer.toString()}`)
}

const WEBRTC_SIGNALLING_PROTOCOL = '/webrtc-signaling/0.0.1'
/** Errors that end signalling without anything wrong in what the peer sent. */
const SIGNALLING_FAILURES = new Set(['AbortError', 'TimeoutError', 'ConnectionFailedError', 'StreamResetError'])
const REACHABILITY_CHECK_MS = 5_000
/** A node with public addresses that AutoNAT has not confirmed by then looks for relays too. */
const UNKNOWN_GRACE_MS = 60_000
const UPGRADE_TIMEOUT_MS = 15_000
/** After the first attempt fails: retries, this long after the previous one. */
const UPGRADE_RETRY_DELAYS_MS = [5_000, 30_000]
const JOINED_DIAL_RETRY_MS = 50
const RELAYED_DRAIN_POLL_MS = 250
/** Streams still open on the relayed connection this long after the upgrade are reset. */
const RELAYED_DRAIN_MAX_MS = 10_000
const OUTCOMES_MAX = 1_000
const IDENTIFY_DEADLINE_MS = 10_000

export class NatTraversal {
  readonly counters = {
    reachabilityChanges: 0,
    relayServerStarts: 0,
    relayServerStops: 0,
    reservationSearches: 0,
    upgradeAttempts: 0,
    upgradeSuccesses: 0,
    upgradeFirstAttemptSuccesses: 0,
    upgradeFailures: 0,
    /** The peer does not speak WebRTC signalling: the connection stays relayed. */
    upgradeUnsupported: 0,
    /** A direct connection existed, or came by another way, before ours. */
    upgradeAlreadyDirect: 0,
    relayedClosedAfterUpgrade: 0,
    /** WebRTC connections closed because identify never ran on them (ICE never connected). */
    deadDirectClosed: 0,
    /** Connections we relayed, cut by the relay service at their reservation's byte or time limit. */
    relayedCutAtByteLimit: 0,
    relayedCutAtDurationLimit: 0,
    /** Inbound WebRTC signalling refused: undecodable messages, a wrong message type, an SDP that does not parse. */
    signallingMalformed: 0,
    /** Inbound WebRTC signalling that timed out, was reset, or whose ICE failed. */
    signallingFailed: 0,
  }

  #host!: ShoalHost
  readonly #settings: NatTraversalSettings
  readonly #now: () => number
  #reachability: Reachability = 'unknown'
  #unknownSinceMs: number
  #searchingRelays = false
  #relayServing = false
  /** The relay service's hop handler, wrapped to count the limits it enforces. */
  #hopHandler: StreamHandlerRecord | undefined
  #timer: NodeJS.Timeout | undefined
  #stopped = false
  readonly #outcomes = new Map<string, UpgradeOutcome>()
  readonly #upgradeTargets = new Set<string>()
  readonly #awaitingIdentify = new Set<Connection>()
  readonly #timers = new Set<NodeJS.Timeout>()

  constructor(settings: NatTraversalSettings, now: () => number) {
    this.#settings = settings
    this.#now = now
    this.#unknownSinceMs = now()
  }

  get reachability(): Reachability {
    return this.#reachability
  }

  /** How the upgrade of the relayed connection to `peer` went, if we dialled it through a relay. */
  upgradeOutcome(peer: PeerId): UpgradeOutcome | undefined {
    return this.#outcomes.get(peer.toString())
  }

  /**
   * For the host's connection gater: WebRTC is dialled only to upgrade a relayed connection,
   * by us, one attempt per peer at a time. A dial by peer id that tried a peer's WebRTC
   * address would race our upgrade with a second ICE session (and the relayed connection
   * that answers at once is the better first connection).
   */
  allowsDial(address: Multiaddr): boolean {
    return !isWebRtc(address) || this.#upgradeTargets.has(address.toString())
  }

  async start(host: ShoalHost): Promise<void> {
    this.#host = host
    // The relay service and the WebRTC transport registered their handlers as the host started.
    // Ours wrap them, to count what they refuse; relaying then waits for 'on' or for 'auto' to decide.
    if (this.#host.services.relay !== undefined) {
      this.#hopHandler = await this.#wrapHandler(RELAY_V2_HOP_CODEC, (error) => {
        if (error.name === 'TransferLimitError') this.counters.relayedCutAtByteLimit++
        else if (error.name === 'DurationLimitError') this.counters.relayedCutAtDurationLimit++
      })
      await this.#host.unhandle(RELAY_V2_HOP_CODEC)
      if (this.#settings.relayServer === 'on') await this.#setRelayServing(true)
    }
    if (this.#settings.holePunching) {
      await this.#wrapHandler(WEBRTC_SIGNALLING_PROTOCOL, (error) => {
        if (SIGNALLING_FAILURES.has(error.name)) this.counters.signallingFailed++
        else this.counters.signallingMalformed++
      })
    }
    this.#host.addEventListener('peer:identify', this.#onIdentify)
    this.#host.addEventListener('connection:open', this.#onConnectionOpen)
    this.#host.addEventListener('self:peer:update', this.#onSelfUpdate)
    this.#timer = setInterval(() => void this.#evaluate(), REACHABILITY_CHECK_MS).unref()
    await this.#evaluate()
  }

  stop(): void {
    this.#stopped = true
    clearInterval(this.#timer)
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers.clear()
    this.#host.removeEventListener('peer:identify', this.#onIdentify)
    this.#host.removeEventListener('connection:open', this.#onConnectionOpen)
    this.#host.removeEventListener('self:peer:update', this.#onSelfUpdate)
  }

  readonly #onSelfUpdate = (): void => {
    void this.#evaluate()
  }

  async #evaluate(): Promise<void> {
    if (this.#stopped) return
    const reachability = reachabilityOf(hostInternals(this.#host).addressManager.getAddressesWithMetadata())
    if (reachability !== this.#reachability) {
      this.counters.reachabilityChanges++
      this.#reachability = reachability
      if (reachability === 'unknown') this.#unknownSinceMs = this.#now()
    }
    const isPublic = reachability === 'public'
    if (this.#settings.relayServer === 'auto' && this.#host.services.relay !== undefined) await this.#setRelayServing(isPublic)
    const wantsRelays = this.#settings.relayClient === 'on' || (this.#settings.relayClient === 'auto' && (reachability === 'private' ||
      (reachability === 'unknown' && this.#now() - this.#unknownSinceMs >= UNKNOWN_GRACE_MS)))
    if (wantsRelays && !this.#searchingRelays) await this.#searchRelays()
  }

  /**
   * Listening on `/p2p-circuit` asks the relay transport for a reservation on a relay among
   * the connected peers (bootstrap peers, peers met through the DHT) that serve the hop
   * protocol, and on the next one found when a relay goes away. Once public, the node keeps
   * them: its relayed addresses are a second path to it, not a cost.
   */
  async #searchRelays(): Promise<void> {
    this.#searchingRelays = true
    this.counters.reservationSearches++
    const circuit = multiaddr('/p2p-circuit')
    try {
      await hostInternals(this.#host).transportManager.listen(Array.from({ length: this.#settings.reservations }, () => circuit))
    } catch {
      // No circuit transport listener (stopping): the next evaluation tries again.
      this.#searchingRelays = false
    }
  }

  /**
   * The relay service runs from the start; serving means handling its hop protocol, which
   * identify(-push) tells peers about. Off, no peer asks us for a reservation: a relay behind
   * a NAT would hand out addresses nobody can dial. (The service's own stop() cannot be
   * undone: it aborts its shutdown signal for good.)
   */
  async #setRelayServing(serving: boolean): Promise<void> {
    const hop = this.#hopHandler
    if (hop === undefined || serving === this.#relayServing) return
    this.#relayServing = serving
    if (serving) {
      this.counters.relayServerStarts++
      await this.#host.handle(RELAY_V2_HOP_CODEC, hop.handler, hop.options)
    } else {
      this.counters.relayServerStops++
      await this.#host.unhandle(RELAY_V2_HOP_CODEC)
    }
  }

  /**
   * Re-registers the handler a libp2p service has for `protocol`, with the same options,
   * behind one that tells `onAbort` why the service aborted a stream (libp2p only logs it).
   */
  async #wrapHandler(protocol: string, onAbort: (error: Error) => void): Promise<StreamHandlerRecord> {
    const { registrar } = hostInternals(this.#host)
    const { handler, options } = registrar.getHandler(protocol)
    const wrapped: StreamHandler = (stream, connection) => {
      stream.addEventListener('close', (event) => {
        const { error, local } = event as StreamCloseEvent
        // Aborted here, by the service; a reset by the remote is the remote's business.
        if (error !== undefined && local === true) onAbort(error)
      }, { once: true })
      return handler(stream, connection)
    }
    await registrar.handle(protocol, wrapped, { ...options, force: true })
    return { handler: wrapped, options }
  }

  /**
   * @libp2p/webrtc's answering side sets up the connection when the offerer closes the
   * signalling stream, connected or not (ICE having failed, say): such a connection is open
   * but carries nothing. Identify runs on every new connection; one it has not run on by
   * IDENTIFY_DEADLINE_MS is closed.
   */
  readonly #onConnectionOpen = (event: CustomEvent<Connection>): void => {
    const connection = event.detail
    if (!isWebRtc(connection.remoteAddr)) return
    this.#awaitingIdentify.add(connection)
    this.#later(IDENTIFY_DEADLINE_MS, () => {
      if (!this.#awaitingIdentify.delete(connection) || connection.status !== 'open') return
      this.counters.deadDirectClosed++
      connection.abort(new Error('identify never ran on this WebRTC connection'))
    })
  }

  readonly #onIdentify = (event: CustomEvent<IdentifyResult>): void => {
    const { connection, protocols, peerId } = event.detail
    this.#awaitingIdentify.delete(connection)
    if (!this.#settings.holePunching || connection.limits === undefined || connection.direction !== 'outbound') return
    const key = peerId.toString()
    // identify runs again on identify-push; one upgrade per relayed connection.
    if (this.#outcomes.get(key)?.connectionId === connection.id) return
    if (!protocols.includes(WEBRTC_SIGNALLING_PROTOCOL)) {
      this.counters.upgradeUnsupported++
      return
    }
    if (this.#outcomes.size >= OUTCOMES_MAX) this.#outcomes.delete(this.#outcomes.keys().next().value!)
    const outcome: UpgradeOutcome = { connectionId: connection.id, relayedAtMs: connection.timeline.open, directAtMs: undefined, attempts: 0 }
    this.#outcomes.set(key, outcome)
    void this.#upgrade(connection, outcome)
  }

  async #upgrade(relayed: Connection, outcome: UpgradeOutcome): Promise<void> {
    if (this.#stopped || relayed.status !== 'open') return
    const peer = relayed.remotePeer
    if (this.#directConnectionTo(peer) !== undefined) {
      this.counters.upgradeAlreadyDirect++
      this.#retire(relayed)
      return
    }
    const target = webRtcAddressThrough(relayed.remoteAddr, peer)
    if (target === undefined) return
    outcome.attempts++
    this.counters.upgradeAttempts++
    try {
      const deadline = this.#now() + UPGRADE_TIMEOUT_MS
      this.#upgradeTargets.add(target.toString())
      let direct: Connection
      // libp2p joins a dial to the same peer still in its queue (the relayed one, often
      // finishing as identify ends) and answers with its connection: ours goes after it.
      do direct = await this.#host.dial(target, { signal: AbortSignal.timeout(Math.max(1, deadline - this.#now())) })
      while (direct.limits !== undefined && await pause(JOINED_DIAL_RETRY_MS) && this.#now() < deadline)
      if (direct.limits !== undefined) throw new Error('the dial gave a relayed connection')
      outcome.directAtMs = this.#now()
      this.counters.upgradeSuccesses++
      if (outcome.attempts === 1) this.counters.upgradeFirstAttemptSuccesses++
      this.#retire(relayed)
    } catch {
      if (this.#directConnectionTo(peer) !== undefined) {
        this.counters.upgradeAlreadyDirect++
        this.#retire(relayed)
        return
      }
      this.counters.upgradeFailures++
      // The relayed connection stays as it is; the next attempt comes later.
      const delay = UPGRADE_RETRY_DELAYS_MS[outcome.attempts - 1]
      if (delay !== undefined) this.#later(delay, () => void this.#upgrade(relayed, outcome))
    } finally {
      this.#upgradeTargets.delete(target.toString())
    }
  }

  #directConnectionTo(peer: PeerId): Connection | undefined {
    return this.#host.getConnections(peer).find((connection) => connection.status === 'open' && connection.limits === undefined)
  }

  /** Closes a relayed connection once the drivers have moved off it, or after RELAYED_DRAIN_MAX_MS. */
  #retire(relayed: Connection): void {
    const deadline = this.#now() + RELAYED_DRAIN_MAX_MS
    const check = (): void => {
      if (relayed.status !== 'open') return
      const busy = relayed.streams.some((stream) => stream.status === 'open')
      if (busy && this.#now() < deadline && !this.#stopped) return this.#later(RELAYED_DRAIN_POLL_MS, check)
      this.counters.relayedClosedAfterUpgrade++
      relayed.close().catch((error: unknown) => relayed.abort(error as Error))
    }
    check()
  }

  #later(delayMs: number, run: () => void): void {
    if (this.#stopped) return
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      run()
    }, delayMs)
    timer.unref()
    this.#timers.add(timer)
  }
}

function pause(ms: number): Promise<true> {
  return new Promise((resolve) => setTimeout(() => resolve(true), ms))
}
