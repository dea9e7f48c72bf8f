/**
 * The libp2p host: TCP and WebSockets transports, Noise encryption, Yamux multiplexing,
 * identify (and identify-push, so that connected peers learn when a protocol driver stops or
 * starts serving, e.g. the DHT switching between client and server) and ping, mDNS when
 * asked for. Shoal's own protocols are bound to it by the protocol driver; discovery and
 * dialling policy live in the membership core, so the host dials nobody on its own.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { identify, identifyPush, type Identify, type IdentifyPush } from '@libp2p/identify'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import { mdns } from '@libp2p/mdns'
import { ping, type Ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { ConnectionGuard, type ConnectionLimits, type ConnectionRefusal } from './connection-guard.ts'

const LIBP2P_INBOUND_RATE_UNLIMITED = 1_000_000
const INBOUND_PENDING_MAX = 256

export type ShoalHost = Libp2p<{ identify: Identify; identifyPush: IdentifyPush; ping: Ping }>

/** mDNS service name: Shoal peers find each other, not every libp2p node on the LAN. */
export const MDNS_SERVICE_TAG = '_shoal-p2p._udp.local'

export interface HostOptions {
  privateKey: PrivateKey
  listen: readonly string[]
  announce: readonly string[]
  mdns: boolean
  limits: ConnectionLimits
  agentVersion: string
  now: () => number
  onConnectionRefused: (reason: ConnectionRefusal) => void
}

export async function createHost(options: HostOptions): Promise<ShoalHost> {
  const { limits } = options
  const guard = new ConnectionGuard(limits, options.now, options.onConnectionRefused)
  const host = await createLibp2p({
    privateKey: options.privateKey,
    nodeInfo: { userAgent: options.agentVersion },
    addresses: { listen: [...options.listen], announce: [...options.announce] },
    transports: [tcp(), webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ maxInboundStreams: limits.streamsPerConnectionMax })],
    connectionGater: guard.gater(),
    connectionManager: {
      maxConnections: limits.connectionsMax,
      // The guard enforces the per-IP rate and counts its refusals; libp2p's own check
      // would refuse first, uncounted, so it is set out of the way.
      inboundConnectionThreshold: LIBP2P_INBOUND_RATE_UNLIMITED,
      // Handshakes in progress. libp2p refuses beyond this before the guard sees the
      // connection, uncounted, so it is set above what the guard's rate lets through.
      maxIncomingPendingConnections: INBOUND_PENDING_MAX,
      dialTimeout: 10_000,
    },
    peerDiscovery: options.mdns ? [mdns({ serviceTag: MDNS_SERVICE_TAG, interval: 5_000 })] : [],
    services: {
      identify: identify(),
      identifyPush: identifyPush(),
      ping: ping(),
    },
    start: false,
  })
  guard.openConnections = () => host.getConnections()
  return host
}
