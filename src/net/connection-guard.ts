/**
 * ConnectionGuard: the connection gater that holds the node's connection limits before
 * any handshake is spent on a connection: the total, the number from one IP address and
 * the rate of new inbound connections from one IP address; and, on a relay, the
 * reservations held for peers behind one IP address. Every refusal is counted by reason.
 * libp2p's own limits stay on as a second line (see host.ts).
 */
import type { ConnectionGater, MultiaddrConnection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface ConnectionLimits {
  connectionsMax: number
  perIpMax: number
  inboundPerIpPerSecondMax: number
  streamsPerConnectionMax: number
  relayReservationsPerIpMax: number
}

export type ConnectionRefusal = 'connections-max' | 'per-ip-max' | 'inbound-rate' | 'relay-reservations-per-ip'

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
      denyInboundConnection: (connection: MultiaddrConnection) => this.#denyInbound(connection.remoteAddr),
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

  #denyInbound(remote: Multiaddr): boolean {
    const ip = ipOf(remote)
    const open = this.openConnections()
    if (open.length >= this.#limits.connectionsMax) return this.#refuse('connections-max')
    if (ip !== undefined) {
      if (!this.#takeToken(ip)) return this.#refuse('inbound-rate')
      let fromIp = 0
      for (const connection of open) if (ipOf(connection.remoteAddr) === ip) fromIp++
      if (fromIp >= this.#limits.perIpMax) return this.#refuse('per-ip-max')
    }
    return false
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

function ipOf(address: Multiaddr): string | undefined {
  const component = address.getComponents().find((part) => part.name === 'ip4' || part.name === 'ip6')
  return component?.value
}
