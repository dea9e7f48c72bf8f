/**
 * The libp2p host: TCP and WebSockets transports, Noise encryption, Yamux multiplexing,
 * identify (and identify-push, so that connected peers learn when a protocol driver stops or
 * starts serving, e.g. the DHT switching between client and server) and ping, mDNS when
 * asked for. For NATs: AutoNAT v2 (client and server), circuit relay v2 (the transport that
 * dials and listens through relays; the relay server, which serves while nat-traversal.ts
 * finds the node public) and WebRTC, whose ICE punches through NATs for direct connections,
 * signalled over a relayed connection. Shoal's own protocols are bound to it by the protocol
 * driver; discovery and dialling policy live in the membership core, so the host dials
 * nobody on its own.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { autoNATv2 } from '@libp2p/autonat-v2'
import { circuitRelayServer, circuitRelayTransport, type CircuitRelayService } from '@libp2p/circuit-relay-v2'
import { identify, identifyPush, type Identify, type IdentifyPush } from '@libp2p/identify'
import type { Address, Libp2p, PrivateKey } from '@libp2p/interface'
import type { AddressManager, Registrar, TransportManager } from '@libp2p/interface-internal'
import { mdns } from '@libp2p/mdns'
import { circuitRelayAddressesLast, loopbackAddressLast, publicAddressesFirst, reliableTransportsFirst } from '@libp2p/utils'
import { CODE_P2P, type Multiaddr } from '@multiformats/multiaddr'
import { ping, type Ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webRTC } from '@libp2p/webrtc'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { createLibp2p, type Libp2pOptions } from 'libp2p'
import { ConnectionGuard, type ConnectionLimits, type ConnectionRefusal } from './connection-guard.ts'

const LIBP2P_INBOUND_RATE_UNLIMITED = 1_000_000

export type ShoalHost = Libp2p<{ identify: Identify; identifyPush: IdentifyPush; ping: Ping; autonat?: unknown; relay?: CircuitRelayService }>

/** A STUN or TURN server for ICE, as RTCIceServer has it. */
export interface IceServer {
  urls: string | string[]
  username?: string
  credential?: string
}

/** What a relay grants each reservation, and how many it holds. */
export interface RelayServerLimits {
  reservationsMax: number
  reservationTtlMs: number
  /** A relayed connection is closed after this long, or after this many bytes each way. */
  connectionDurationMaxMs: number
  connectionBytesMax: number
}

export interface NatOptions {
  autonat: boolean
  /** The relay service's limits; undefined: no relay service, this node never relays. */
  relayServer: RelayServerLimits | undefined
  /** undefined: no WebRTC; iceServers null: libp2p's public STUN servers. */
  holePunching: { iceServers: IceServer[] | null } | undefined
  /** Asked by the connection gater before every dial (NatTraversal.allowsDial). */
  allowsDial: (address: Multiaddr) => boolean
}

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
  /** An address of ours that a peer reported (observed, or a relay's in a reservation) and that was not taken. */
  onAddressRejected: (reason: AddressRejection) => void
  nat: NatOptions
}

/** For hosts that only ever meet peers on their own network, as the benchmarks' hosts on loopback. */
export const NAT_TRAVERSAL_OFF: NatOptions = { autonat: false, relayServer: undefined, holePunching: undefined, allowsDial: () => true }

export async function createHost(options: HostOptions): Promise<ShoalHost> {
  const { limits } = options
  const { nat } = options
  const guard = new ConnectionGuard(limits, options.now, options.onConnectionRefused)
  const listen = [...options.listen]
  const transports: NonNullable<Libp2pOptions['transports']> = [tcp(), webSockets(), circuitRelayTransport({ reservationCompletionTimeout: RESERVATION_TIMEOUT_MS })]
  if (nat.holePunching !== undefined) {
    const { iceServers } = nat.holePunching
    transports.push(webRTC(iceServers === null ? {} : { rtcConfiguration: { iceServers } }))
    // Not an address: registers the signalling handler, so peers can reach us over WebRTC.
    listen.push('/webrtc')
  }
  const relay = nat.relayServer
  const services = {
    identify: identify(),
    identifyPush: identifyPush(),
    ping: ping(),
    ...(nat.autonat ? { autonat: autoNATv2() } : {}),
    ...(relay === undefined ? {} : {
      relay: circuitRelayServer({
        reservations: {
          maxReservations: relay.reservationsMax,
          reservationTtl: relay.reservationTtlMs,
          applyDefaultLimit: true,
          defaultDurationLimit: relay.connectionDurationMaxMs,
          defaultDataLimit: BigInt(relay.connectionBytesMax),
        },
      }),
    }),
  }
  const host = await createLibp2p({
    privateKey: options.privateKey,
    nodeInfo: { userAgent: options.agentVersion },
    addresses: { listen, announce: [...options.announce], announceFilter: (addresses) => addresses.filter(isNetworkAddress) },
    transports,
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ maxInboundStreams: limits.streamsPerConnectionMax })],
    connectionGater: { ...guard.gater(), denyDialMultiaddr: (address) => !nat.allowsDial(address) },
    connectionManager: {
      maxConnections: limits.connectionsMax,
      // The guard enforces the per-IP rate and counts its refusals; libp2p's own check
      // would refuse first, uncounted, so it is set out of the way.
      inboundConnectionThreshold: LIBP2P_INBOUND_RATE_UNLIMITED,
      // Handshakes in progress. libp2p refuses beyond this before the guard sees the
      // connection, uncounted; the guard holds them to handshakesMax, counted. libp2p
      // counts a connection the guard refused or evicted until its teardown has run, which
      // lags under a flood: at 2 × handshakesMax, 22 of 56 newcomers' handshakes were cut
      // uncounted during a flood of 1,000 handshakes a second (README → Floods).
      maxIncomingPendingConnections: 8 * limits.handshakesMax,
      dialTimeout: 10_000,
      addressSorter: webRtcLast,
    },
    peerDiscovery: options.mdns ? [mdns({ serviceTag: MDNS_SERVICE_TAG, interval: 5_000 })] : [],
    services,
    start: false,
  }) as unknown as ShoalHost
  guardAddressManager(hostInternals(host).addressManager, options.onAddressRejected)
  guard.openConnections = () => host.getConnections()
  host.addEventListener('connection:open', (event) => guard.connectionOpened(event.detail.remoteAddr))
  guard.relayReservations = () => host.services.relay?.reservations.values() ?? []
  return host
}

const RESERVATION_TIMEOUT_MS = 10_000

/**
 * libp2p's order (public before private, loopback and relayed last, TCP before the rest),
 * then WebRTC addresses after everything: nat-traversal.ts upgrades a relayed connection to
 * WebRTC itself, since the relayed connection answers at once and ICE may take seconds or fail.
 */
function webRtcLast(a: Address, b: Address): -1 | 0 | 1 {
  return Math.sign(Number(isWebRtc(a.multiaddr)) - Number(isWebRtc(b.multiaddr)) ||
    loopbackAddressLast(a.multiaddr, b.multiaddr) ||
    publicAddressesFirst(a.multiaddr, b.multiaddr) ||
    circuitRelayAddressesLast(a.multiaddr, b.multiaddr) ||
    Number(b.isCertified) - Number(a.isCertified) ||
    reliableTransportsFirst(a.multiaddr, b.multiaddr)) as -1 | 0 | 1
}

export function isWebRtc(address: Multiaddr): boolean {
  return address.getComponents().some((component) => component.name === 'webrtc')
}

/**
 * not-a-network-address: it names no IP or DNS name. observed-address-unreachable: AutoNAT
 * found it could not be dialled (a NAT mapping that is not ours to keep, or a spoofed report).
 */
export type AddressRejection = 'not-a-network-address' | 'observed-address-unreachable'

/** An IP or DNS address (a relayed one starts with its relay's): one a peer could dial. */
function isNetworkAddress(address: Multiaddr): boolean {
  const first = address.getComponents()[0]?.name ?? ''
  return first === 'ip4' || first === 'ip6' || first.startsWith('dns')
}

/**
 * What peers say our addresses are is a claim: an observed address is announced only once
 * AutoNAT has had it dialled (libp2p's address manager), and here is counted when AutoNAT
 * finds it unreachable. libp2p's address manager also throws, from inside event listeners
 * (which kills the process), when asked to confirm an address with no IP or DNS part, such
 * as `/webrtc/p2p/<id>` that a peer reported as observed, or that a relay put in our
 * reservation: such addresses are refused here, before they reach it.
 */
function guardAddressManager(addressManager: AddressManager, onRejected: (reason: AddressRejection) => void): void {
  for (const method of ['addObservedAddr', 'confirmObservedAddr'] as const) {
    const original = addressManager[method].bind(addressManager) as (address: Multiaddr, ...rest: unknown[]) => void
    addressManager[method] = ((address: Multiaddr, ...rest: unknown[]) => {
      if (!isNetworkAddress(address)) return onRejected('not-a-network-address')
      original(address, ...rest)
    }) as AddressManager[typeof method]
  }
  const remove = addressManager.removeObservedAddr.bind(addressManager) as (address: Multiaddr, ...rest: unknown[]) => void
  addressManager.removeObservedAddr = (address: Multiaddr, ...rest: unknown[]) => {
    const bare = address.decapsulateCode(CODE_P2P)
    if (addressManager.getObservedAddrs().some((observed) => observed.decapsulateCode(CODE_P2P).equals(bare))) onRejected('observed-address-unreachable')
    remove(address, ...rest)
  }
}

/** What libp2p keeps internal and NAT traversal needs: listening on relays, addresses' verification, the transports' handlers. */
export interface HostInternals {
  transportManager: TransportManager
  addressManager: AddressManager
  registrar: Registrar
}

export function hostInternals(host: ShoalHost): HostInternals {
  return (host as unknown as { components: HostInternals }).components
}
