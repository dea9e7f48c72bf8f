/**
 * A reservation flood against a Shoal relay host on loopback: `attempts` peers, each with an
 * identity of its own and all from 127.0.0.1, ask for a reservation one after another as
 * fast as they can; then a well-behaved peer from 127.0.0.2 asks for one, and a third peer
 * dials it through the relay. The figures say what the relay granted and refused.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import type { Libp2p } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import type { ConnectionRefusal } from '../net/connection-guard.ts'
import { createHost, hostInternals, type RelayServerLimits, type ShoalHost } from '../net/host.ts'
import { SHOAL_AGENT_VERSION } from '../version.ts'

export const FLOOD_RELAY_LIMITS: RelayServerLimits = { reservationsMax: 128, reservationTtlMs: 3_600_000, connectionDurationMaxMs: 60_000, connectionBytesMax: 2 ** 20 }
export const FLOOD_HOST_LIMITS = { connectionsMax: 300, perIpMax: 32, inboundPerIpPerSecondMax: 10, streamsPerConnectionMax: 256, handshakesMax: 128, handshakesPerIpMax: 8, relayReservationsPerIpMax: 4 }

export interface RelayFloodResult {
  attempts: number
  seconds: number
  /** Reservations the relay held for the flooding IP at the end. */
  floodReservations: number
  refusals: Partial<Record<ConnectionRefusal, number>>
  /** The well-behaved peer from another IP got its reservation, and was reached through it. */
  wellBehavedReserved: boolean
  wellBehavedReached: boolean
  relayRssMb: number
}

export async function floodReservations(attempts: number): Promise<RelayFloodResult> {
  const refusals: Partial<Record<ConnectionRefusal, number>> = {}
  const { relay, relayAt } = await loopbackRelay(FLOOD_RELAY_LIMITS, (reason) => { refusals[reason] = (refusals[reason] ?? 0) + 1 })
  const startedMs = performance.now()
  try {
    for (let attempt = 0; attempt < attempts; attempt++) {
      const client = await reservingClient('127.0.0.1')
      await reserve(client, relayAt('127.0.0.1')).catch(() => {})
      await client.stop()
    }
    const seconds = (performance.now() - startedMs) / 1_000
    const reservations = [...relay.services.relay!.reservations.values()]
    const floodReservations = reservations.filter((reservation) => reservation.addr.toString().startsWith('/ip4/127.0.0.1/')).length
    // The flood is over; a peer from another address asks, and is reached through the relay.
    const wellBehaved = await reservingClient('127.0.0.2')
    const dialer = await reservingClient('127.0.0.3')
    try {
      const wellBehavedReserved = await reserve(wellBehaved, relayAt('127.0.0.2')).then(() => true, () => false)
      const through = relayAt('127.0.0.3').encapsulate(`/p2p-circuit/p2p/${wellBehaved.peerId}`)
      const wellBehavedReached = wellBehavedReserved && await dialer.dial(through, { signal: AbortSignal.timeout(10_000) }).then((connection) => connection.limits !== undefined, () => false)
      return { attempts, seconds, floodReservations, refusals, wellBehavedReserved, wellBehavedReached, relayRssMb: process.memoryUsage().rss / 1e6 }
    } finally {
      await Promise.all([wellBehaved.stop(), dialer.stop()])
    }
  } finally {
    await relay.stop()
  }
}

/** A started relay host on every loopback address, with Shoal's connection guard at FLOOD_HOST_LIMITS. */
export async function loopbackRelay(limits: RelayServerLimits, onConnectionRefused: (reason: ConnectionRefusal) => void = () => {}): Promise<{ relay: ShoalHost; relayAt: (ip: string) => Multiaddr }> {
  const relay = await createHost({
    privateKey: await generateKeyPair('Ed25519'),
    listen: ['/ip4/0.0.0.0/tcp/0'],
    announce: [],
    mdns: false,
    limits: FLOOD_HOST_LIMITS,
    agentVersion: SHOAL_AGENT_VERSION,
    now: Date.now,
    onConnectionRefused,
    onAddressRejected: () => {},
    nat: { autonat: false, relayServer: limits, holePunching: undefined, allowsDial: () => true },
  })
  await relay.start()
  const port = relay.getMultiaddrs().map((address) => address.toString()).find((text) => text.startsWith('/ip4/127.0.0.1/tcp/'))!.split('/')[4]
  return { relay, relayAt: (ip) => multiaddr(`/ip4/${ip}/tcp/${port}/p2p/${relay.peerId}`) }
}

/** A stock libp2p node that dials from `ip` and can listen through relays. */
export async function reservingClient(ip: string): Promise<Libp2p> {
  return createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: [] },
    transports: [tcp({ dialOpts: { localAddress: ip } } as Parameters<typeof tcp>[0]), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() },
  })
}

/** Asks `relay` for a reservation: resolves once the relay granted one, rejects when refused. */
export async function reserve(client: Libp2p, relay: Multiaddr): Promise<void> {
  await hostInternals(client as never).transportManager.listen([relay.encapsulate('/p2p-circuit')])
}
