/**
 * Dht: the Kademlia DHT in the daemon. Runs the Kad core (core/kad) over the host with the
 * protocol driver in its request/response style, persists the records the core stores
 * (store/dht-records.ts; in memory for nodes without a repository, as in bench/dht.ts),
 * decides the mode (server, client, or auto from the node's addresses), and turns queries
 * into promises for the API. Reads the clock for the driver.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { CODE_P2P, type Multiaddr } from '@multiformats/multiaddr'
import { ShoalError } from '../core/errors.ts'
import { DEFAULT_KAD_CONFIG, Kad, type KadAction, type KadCommand, type KadEvent, type KadInput, type KadMode, type QueryId } from '../core/kad/kad.ts'
import { reachabilityOf } from '../net/nat-traversal.ts'
import { keyFromBytes, type Key } from '../core/kad/key.ts'
import { KAD_LIMITS, type KadMessage, type KadPeer } from '../core/kad/messages.ts'
import { DEFAULT_RECORD_VALIDATORS } from '../core/kad/validators.ts'
import { Prng } from '../core/prng.ts'
import { asPeerId, type DiscoverySource, type PeerId } from '../core/sans-io.ts'
import type { ShoalHost } from '../net/host.ts'
import type { DriverMetrics } from '../net/metrics.ts'
import { type HostAction, ProtocolDriver } from '../net/protocol-driver.ts'
import type { DhtRecordStore } from '../store/dht-records.ts'
import { kadCodec } from '../wire/kad.ts'
import type { DhtPeer, DhtQueryResult, DhtTable } from './api.ts'
import type { Config } from './config.ts'

export type DhtModeSetting = Config['dht']['mode']


type KadAppAction = HostAction<KadMessage, KadAction, 'requests'>
type KadDriver = ProtocolDriver<KadMessage, KadInput, KadAction, 'requests'>
type QueryEvent = Exclude<KadEvent, { type: 'query-done' }>
type QueryDone = Extract<KadEvent, { type: 'query-done' }>

interface PendingQuery {
  onEvent(event: QueryEvent): void
  resolve(done: QueryDone): void
}

/** Pinned roots provided at once when the daemon starts; the rest wait their turn. */
const PROVIDES_AT_ONCE_MAX = 8
const RECORDS_FLUSH_INTERVAL_MS = 1_000
/** Peer keys cached (a hash each); the cache is dropped whole when full. */
const PEER_KEYS_CACHED_MAX = 10_000

export class Dht {
  readonly core: Kad
  readonly #host: ShoalHost
  readonly #driver: KadDriver
  readonly #records: DhtRecordStore
  readonly #modeSetting: DhtModeSetting
  readonly #pending = new Map<QueryId, PendingQuery>()
  readonly #flushTimer: NodeJS.Timeout
  #nextQueryId: QueryId = 1
  #stopped = false

  private constructor(host: ShoalHost, core: Kad, driver: KadDriver, records: DhtRecordStore, modeSetting: DhtModeSetting) {
    this.#host = host
    this.core = core
    this.#driver = driver
    this.#records = records
    this.#modeSetting = modeSetting
    this.#flushTimer = setInterval(() => void this.#flush(), RECORDS_FLUSH_INTERVAL_MS).unref()
  }

  static async start(host: ShoalHost, settings: Config['dht'], metrics: DriverMetrics, records: DhtRecordStore): Promise<Dht> {
    const self = asPeerId(host.peerId.toString())
    const keys = new Map<PeerId, Key>()
    const mode = modeFor(settings.mode, host.getMultiaddrs())
    const core = new Kad({
      ...DEFAULT_KAD_CONFIG,
      self,
      keyOfPeer: (peer) => {
        let key = keys.get(peer)
        if (key === undefined) {
          if (keys.size >= PEER_KEYS_CACHED_MAX) keys.clear()
          key = keyFromBytes(peerIdBytes(peer))
          keys.set(peer, key)
        }
        return key
      },
      peerIdBytes,
      prng: Prng.fromSeed(`${self}:${Date.now()}`).fork('kad'),
      mode,
      routing: {
        ...DEFAULT_KAD_CONFIG.routing,
        privateAddressesExempt: settings.privateAddressesExempt,
        ipGroupPerBucketMax: settings.ipGroupPerBucketMax,
        ipGroupPerTableMax: settings.ipGroupPerTableMax,
      },
      disjointPaths: settings.disjointPaths,
      providers: { ...DEFAULT_KAD_CONFIG.providers, providerRecordsMax: settings.providerRecordsMax },
      values: { ...DEFAULT_KAD_CONFIG.values, valueRecordsMax: settings.valueRecordsMax },
      validators: DEFAULT_RECORD_VALIDATORS,
    }, Date.now())
    metrics.registerCoreCounters('kad', 'Kademlia DHT events', core.counters)
    // Set before the driver starts, which is before it can act.
    let dht: Dht | undefined
    const driver: KadDriver = new ProtocolDriver({
      libp2p: host,
      codec: kadCodec(settings.protocol),
      core,
      now: Date.now,
      metrics,
      style: 'requests',
      serve: mode === 'server',
      onAction: (action) => dht!.#onAction(action),
    })
    dht = new Dht(host, core, driver, records, settings.mode)
    const stored = await records.load(Date.now())
    await driver.start()
    driver.input({ type: 'restore', providers: stored.providers, values: stored.values })
    dht.#onAddressesChanged()
    host.addEventListener('self:peer:update', dht.#onAddressesChanged)
    return dht
  }

  get mode(): KadMode {
    return this.core.mode
  }

  discovered(peer: string, addresses: readonly string[], source: DiscoverySource): void {
    if (this.#stopped) return
    this.#driver.input({ type: 'peer-discovered', peer: asPeerId(peer), addresses, source })
  }

  async findPeer(peerIdText: string, signal?: AbortSignal): Promise<DhtPeer & DhtQueryResult> {
    const target = parsePeer(peerIdText)
    let found: KadPeer | undefined
    const done = await this.#query((queryId) => ({ type: 'find-peer', queryId, peer: target }), (event) => {
      if (event.type === 'peer-found') found = event.peer
    }, signal)
    if (found === undefined) throw new ShoalError('NOT_FOUND', `peer ${peerIdText} was not found in the DHT (${done.outcome})`)
    return { peerId: found.id, addresses: [...found.addresses], outcome: done.outcome, stats: done.stats }
  }

  /** Providers of a multihash; `onProvider` sees each as it arrives. */
  async findProviders(multihash: Uint8Array, countMax: number, onProvider?: (provider: DhtPeer) => void, signal?: AbortSignal): Promise<{ providers: DhtPeer[] } & DhtQueryResult> {
    const providers: DhtPeer[] = []
    const done = await this.#query((queryId) => ({ type: 'find-providers', queryId, key: multihash, countMax }), (event) => {
      if (event.type !== 'provider') return
      const provider = { peerId: event.provider.id, addresses: [...event.provider.addresses] }
      providers.push(provider)
      onProvider?.(provider)
    }, signal)
    return { providers, outcome: done.outcome, stats: done.stats }
  }

  async provide(multihash: Uint8Array, signal?: AbortSignal): Promise<{ storedCount: number } & DhtQueryResult> {
    const done = await this.#query((queryId) => ({ type: 'provide', queryId, key: multihash }), () => {}, signal)
    return { storedCount: done.storedCount ?? 0, outcome: done.outcome, stats: done.stats }
  }

  /** Provides many keys in the background, a few at a time (pinned roots at start). */
  provideInBackground(multihashes: readonly Uint8Array[]): void {
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < multihashes.length && !this.#stopped) await this.provide(multihashes[next++]!).catch(() => {})
    }
    for (let index = 0; index < Math.min(PROVIDES_AT_ONCE_MAX, multihashes.length); index++) void worker()
  }

  async getValue(keyText: string, signal?: AbortSignal): Promise<{ value: Uint8Array } & DhtQueryResult> {
    const key = parseRecordKey(keyText)
    const done = await this.#query((queryId) => ({ type: 'get-value', queryId, key }), () => {}, signal)
    if (done.value === undefined) throw new ShoalError('NOT_FOUND', `no valid record for the key in the DHT (${done.outcome})`)
    return { value: done.value, outcome: done.outcome, stats: done.stats }
  }

  async putValue(keyText: string, value: Uint8Array, signal?: AbortSignal): Promise<{ storedCount: number } & DhtQueryResult> {
    const key = parseRecordKey(keyText)
    if (value.byteLength > KAD_LIMITS.valueBytesMax) throw new ShoalError('INVALID_ARGUMENT', `the value has ${value.byteLength} bytes; the DHT takes ${KAD_LIMITS.valueBytesMax} at most`)
    const done = await this.#query((queryId) => ({ type: 'put-value', queryId, key, value }), () => {}, signal)
    if (done.outcome === 'invalid-record') throw new ShoalError('INVALID_ARGUMENT', 'the value is not a valid record for its key')
    return { storedCount: done.storedCount ?? 0, outcome: done.outcome, stats: done.stats }
  }

  table(): DhtTable {
    const buckets = this.core.buckets().map((bucket) => ({
      index: bucket.index,
      contacts: bucket.contacts.map((contact) => ({ peerId: contact.peer, addresses: [...contact.addresses], lastSeenMs: contact.lastSeenMs })),
      replacementCount: bucket.replacements.length,
    }))
    return { mode: this.core.mode, size: this.core.tableSize, buckets }
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#flushTimer)
    this.#host.removeEventListener('self:peer:update', this.#onAddressesChanged)
    await this.#driver.stop()
    for (const pending of this.#pending.values()) pending.resolve(cancelled())
    this.#pending.clear()
    await this.#flush()
  }

  #query(command: (queryId: QueryId) => KadCommand, onEvent: (event: QueryEvent) => void, signal: AbortSignal | undefined): Promise<QueryDone> {
    if (this.#stopped) return Promise.reject(new ShoalError('OFFLINE', 'the DHT is stopped'))
    signal?.throwIfAborted()
    const queryId = this.#nextQueryId++
    const { promise, resolve } = Promise.withResolvers<QueryDone>()
    const onAbort = (): void => this.#driver.input({ type: 'cancel', queryId })
    this.#pending.set(queryId, {
      onEvent,
      resolve: (done) => {
        signal?.removeEventListener('abort', onAbort)
        resolve(done)
      },
    })
    signal?.addEventListener('abort', onAbort, { once: true })
    this.#driver.input(command(queryId))
    return promise
  }

  #onAction(action: KadAppAction): void {
    if (action.type === 'persist') return this.#records.apply(action.change)
    const { event } = action
    const pending = this.#pending.get(event.queryId)
    if (pending === undefined) return
    if (event.type !== 'query-done') return pending.onEvent(event)
    this.#pending.delete(event.queryId)
    pending.resolve(event)
  }

  readonly #onAddressesChanged = (): void => {
    if (this.#stopped) return
    const addresses = this.#host.getMultiaddrs()
    this.#driver.input({ type: 'set-addresses', addresses: addresses.map((address) => address.decapsulateCode(CODE_P2P).toString()) })
    const mode = modeFor(this.#modeSetting, addresses)
    if (mode === this.core.mode) return
    this.#driver.input({ type: 'set-mode', mode })
    void this.#driver.setServing(mode === 'server')
  }

  async #flush(): Promise<void> {
    await this.#records.flush().catch(() => {
      // The datastore is closing; records are re-announced by their providers anyway.
    })
  }
}

function peerIdBytes(peer: PeerId): Uint8Array {
  return peerIdFromString(peer).toMultihash().bytes
}

function parsePeer(text: string): PeerId {
  try {
    return asPeerId(peerIdFromString(text).toString())
  } catch {
    throw new ShoalError('INVALID_ARGUMENT', `not a peer id: ${text}`)
  }
}

/** `/ipns/<peer id>` or `/pk/<peer id>`: the namespace, then the peer id's multihash bytes. */
export function parseRecordKey(text: string): Uint8Array {
  const match = /^\/(ipns|pk)\/([^/]+)$/.exec(text)
  if (match === null) throw new ShoalError('INVALID_ARGUMENT', `not a DHT record key: ${text} (expected /ipns/<peer id> or /pk/<peer id>)`)
  let multihash: Uint8Array
  try {
    multihash = peerIdFromString(match[2]!).toMultihash().bytes
  } catch {
    throw new ShoalError('INVALID_ARGUMENT', `not a peer id: ${match[2]}`)
  }
  const prefix = new TextEncoder().encode(`/${match[1]}/`)
  const key = new Uint8Array(prefix.byteLength + multihash.byteLength)
  key.set(prefix)
  key.set(multihash, prefix.byteLength)
  return key
}

function cancelled(): QueryDone {
  return { type: 'query-done', queryId: 0, kind: 'find-closest', outcome: 'cancelled', closest: [], stats: { hops: 0, requests: 0, failures: 0, durationMs: 0, firstResultMs: undefined } }
}

/**
 * auto: a server while the node is public: one of its addresses (libp2p lists only verified
 * ones: confirmed by AutoNAT, or announced) is a public IP or a DNS name, not through a relay.
 */
export function modeFor(setting: DhtModeSetting, addresses: readonly Multiaddr[]): KadMode {
  if (setting !== 'auto') return setting
  return reachabilityOf(addresses.map((multiaddr) => ({ multiaddr, verified: true }))) === 'public' ? 'server' : 'client'
}
