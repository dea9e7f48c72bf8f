/**
 * Network: the node on the network, in the daemon. Composes the libp2p host (net/host.ts),
 * the membership core driven over /shoal/membership/1.0.0 by the protocol driver, the DHT
 * (node/dht.ts), pub/sub (node/pubsub.ts), the discovery sources that feed membership and
 * the DHT (bootstrap list, peer cache, mDNS, identify) and the peer cache it fills. Reads
 * the clock for the driver.
 */
import type { Connection, PeerId as Libp2pPeerId } from '@libp2p/interface'
import { CODE_P2P, isMultiaddr, multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { DEFAULT_MEMBERSHIP_CONFIG, Membership, type MembershipAction, type MembershipInput, type MembershipMessage } from '../core/membership/membership.ts'
import { Prng } from '../core/prng.ts'
import { asPeerId, type DiscoverySource } from '../core/sans-io.ts'
import { ShoalError } from '../core/errors.ts'
import { createHost, type ShoalHost } from '../net/host.ts'
import { NodeMetrics } from '../net/metrics.ts'
import { NatTraversal } from '../net/nat-traversal.ts'
import { ProtocolDriver } from '../net/protocol-driver.ts'
import type { PeerCache } from '../store/peer-cache.ts'
import { membershipCodec } from '../wire/membership.ts'
import { SHOAL_AGENT_VERSION } from '../version.ts'
import { parseBootstrapAddress, parseMultiaddr, parsePeerId } from './addresses.ts'
import type { ConnectResult, NodeStats, PeerInfo } from './api.ts'
import { Dht } from './dht.ts'
import { PubSub } from './pubsub.ts'
import { Swarm } from './swarm.ts'
import type { Repo } from './repo.ts'

export interface NetworkOptions {
  /** Replace config network.listen. */
  listen?: readonly string[]
  /** Dialled at start besides config network.bootstrap. */
  bootstrap?: readonly string[]
  /** false turns mDNS off whatever the config says. */
  mdns?: boolean
  /** Replace config swarm.uploadBytesPerSecondMax and downloadBytesPerSecondMax. */
  uploadBytesPerSecondMax?: number
  downloadBytesPerSecondMax?: number
}

const HOUR_MS = 3_600_000
const PEER_CACHE_SAVE_INTERVAL_MS = 5 * 60_000
const DIAL_TIMEOUT_MS = 15_000
const CONNECT_WAIT_DIRECT_MAX_MS = 60_000
const DIRECT_POLL_MS = 20

export class Network {
  readonly host: ShoalHost
  readonly metrics: NodeMetrics
  readonly dht: Dht
  readonly pubsub: PubSub
  readonly swarm: Swarm
  readonly nat: NatTraversal
  readonly #membership: Membership
  readonly #driver: ProtocolDriver<MembershipMessage, MembershipInput, MembershipAction>
  readonly #peerCache: PeerCache
  readonly #saveTimer: NodeJS.Timeout

  private constructor(host: ShoalHost, metrics: NodeMetrics, dht: Dht, pubsub: PubSub, swarm: Swarm, nat: NatTraversal, membership: Membership, driver: ProtocolDriver<MembershipMessage, MembershipInput, MembershipAction>, peerCache: PeerCache) {
    this.host = host
    this.metrics = metrics
    this.dht = dht
    this.pubsub = pubsub
    this.swarm = swarm
    this.nat = nat
    this.#membership = membership
    this.#driver = driver
    this.#peerCache = peerCache
    this.#saveTimer = setInterval(() => void this.#savePeerCache(), PEER_CACHE_SAVE_INTERVAL_MS).unref()
  }

  static async start(repo: Repo, options: NetworkOptions = {}): Promise<Network> {
    const settings = repo.config.network
    const bootstrap = [...settings.bootstrap, ...(options.bootstrap ?? [])].map((address) => parseBootstrapAddress(address))
    const listen = options.listen ?? settings.listen
    for (const address of [...listen, ...settings.announce]) parseMultiaddr(address, 'address')
    let host: ShoalHost | undefined
    const metrics = new NodeMetrics(() => (host?.getConnections() ?? []).map((connection) => ({
      direction: connection.direction,
      relayed: connection.limits !== undefined,
      streamProtocols: connection.streams.map((stream) => stream.protocol),
    })))
    const nat = repo.config.nat
    const natTraversal = new NatTraversal({
      relayServer: nat.relayServer.mode,
      relayClient: nat.relayClient.mode,
      reservations: nat.relayClient.reservations,
      holePunching: nat.holePunching.enabled,
    }, Date.now)
    host = await createHost({
      privateKey: repo.identity.privateKey,
      listen,
      announce: settings.announce,
      mdns: (options.mdns ?? true) && settings.mdns,
      limits: {
        connectionsMax: settings.connections.max,
        perIpMax: settings.connections.perIpMax,
        inboundPerIpPerSecondMax: settings.connections.inboundPerIpPerSecondMax,
        streamsPerConnectionMax: settings.connections.streamsPerConnectionMax,
        handshakesMax: settings.connections.handshakesMax,
        handshakesPerIpMax: settings.connections.handshakesPerIpMax,
        relayReservationsPerIpMax: nat.relayServer.reservationsPerIpMax,
      },
      agentVersion: SHOAL_AGENT_VERSION,
      now: Date.now,
      onConnectionRefused: (reason) => metrics.connectionRefused(reason),
      onAddressRejected: (reason) => metrics.rejected('address-manager', reason),
      nat: {
        autonat: nat.autonat,
        relayServer: nat.relayServer.mode === 'off' ? undefined : {
          reservationsMax: nat.relayServer.reservationsMax,
          reservationTtlMs: nat.relayServer.reservationTtlSeconds * 1_000,
          connectionDurationMaxMs: nat.relayServer.connectionSecondsMax * 1_000,
          connectionBytesMax: nat.relayServer.connectionBytesMax,
        },
        holePunching: nat.holePunching.enabled ? { iceServers: nat.holePunching.iceServers } : undefined,
        allowsDial: (address) => natTraversal.allowsDial(address),
      },
    })
    metrics.registerCoreCounters('nat', 'NAT traversal: reachability, relaying, reservations, upgrades of relayed connections', natTraversal.counters)
    const self = asPeerId(host.peerId.toString())
    const membership = new Membership(
      { ...DEFAULT_MEMBERSHIP_CONFIG, self, degreeTarget: settings.degreeTarget },
      Prng.fromSeed(`${self}:${Date.now()}`).fork('membership'),
    )
    metrics.registerCoreCounters('membership', 'Membership protocol events', membership.counters)
    const peerCache = repo.datastore.peerCache({ max: settings.peerCache.max, ageMaxMs: settings.peerCache.ageMaxHours * HOUR_MS })
    const driver = new ProtocolDriver<MembershipMessage, MembershipInput, MembershipAction>({
      libp2p: host,
      codec: membershipCodec,
      core: membership,
      now: Date.now,
      metrics,
      onAction: (action) => {
        if (action.type !== 'emit' || action.event.type !== 'peer-alive') return
        const { peer, addresses, rttMs } = action.event
        peerCache.seen({ peer, addresses: [...addresses], lastSeenMs: Date.now(), rttMs })
      },
    })
    let dht: Dht | undefined
    let pubsub: PubSub | undefined
    let swarm: Swarm
    try {
      await host.start()
      await natTraversal.start(host)
      await driver.start()
      dht = await Dht.start(host, repo.config.dht, metrics, repo.datastore.dhtRecords())
      pubsub = await PubSub.start(host, repo.identity.privateKey, repo.config.pubsub, metrics)
      const ledger = repo.datastore.ledger()
      await ledger.load()
      const swarmSettings = {
        ...repo.config.swarm,
        uploadBytesPerSecondMax: options.uploadBytesPerSecondMax ?? repo.config.swarm.uploadBytesPerSecondMax,
        downloadBytesPerSecondMax: options.downloadBytesPerSecondMax ?? repo.config.swarm.downloadBytesPerSecondMax,
      }
      swarm = await Swarm.start(host, { blocks: repo.blocks, pins: repo.datastore.pins, ledger, gcLock: repo.gcLock }, dht, pubsub, swarmSettings, metrics)
    } catch (error) {
      await pubsub?.stop()
      await dht?.stop()
      natTraversal.stop()
      await host.stop()
      throw error
    }
    const network = new Network(host, metrics, dht, pubsub, swarm, natTraversal, membership, driver, peerCache)
    host.addEventListener('peer:discovery', (event) => network.#discovered(event.detail.id.toString(), event.detail.multiaddrs, 'mdns'))
    host.addEventListener('peer:identify', (event) => network.#discovered(event.detail.peerId.toString(), event.detail.listenAddrs, 'identify'))
    for (const cached of await peerCache.load(Date.now())) network.#discovered(cached.peer, cached.addresses.map((address) => multiaddr(address)), 'cache')
    for (const { peer, address } of bootstrap) network.#discovered(peer, [address], 'bootstrap')
    return network
  }

  listenAddresses(): string[] {
    return this.host.getMultiaddrs().map((address) => address.decapsulateCode(CODE_P2P).toString())
  }

  announcedAddresses(): string[] {
    return this.host.getMultiaddrs().map(String)
  }

  peers(): PeerInfo[] {
    const byPeer = new Map<string, PeerInfo>()
    for (const connection of this.host.getConnections()) {
      const peerId = connection.remotePeer.toString()
      let info = byPeer.get(peerId)
      if (info === undefined) {
        const latencyMs = this.#membership.rttMs(asPeerId(peerId)) ?? connection.rtt
        info = { peerId, connections: [], latencyMs: latencyMs ?? null }
        byPeer.set(peerId, info)
      }
      info.connections.push({
        remoteAddress: connection.remoteAddr.toString(),
        direction: connection.direction,
        relayed: connection.limits !== undefined,
        openedMs: connection.timeline.open,
      })
    }
    return [...byPeer.values()].sort((a, b) => a.peerId.localeCompare(b.peerId))
  }

  async connect(address: string, waitDirectMs: number): Promise<ConnectResult> {
    if (waitDirectMs > CONNECT_WAIT_DIRECT_MAX_MS) throw new ShoalError('INVALID_ARGUMENT', `wait-direct-ms: at most ${CONNECT_WAIT_DIRECT_MAX_MS}`)
    const startedMs = performance.now()
    const signal = AbortSignal.timeout(DIAL_TIMEOUT_MS)
    const target = address.startsWith('/') ? parseMultiaddr(address, 'address') : peerIdOrInvalid(address)
    let connection: Connection
    try {
      if (isMultiaddr(target)) {
        connection = await this.host.dial(target, { signal })
      } else {
        const peer = target
        const found = await this.dht.findPeer(address, signal)
        await this.host.peerStore.merge(peer, { multiaddrs: found.addresses.map((text) => multiaddr(text)) })
        connection = await this.host.dial(peer, { signal })
      }
    } catch (error) {
      if (error instanceof ShoalError) throw error
      throw new ShoalError('DIAL_FAILED', `could not connect to ${address}: ${dialFailure(error as Error)}`, { cause: error })
    }
    const connectMs = performance.now() - startedMs
    const peer = connection.remotePeer
    let firstByteMs: number | null = null
    try {
      await firstByteOfPing(connection)
      firstByteMs = performance.now() - startedMs
    } catch {
      // Reported as null: connected, but no answer.
    }
    const relayed = connection.limits !== undefined
    if (relayed && waitDirectMs > 0) await this.#directConnection(peer, waitDirectMs)
    const outcome = this.nat.upgradeOutcome(peer)
    const directAtMs = outcome?.directAtMs
    return {
      peerId: peer.toString(),
      relayed,
      connectMs,
      firstByteMs,
      upgradeMs: relayed && directAtMs !== undefined ? directAtMs - outcome!.relayedAtMs : null,
      upgradeAttempts: outcome?.attempts ?? 0,
    }
  }

  /** Resolves when a direct connection to `peer` is open, or after `waitMs`. */
  async #directConnection(peer: Libp2pPeerId, waitMs: number): Promise<void> {
    const isDirect = (): boolean => this.host.getConnections(peer).some((connection) => connection.status === 'open' && connection.limits === undefined)
    const deadline = Date.now() + waitMs
    while (!isDirect() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, DIRECT_POLL_MS))
  }

  async disconnect(peerIdText: string): Promise<void> {
    const peer = parsePeerId(peerIdText)
    if (this.host.getConnections(peer).length === 0) throw new ShoalError('NOT_FOUND', `not connected to ${peerIdText}`)
    await this.host.hangUp(peer)
  }

  stats(): Promise<NodeStats> {
    return this.metrics.summary()
  }

  /** Stops accepting, lets the drivers finish in-flight writes, saves the peer cache. */
  async stop(): Promise<void> {
    clearInterval(this.#saveTimer)
    // First: fetches and subscribers are told it stopped while the rest still runs.
    await this.swarm.stop()
    await this.pubsub.stop()
    await Promise.all([this.#driver.stop(), this.dht.stop()])
    await this.#savePeerCache()
    this.nat.stop()
    await this.host.stop()
  }

  #discovered(peer: string, addresses: readonly Multiaddr[], source: DiscoverySource): void {
    if (peer === this.host.peerId.toString()) return
    const texts = addresses.map(String)
    this.#driver.input({ type: 'peer-discovered', peer: asPeerId(peer), addresses: texts, source })
    this.dht.discovered(peer, texts, source)
  }

  async #savePeerCache(): Promise<void> {
    await this.#peerCache.save(Date.now()).catch(() => {
      // The datastore is closing or full; the cache is a hint, and the next save retries.
    })
  }
}

const PING_PROTOCOL = '/ipfs/ping/1.0.0'
const PING_BYTES = 32

/** Sends a ping on this very connection (libp2p's ping service would dial anew past a relayed one) and resolves at the first byte back. */
async function firstByteOfPing(connection: Connection): Promise<void> {
  const signal = AbortSignal.timeout(DIAL_TIMEOUT_MS)
  const stream = await connection.newStream(PING_PROTOCOL, { signal, runOnLimitedConnection: true })
  try {
    const answered = new Promise<void>((resolve, reject) => {
      stream.addEventListener('message', () => resolve(), { once: true })
      stream.addEventListener('close', () => reject(new Error('ping stream closed')), { once: true })
      signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true })
    })
    stream.send(crypto.getRandomValues(new Uint8Array(PING_BYTES)))
    await answered
  } finally {
    stream.abort(new Error('ping done'))
  }
}

/** libp2p's message, and for a dial of several addresses, why each failed. */
function dialFailure(error: Error): string {
  if (!(error instanceof AggregateError)) return error.message
  const reasons = [...new Set(error.errors.map((each: Error) => each.message))]
  return `${error.message} (${reasons.join('; ')})`
}

function peerIdOrInvalid(text: string): Libp2pPeerId {
  try {
    return parsePeerId(text)
  } catch {
    throw new ShoalError('INVALID_ARGUMENT', `invalid address '${text}': neither a multiaddr nor a peer id`)
  }
}
