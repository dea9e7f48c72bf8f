/**
 * What every benchmark on 127.0.0.1 sets up the same way: Shoal's host with the limits of a
 * single-IP testbed, the matching libp2p connection manager for reference nodes, and a
 * node's loopback TCP address.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { createHost, NAT_TRAVERSAL_OFF, type ShoalHost } from '../src/net/host.ts'
import { SHOAL_AGENT_VERSION } from '../src/version.ts'

/** A single-IP testbed: every connection comes from 127.0.0.1. */
export const HOST_LIMITS = { connectionsMax: 300, perIpMax: 1_000, inboundPerIpPerSecondMax: 1_000_000, streamsPerConnectionMax: 256, handshakesMax: 1_000, handshakesPerIpMax: 1_000, relayReservationsPerIpMax: 4 }

/** Shoal's host settings (net/host.ts) for a libp2p reference node, so that neither refuses the other's testbed load. */
export const REFERENCE_CONNECTION_MANAGER = {
  maxConnections: HOST_LIMITS.connectionsMax,
  inboundConnectionThreshold: HOST_LIMITS.inboundPerIpPerSecondMax,
  maxIncomingPendingConnections: 256,
  dialTimeout: 10_000,
}

/** A started Shoal host listening on 127.0.0.1 only, with HOST_LIMITS. */
export async function startBenchHost(privateKey?: PrivateKey): Promise<ShoalHost> {
  const host = await createHost({
    privateKey: privateKey ?? await generateKeyPair('Ed25519'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    announce: [],
    mdns: false,
    limits: HOST_LIMITS,
    agentVersion: SHOAL_AGENT_VERSION,
    now: Date.now,
    onConnectionRefused: () => {},
    onAddressRejected: () => {},
    nat: NAT_TRAVERSAL_OFF,
  })
  await host.start()
  return host
}

/** The loopback TCP address among a node's multiaddrs, without its /p2p part. */
export function loopbackAddress(addresses: readonly string[]): string {
  const address = addresses.find((text) => text.startsWith('/ip4/127.0.0.1/tcp/') && !text.includes('/ws'))
  if (address === undefined) throw new Error(`no loopback TCP address among ${addresses.join(' ')}`)
  return address.replace(/\/p2p\/[^/]+$/, '')
}
