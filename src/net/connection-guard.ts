/**
 * ConnectionGuard: the connection gater that holds the node's connection limits before
 * any handshake is spent on a connection: the total, the number from one IP address, the
 * rate of new inbound connections from one IP address, and the inbound handshakes under
 * way (in all and from one IP address: a peer that opens connections and never finishes
 * their handshake holds a slot until libp2p's upgrade timeout); and, on a relay, the
 * reservations held for peers behind one IP address. Every refusal is counted by reason,
 * and so is every admitted connection whose handshake failed, timed out or was abandoned.
 *
 * When every handshake slot is taken, a newcomer from an IP address holding fewer of them
 * than the address holding the most takes the oldest slot of that address, whose handshake
 * is aborted (counted as evicted): a flood of handshakes from many addresses then shares the
 * slots out fairly instead of shutting every new peer out until it ends, and only a flood
 * from more addresses than there are slots can keep an address with none from getting one.
 * libp2p's own limits stay on as a second line (see host.ts).
 */
import type { ConnectionGater, MultiaddrConnection, PeerId, StreamCloseEvent } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface ConnectionLimits {
  connectionsMax: number
  perIpMax: number
  inboundPerIpPerSecondMax: number
  streamsPerConnectionMax: number
  /** Inbound connections admitted whose handshake (encryption, muxer) is not over, in all and from one IP. */
  handshakesMax: number
  handshakesPerIpMax: number
  relayReservationsPerIpMax: number
}

/** Why the guard refused an inbound connection or reservation, or how an admitted connection's handshake ended short. */
export type ConnectionRefusal =
  | 'connections-max' | 'per-ip-max' | 'inbound-rate' | 'handshakes-max' | 'handshakes-per-ip-max' | 'relay-reservations-per-ip'
  | HandshakeFailure

/**
 * failed: the handshake was bad (libp2p aborted it with an error); timeout: it took too long;
 * abandoned: the remote closed first; evicted: its slot went to a newcomer from a less busy address.
 */
export type HandshakeFailure = 'handshake-failed' | 'handshake-timeout' | 'handshake-abandoned' | 'handshake-evicted'

/** A per-IP token bucket: `inboundPerIpPerSecondMax` tokens a second, bursts of as many. */
interface Bucket {
  tokens: number
  refilledAt: number
}

/** Buckets for this many IP addresses at most; the oldest are forgotten first. */
const BUCKETS_MAX = 10_000

export class ConnectionGuard {
  readonly #limits: ConnectionLimits
  readonly #now: () => number
  readonly #onRefused: (reason: ConnectionRefusal) => void
  readonly #buckets = new Map<string, Bucket>()
  /** Admitted inbound connections still in their handshake, by remote address, oldest first. */
  readonly #handshakes = new Map<string, { ip: string | undefined; connection: MultiaddrConnection }>()
  /** Open connections as the host reports them; set once the host exists. */
  openConnections: () => ReadonlyArray<{ remoteAddr: Multiaddr; remotePeer: PeerId }> = () => []
  /** The relay's reservations, each with the address its client connected from. */
  relayReservations: () => Iterable<{ addr: Multiaddr }> = () => []

  constructor(limits: ConnectionLimits, now: () => number, onRefused: (reason: ConnectionRefusal) => void) {
    this.#limits = limits
    this.#now = now
    this.#onRefused = onRefused
  }

  gater(): ConnectionGater {
    return {
      denyInboundConnection: (connection: MultiaddrConnection) => this.#denyInbound(connection),
      denyInboundRelayReservation: (source: PeerId) => this.#denyReservation(source),
    }
  }

  /** A renewal passes: the cap counts the reservations of the source's IP held by others. */
  #denyReservation(source: PeerId): boolean {
    const connections = this.openConnections().filter((connection) => connection.remotePeer.equals(source))
    const ip = connections.map((connection) => ipOf(connection.remoteAddr)).find((found) => found !== undefined)
    if (ip === undefined) return false
    const own = new Set(connections.map((connection) => connection.remoteAddr.toString()))
    let held = 0
    for (const reservation of this.relayReservations()) {
      if (ipOf(reservation.addr) === ip && !own.has(reservation.addr.toString())) held++
    }
    return held >= this.#limits.relayReservationsPerIpMax ? this.#refuse('relay-reservations-per-ip') : false
  }

  /** The host opened a connection: if it was an inbound one in its handshake, the handshake is over. */
  connectionOpened(remote: Multiaddr): void {
    this.#handshakes.delete(transportAddress(remote))
  }

  #denyInbound(connection: MultiaddrConnection): boolean {
    const ip = ipOf(connection.remoteAddr)
    const open = this.openConnections()
    if (open.length >= this.#limits.connectionsMax) return this.#refuse('connections-max')
    if (ip !== undefined) {
      if (!this.#takeToken(ip)) return this.#refuse('inbound-rate')
      let fromIp = 0
      for (const other of open) if (ipOf(other.remoteAddr) === ip) fromIp++
      if (fromIp >= this.#limits.perIpMax) return this.#refuse('per-ip-max')
      let handshakesFromIp = 0
      for (const other of this.#handshakes.values()) if (other.ip === ip) handshakesFromIp++
      if (handshakesFromIp >= this.#limits.handshakesPerIpMax) return this.#refuse('handshakes-per-ip-max')
    }
    if (this.#handshakes.size >= this.#limits.handshakesMax) {
      const evictable = this.#oldestOfBusiestAddress(ip)
      if (evictable === undefined) return this.#refuse('handshakes-max')
      this.#evict(evictable)
    }
    this.#admit(connection, ip)
    return false
  }

  #admit(connection: MultiaddrConnection, ip: string | undefined): void {
    const key = transportAddress(connection.remoteAddr)
    this.#handshakes.set(key, { ip, connection })
    connection.addEventListener('close', (event: StreamCloseEvent) => {
      // Gone from the map: the connection opened or was evicted, and this is not its handshake's end.
      if (this.#handshakes.delete(key)) this.#onRefused(handshakeFailure(event))
    }, { once: true })
  }

  /** The key of the oldest handshake of the address holding the most, if it holds more than `newcomer` does. */
  #oldestOfBusiestAddress(newcomer: string | undefined): string | undefined {
    const held = new Map<string | undefined, number>()
    for (const { ip } of this.#handshakes.values()) held.set(ip, (held.get(ip) ?? 0) + 1)
    const newcomerCount = held.get(newcomer) ?? 0
    let busiest: string | undefined
    let busiestCount = newcomerCount
    for (const [ip, count] of held) {
      if (count > busiestCount) {
        busiest = ip
        busiestCount = count
      }
    }
    if (busiestCount === newcomerCount) return undefined
    for (const [key, { ip }] of this.#handshakes) if (ip === busiest) return key
    return undefined
  }

  #evict(key: string): void {
    const { connection } = this.#handshakes.get(key)!
    this.#handshakes.delete(key)
    this.#onRefused('handshake-evicted')
    connection.abort(new HandshakeEvictedError())
  }

  #takeToken(ip: string): boolean {
    const now = this.#now()
    const rate = this.#limits.inboundPerIpPerSecondMax
    let bucket = this.#buckets.get(ip)
    if (bucket === undefined) {
      if (this.#buckets.size >= BUCKETS_MAX) this.#buckets.delete(this.#buckets.keys().next().value!)
      bucket = { tokens: rate, refilledAt: now }
      this.#buckets.set(ip, bucket)
    }
    bucket.tokens = Math.min(rate, bucket.tokens + ((now - bucket.refilledAt) / 1000) * rate)
    bucket.refilledAt = now
    if (bucket.tokens < 1) return false
    bucket.tokens -= 1
    return true
  }

  #refuse(reason: ConnectionRefusal): true {
    this.#onRefused(reason)
    return true
  }
}

class HandshakeEvictedError extends Error {
  override name = 'HandshakeEvictedError'
  constructor() {
    super('handshake evicted: every slot was taken, and a peer from a less busy address needed one')
  }
}

const P2P_CODE = 421

/** The address a connection came from, without the peer id that an opened connection's address ends with. */
function transportAddress(address: Multiaddr): string {
  return address.decapsulateCode(P2P_CODE).toString()
}

function handshakeFailure(event: StreamCloseEvent): HandshakeFailure {
  if (event.error === undefined) return 'handshake-abandoned'
  return /timeout|abort/i.test(event.error.name) ? 'handshake-timeout' : 'handshake-failed'
}

function ipOf(address: Multiaddr): string | undefined {
  const component = address.getComponents().find((part) => part.name === 'ip4' || part.name === 'ip6')
  return component?.value
}
