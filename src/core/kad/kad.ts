/**
 * Kad: the Kademlia DHT core (libp2p kad-dht spec; Maymounkov and Mazières). It owns the
 * routing table, the lookups in progress, the records stored for others, and the keys this
 * node provides; it answers FIND_NODE, GET_PROVIDERS, ADD_PROVIDER, GET_VALUE, PUT_VALUE
 * and PING, and runs the application's queries as iterative lookups (α parallel requests,
 * optional disjoint paths), streaming results as `emit` actions.
 *
 * Request/response form of the sans-IO contract: driven by net/ (ProtocolDriver, style
 * 'requests') and by sim/. Persistence is the node's: the core emits `persist` actions for
 * every record it stores or drops and takes them back with `restore` at start.
 */
import type { Prng } from '../prng.ts'
import type { Core, Millis, NetworkInput, PeerId, RequestAction, RequestId, RequestInput } from '../sans-io.ts'
import { bytesEqual, keyFromBytes, type Key } from './key.ts'
import { Lookup, type Candidate, type LookupPeer } from './lookup.ts'
import { KAD_LIMITS, type KadMessage, type KadMessageType, type KadPeer } from './messages.ts'
import { hexOf, ProviderStore, ValueStore, type ProviderRecord, type ProviderStoreLimits, type ValueRecord, type ValueStoreLimits } from './records.ts'
import { REFRESH_PREFIX_LENGTH_MAX, refreshPreimage } from './refresh-targets.ts'
import { DEFAULT_ROUTING_TABLE_CONFIG, RoutingTable, type BucketView, type RoutingTableConfig } from './routing-table.ts'
import { namespaceOf, validateRecord, type RecordValidators } from './validators.ts'

export type KadMode = 'server' | 'client'

export type QueryId = number

export type QueryKind = 'find-peer' | 'find-providers' | 'find-closest' | 'provide' | 'get-value' | 'put-value' | 'refresh'

export interface KadConfig {
  self: PeerId
  /** SHA-256 of the peer id's bytes: its place in the key space. */
  keyOfPeer(peer: PeerId): Key
  /** The peer id's bytes, as FIND_NODE carries them. */
  peerIdBytes(peer: PeerId): Uint8Array
  prng: Prng
  mode: KadMode
  routing: Omit<RoutingTableConfig, 'self'>
  /** Requests in flight per lookup path (α). */
  alpha: number
  /** S/Kademlia disjoint paths (d) for lookups of providers and values (to read or store them); 1 is a plain lookup. */
  disjointPaths: number
  requestTimeoutMs: number
  queryTimeoutMs: number
  /** Application queries run at once; more wait in a queue of queriesQueuedMax. */
  queriesMax: number
  queriesQueuedMax: number
  /** Valid values a get-value collects before it stops (the spec's Q). */
  valueQuorum: number
  providerRecordTtlMs: number
  providerRepublishIntervalMs: number
  valueRecordTtlMs: number
  /** Providers returned in one GET_PROVIDERS answer. */
  providersPerAnswerMax: number
  providers: ProviderStoreLimits
  values: ValueStoreLimits
  /** ADD_PROVIDER and PUT_VALUE accepted from one peer: a token bucket. */
  writesPerPeerBurst: number
  writesPerPeerPerSecond: number
  expirySweepIntervalMs: number
  /** A self-lookup at most this often while the table is short of k contacts. */
  selfLookupIntervalMs: number
  /** Discovered peers pinged at once while the table is short of k contacts. */
  discoveryPingsMax: number
  /** After the self-lookup that joins the network, refresh every bucket at once (as go-libp2p-kad-dht does at start). */
  refreshOnJoin: boolean
  validators: RecordValidators
}

export const DEFAULT_KAD_CONFIG: Omit<KadConfig, 'self' | 'keyOfPeer' | 'peerIdBytes' | 'prng' | 'mode' | 'validators'> = {
  routing: DEFAULT_ROUTING_TABLE_CONFIG,
  alpha: 3,
  disjointPaths: 1,
  requestTimeoutMs: 5_000,
  queryTimeoutMs: 60_000,
  queriesMax: 32,
  queriesQueuedMax: 1_024,
  valueQuorum: 16,
  providerRecordTtlMs: 48 * 3_600_000,
  providerRepublishIntervalMs: 22 * 3_600_000,
  valueRecordTtlMs: 48 * 3_600_000,
  providersPerAnswerMax: 20,
  providers: { providersPerKeyMax: 64, providerRecordsMax: 100_000 },
  values: { valueRecordsMax: 10_000, valueBytesTotalMax: 64 * 1024 * 1024 },
  writesPerPeerBurst: 200,
  writesPerPeerPerSecond: 10,
  expirySweepIntervalMs: 5 * 60_000,
  selfLookupIntervalMs: 60_000,
  discoveryPingsMax: 8,
  refreshOnJoin: true,
}

export type KadCommand =
  | { type: 'find-peer'; queryId: QueryId; peer: PeerId }
  | { type: 'find-providers'; queryId: QueryId; key: Uint8Array; countMax: number }
  /** The k closest peers to a key (its bytes are hashed, as for any DHT key). */
  | { type: 'find-closest'; queryId: QueryId; key: Uint8Array }
  /** Announce this node as a provider of `key` (a multihash), and again every republish interval until unprovide. */
  | { type: 'provide'; queryId: QueryId; key: Uint8Array }
  | { type: 'unprovide'; key: Uint8Array }
  | { type: 'get-value'; queryId: QueryId; key: Uint8Array }
  | { type: 'put-value'; queryId: QueryId; key: Uint8Array; value: Uint8Array }
  | { type: 'cancel'; queryId: QueryId }
  | { type: 'set-mode'; mode: KadMode }
  /** This node's own addresses, sent with its provider records. */
  | { type: 'set-addresses'; addresses: readonly string[] }
  /** Records persisted by an earlier run; expired ones are dropped. */
  | { type: 'restore'; providers: readonly ProviderRecord[]; values: readonly ValueRecord[] }

export type KadInput = Exclude<NetworkInput<KadMessage>, { type: 'message' }> | RequestInput<KadMessage> | KadCommand

export interface QueryStats {
  /** Requests deep at which the result was reached: the answer's hop, or the deepest of the k closest. */
  hops: number
  requests: number
  failures: number
  durationMs: Millis
  /** From start to the first provider, value or peer found; undefined if none. */
  firstResultMs: Millis | undefined
}

/** `invalid-record`: put-value of a value its key's validator refuses. */
export type QueryOutcome = 'ok' | 'not-found' | 'timeout' | 'cancelled' | 'no-peers' | 'busy' | 'invalid-record'

export type KadEvent =
  | { type: 'provider'; queryId: QueryId; provider: KadPeer }
  | { type: 'value'; queryId: QueryId; from: PeerId; value: Uint8Array }
  | { type: 'peer-found'; queryId: QueryId; peer: KadPeer }
  | {
    type: 'query-done'
    queryId: QueryId
    kind: QueryKind
    outcome: QueryOutcome
    stats: QueryStats
    /** The closest peers that answered, closest first (k at most). */
    closest: readonly PeerId[]
    /** get-value: the best value found. */
    value?: Uint8Array
    /** provide and put-value: peers that took the record. */
    storedCount?: number
  }

export type RecordChange =
  | { op: 'put-provider'; record: ProviderRecord }
  | { op: 'delete-provider'; key: Uint8Array; provider: PeerId }
  | { op: 'put-value'; record: ValueRecord }
  | { op: 'delete-value'; key: Uint8Array }

export type KadAction =
  | RequestAction<KadMessage>
  | { type: 'emit'; event: KadEvent }
  | { type: 'persist'; change: RecordChange }

export interface KadCounters {
  requestsSent: number
  responsesReceived: number
  requestsFailed: number
  requestsTimedOut: number
  requestsServed: number
  /** Inbound requests while a client, or of a type not served. */
  requestsIgnored: number
  responsesUnexpected: number
  peersDroppedByDecoder: number
  tableInsertsRejected: number
  tableEvictions: number
  livenessChecks: number
  providersStored: number
  providersRejectedNotSender: number
  providersRejectedStoreFull: number
  writesRateLimited: number
  valuesStored: number
  valuesRejectedInvalid: number
  valuesRejectedOlder: number
  valuesRejectedStoreFull: number
  valuesReceivedInvalid: number
  recordsExpired: number
  queriesStarted: number
  queriesSucceeded: number
  queriesFailed: number
  queriesRefusedBusy: number
}

type Purpose = 'query' | 'store' | 'liveness' | 'discovery'

interface Outstanding {
  peer: PeerId
  purpose: Purpose
  query: Query | undefined
  deadline: Millis
}

interface Query {
  id: QueryId
  kind: QueryKind
  /** The key on the wire (peer id bytes, multihash, record key, refresh preimage). */
  wireKey: Uint8Array
  target: Key
  messageType: KadMessageType
  startedAt: Millis
  deadline: Millis
  lookup: Lookup | undefined
  requests: number
  /** For early results (a provider, the peer): the hop of the answer. */
  resultHop: number | undefined
  firstResultAt: Millis | undefined
  providersSeen: Set<PeerId>
  countMax: number
  targetPeer: PeerId | undefined
  values: Array<{ from: PeerId; value: Uint8Array }>
  /** provide / put-value: the value to store, and the store phase's tally. */
  value: Uint8Array | undefined
  storePending: number
  storedCount: number
  /** Set once the lookup ended: the store phase (if any) is running. */
  storing: boolean
  /** The k closest that answered, fixed when the lookup ends (see #closestOf). */
  closest: readonly Candidate[] | undefined
}

interface QueryOptions {
  countMax?: number
  targetPeer?: PeerId
  value?: Uint8Array
}

interface OwnProvide {
  key: Uint8Array
  republishAt: Millis
}

interface TokenBucket {
  tokens: number
  updatedAt: Millis
}

/** Rate-limit buckets are swept of full ones when this many peers have one. */
const WRITE_BUCKETS_SWEEP_COUNT = 4_096
const INTERNAL_QUERY_ID_START = -1
/** Connected clients a server can name when asked for them; past this, the longest silent are forgotten. */
const CONNECTED_CLIENTS_MAX = 1_024

export class Kad implements Core<KadInput, KadAction> {
  readonly counters: KadCounters = {
    requestsSent: 0, responsesReceived: 0, requestsFailed: 0, requestsTimedOut: 0, requestsServed: 0, requestsIgnored: 0,
    responsesUnexpected: 0, peersDroppedByDecoder: 0, tableInsertsRejected: 0, tableEvictions: 0, livenessChecks: 0,
    providersStored: 0, providersRejectedNotSender: 0, providersRejectedStoreFull: 0, writesRateLimited: 0,
    valuesStored: 0, valuesRejectedInvalid: 0, valuesRejectedOlder: 0, valuesRejectedStoreFull: 0, valuesReceivedInvalid: 0,
    recordsExpired: 0, queriesStarted: 0, queriesSucceeded: 0, queriesFailed: 0, queriesRefusedBusy: 0,
  }

  readonly #config: KadConfig
  readonly #selfKey: Key
  readonly #selfIdBytes: Uint8Array
  readonly #table: RoutingTable
  readonly #providers: ProviderStore
  readonly #values: ValueStore
  readonly #outstanding = new Map<RequestId, Outstanding>()
  readonly #queries = new Map<QueryId, Query>()
  readonly #queued: Query[] = []
  readonly #ownProvides = new Map<string, OwnProvide>()
  readonly #writeBuckets = new Map<PeerId, TokenBucket>()
  readonly #discoveryPending = new Set<PeerId>()
  /** Clients that asked us something and are still connected, by the hex of their id's bytes (the key FIND_NODE carries). */
  readonly #connectedClients = new Map<string, KadPeer>()
  #actions: KadAction[] = []
  #actionHead = 0
  #mode: KadMode
  #addresses: readonly string[] = []
  #nextRequestId: RequestId = 1
  #nextInternalQueryId: QueryId = INTERNAL_QUERY_ID_START
  #nextSweepAt: Millis
  /** Never later than the earliest bucket refresh or republish: recomputed at each tick (see nextDeadline). */
  #nextRefreshAt: Millis | undefined
  #nextRepublishAt: Millis = Infinity
  #lastSelfLookupAt: Millis = -Infinity
  /** The joining self-lookup, after which every bucket is refreshed once. */
  #joinQueryId: QueryId | undefined
  #now: Millis = 0

  constructor(config: KadConfig, now: Millis) {
    if (config.alpha < 1 || config.disjointPaths < 1) throw new RangeError('alpha and disjointPaths must be ≥ 1')
    this.#config = config
    this.#mode = config.mode
    this.#selfKey = config.keyOfPeer(config.self)
    this.#selfIdBytes = config.peerIdBytes(config.self)
    this.#table = new RoutingTable({ ...config.routing, self: this.#selfKey }, now)
    this.#providers = new ProviderStore(config.providers)
    this.#values = new ValueStore(config.values)
    this.#nextSweepAt = now + config.expirySweepIntervalMs
    this.#now = now
  }

  get mode(): KadMode {
    return this.#mode
  }

  get tableSize(): number {
    return this.#table.size
  }

  get providerRecordCount(): number {
    return this.#providers.size
  }

  get valueRecordCount(): number {
    return this.#values.size
  }

  get activeQueryCount(): number {
    return this.#queries.size
  }

  buckets(): BucketView[] {
    return this.#table.buckets()
  }

  /** Up to `count` table contacts closest to `key`, without asking anyone. */
  closestKnown(key: Key, count: number): PeerId[] {
    return this.#table.closest(key, count).map((contact) => contact.peer)
  }

  /** Whether this node holds a provider record of `provider` for `key` (for checks in simulation). */
  holdsProvider(key: Uint8Array, provider: PeerId): boolean {
    return this.#providers.get(this.#now, key, this.#config.providers.providersPerKeyMax).some((record) => record.provider === provider)
  }

  handle(now: Millis, input: KadInput): void {
    this.#now = now
    switch (input.type) {
      case 'tick': return this.#onTick(now)
      case 'peer-connected': return this.#learn(now, input.peer, input.addresses)
      // Contacts stay in the table when their connection closes: liveness checks decide.
      case 'peer-disconnected':
        this.#connectedClients.delete(hexOf(this.#config.peerIdBytes(input.peer)))
        return
      case 'dial-failed': return
      case 'peer-discovered': return this.#onDiscovered(now, input.peer, input.addresses)
      case 'request': return this.#onRequest(now, input.from, input.id, input.message, input.addresses, input.remoteIsServer)
      case 'response': return this.#onResponse(now, input.from, input.id, input.message)
      case 'request-failed': return this.#onRequestFailed(now, input.id, false)
      case 'client-identified':
        if (this.#connectedClients.has(hexOf(this.#config.peerIdBytes(input.peer)))) this.#rememberClient(input.peer, input.addresses)
        return
      case 'find-peer': return this.#startQuery(now, input.queryId, 'find-peer', this.#config.peerIdBytes(input.peer), { targetPeer: input.peer })
      case 'find-providers': return this.#startQuery(now, input.queryId, 'find-providers', input.key, { countMax: input.countMax })
      case 'find-closest': return this.#startQuery(now, input.queryId, 'find-closest', input.key, {})
      case 'provide': return this.#onProvide(now, input.queryId, input.key)
      case 'unprovide':
        this.#ownProvides.delete(hexOf(input.key))
        return
      case 'get-value': return this.#startQuery(now, input.queryId, 'get-value', input.key, {})
      case 'put-value': return this.#onPutValueCommand(now, input.queryId, input.key, input.value)
      case 'cancel': {
        const query = this.#queries.get(input.queryId) ?? this.#queued.find((queued) => queued.id === input.queryId)
        if (query !== undefined) this.#finish(now, query, 'cancelled')
        return
      }
      case 'set-mode':
        this.#mode = input.mode
        return
      case 'set-addresses':
        this.#addresses = input.addresses
        return
      case 'restore': return this.#restore(now, input.providers, input.values)
    }
  }

  poll(): KadAction | undefined {
    if (this.#actionHead >= this.#actions.length) {
      if (this.#actionHead > 0) {
        this.#actions = []
        this.#actionHead = 0
      }
      return undefined
    }
    return this.#actions[this.#actionHead++]
  }

  /**
   * Refresh and republish times are cached, as scanning 256 buckets and every provided key
   * after each input would dominate the cost of a simulated peer. The cache can only be
   * early (a lookup postpones a bucket's refresh, a new bucket is due an interval from
   * now), and an early tick just recomputes it.
   */
  nextDeadline(): Millis | undefined {
    let deadline = Math.min(this.#nextSweepAt, this.#nextRepublishAt)
    if (this.#nextRefreshAt !== undefined && this.#nextRefreshAt < deadline) deadline = this.#nextRefreshAt
    for (const outstanding of this.#outstanding.values()) if (outstanding.deadline < deadline) deadline = outstanding.deadline
    for (const query of this.#queries.values()) if (query.deadline < deadline) deadline = query.deadline
    return deadline
  }

  // --- time ----------------------------------------------------------------------------

  #onTick(now: Millis): void {
    for (const [id, outstanding] of this.#outstanding) {
      if (outstanding.deadline > now) continue
      this.counters.requestsTimedOut++
      this.#onRequestFailed(now, id, true)
    }
    for (const query of [...this.#queries.values()]) if (query.deadline <= now) this.#finish(now, query, 'timeout')
    if (now >= this.#nextSweepAt) this.#sweep(now)
    this.#refresh(now, this.#table.bucketsDue(now))
    this.#nextRepublishAt = Infinity
    for (const provide of this.#ownProvides.values()) {
      if (provide.republishAt <= now) {
        provide.republishAt = now + this.#config.providerRepublishIntervalMs
        this.#startQuery(now, this.#internalQueryId(), 'provide', provide.key, {})
      }
      this.#nextRepublishAt = Math.min(this.#nextRepublishAt, provide.republishAt)
    }
    this.#nextRefreshAt = this.#table.nextRefreshAt()
  }

  #sweep(now: Millis): void {
    this.#nextSweepAt = now + this.#config.expirySweepIntervalMs
    for (const record of this.#providers.expire(now)) {
      this.counters.recordsExpired++
      this.#persist({ op: 'delete-provider', key: record.key, provider: record.provider })
    }
    for (const record of this.#values.expire(now)) {
      this.counters.recordsExpired++
      this.#persist({ op: 'delete-value', key: record.key })
    }
  }

  /**
   * A lookup of a random key in each bucket. Keys can be made up only for buckets up to
   * REFRESH_PREFIX_LENGTH_MAX (see refresh-targets.ts); the deeper ones hold our nearest
   * neighbours, and one lookup of our own id refreshes them all (as go-libp2p-kad-dht does).
   */
  #refresh(now: Millis, buckets: readonly number[]): void {
    let deepBucketsDue = false
    for (const bucket of buckets) {
      // Marked now, not when the lookup starts: a lookup may wait in the queue (or be
      // refused), and a bucket left due would hold the core's deadline in the past.
      this.#table.markBucketLookup(now, bucket)
      if (bucket > REFRESH_PREFIX_LENGTH_MAX) {
        deepBucketsDue = true
        continue
      }
      const { preimage } = refreshPreimage(this.#selfKey, bucket, this.#config.prng.nextUint32())
      this.#startQuery(now, this.#internalQueryId(), 'refresh', preimage, {})
    }
    if (deepBucketsDue) this.#startQuery(now, this.#internalQueryId(), 'refresh', this.#config.peerIdBytes(this.#config.self), {})
  }

  #internalQueryId(): QueryId {
    return this.#nextInternalQueryId--
  }

  // --- the routing table -----------------------------------------------------------------

  /** A peer proved itself a live server (it answered, or identify says it serves): add or refresh it. */
  #learn(now: Millis, peer: PeerId, addresses: readonly string[]): void {
    if (peer === this.#config.self) return
    const wasEmpty = this.#table.size === 0
    const result = this.#table.insert(now, peer, this.#config.keyOfPeer(peer), addresses)
    this.#nextRefreshAt ??= now + this.#config.routing.refreshIntervalMs
    switch (result.outcome) {
      case 'rejected':
        if (result.reason !== 'self') this.counters.tableInsertsRejected++
        break
      case 'check-oldest':
        this.counters.livenessChecks++
        this.#request(now, result.oldest.peer, result.oldest.addresses, message('PING', new Uint8Array(0)), 'liveness', undefined)
        break
      default:
        break
    }
    // Joining: once someone is known, find our neighbourhood through them.
    if (wasEmpty && this.#table.size > 0) this.#maybeSelfLookup(now)
  }

  #maybeSelfLookup(now: Millis): void {
    if (this.#table.size >= this.#config.routing.bucketSize * 2) return
    if (now - this.#lastSelfLookupAt < this.#config.selfLookupIntervalMs) return
    this.#lastSelfLookupAt = now
    const queryId = this.#internalQueryId()
    if (this.#config.refreshOnJoin && this.#joinQueryId === undefined) this.#joinQueryId = queryId
    this.#startQuery(now, queryId, 'refresh', this.#config.peerIdBytes(this.#config.self), {})
  }

  #onDiscovered(now: Millis, peer: PeerId, addresses: readonly string[]): void {
    if (peer === this.#config.self || this.#table.get(peer) !== undefined || this.#discoveryPending.has(peer)) return
    if (this.#table.size >= this.#config.routing.bucketSize || this.#discoveryPending.size >= this.#config.discoveryPingsMax) return
    this.#discoveryPending.add(peer)
    this.#request(now, peer, addresses, message('PING', new Uint8Array(0)), 'discovery', undefined)
  }

  // --- requests out ----------------------------------------------------------------------

  #request(now: Millis, peer: PeerId, addresses: readonly string[], body: KadMessage, purpose: Purpose, query: Query | undefined, oneWay = false): void {
    const id = this.#nextRequestId++
    this.#outstanding.set(id, { peer, purpose, query, deadline: now + this.#config.requestTimeoutMs })
    this.counters.requestsSent++
    if (query !== undefined) query.requests++
    this.#actions.push({ type: 'request', to: peer, addresses, id, message: body, oneWay })
  }

  #onResponse(now: Millis, from: PeerId, id: RequestId, reply: KadMessage | undefined): void {
    const outstanding = this.#outstanding.get(id)
    if (outstanding === undefined || outstanding.peer !== from) {
      this.counters.responsesUnexpected++
      return
    }
    this.#outstanding.delete(id)
    this.counters.responsesReceived++
    this.counters.peersDroppedByDecoder += reply?.peersDropped ?? 0
    const contact = this.#table.get(from)
    switch (outstanding.purpose) {
      case 'liveness':
        this.#table.checked(now, from, true)
        return
      case 'discovery':
        this.#discoveryPending.delete(from)
        this.#learn(now, from, [])
        return
      case 'store':
        this.#learn(now, from, contact?.addresses ?? [])
        if (outstanding.query !== undefined) this.#onStored(now, outstanding.query, reply)
        return
      case 'query': {
        const query = outstanding.query
        // The query ended while this answer travelled: the peer still proved alive.
        if (query === undefined) return this.#learn(now, from, contact?.addresses ?? [])
        const candidate = query.lookup?.candidate(from)
        this.#learn(now, from, candidate?.addresses ?? [])
        if (reply === undefined || reply.type !== query.messageType) {
          this.counters.responsesUnexpected++
          query.lookup?.failed(from)
        } else {
          this.#onQueryAnswer(now, query, from, candidate, reply)
        }
        if (this.#queries.get(query.id) === query) this.#pump(now, query)
      }
    }
  }

  #onRequestFailed(now: Millis, id: RequestId, timedOut: boolean): void {
    const outstanding = this.#outstanding.get(id)
    if (outstanding === undefined) return
    this.#outstanding.delete(id)
    if (!timedOut) this.counters.requestsFailed++
    const { peer } = outstanding
    if (outstanding.purpose === 'liveness') {
      if (this.#table.checked(now, peer, false) !== undefined) this.counters.tableEvictions++
      return
    }
    if (outstanding.purpose === 'discovery') {
      this.#discoveryPending.delete(peer)
      return
    }
    // A contact that fails a request is gone or useless: its bucket's best replacement takes its place.
    if (this.#table.get(peer) !== undefined) {
      this.#table.remove(peer)
      this.counters.tableEvictions++
    }
    const query = outstanding.query
    if (query === undefined || this.#queries.get(query.id) !== query) return
    if (outstanding.purpose === 'store') return this.#onStored(now, query, undefined)
    query.lookup?.failed(peer)
    this.#pump(now, query)
  }

  // --- queries -----------------------------------------------------------------------------

  #startQuery(now: Millis, id: QueryId, kind: QueryKind, wireKey: Uint8Array, options: QueryOptions): void {
    const query = this.#newQuery(now, id, kind, wireKey, options)
    this.counters.queriesStarted++
    if (this.#queries.size >= this.#config.queriesMax) {
      if (this.#queued.length >= this.#config.queriesQueuedMax) {
        this.counters.queriesRefusedBusy++
        return this.#emitDone(now, query, 'busy')
      }
      this.#queued.push(query)
      return
    }
    this.#run(now, query)
  }

  #newQuery(now: Millis, id: QueryId, kind: QueryKind, wireKey: Uint8Array, options: QueryOptions): Query {
    return {
      id, kind, wireKey, target: keyFromBytes(wireKey), messageType: messageTypeOf(kind), startedAt: now,
      deadline: now + this.#config.queryTimeoutMs, lookup: undefined, requests: 0, resultHop: undefined, firstResultAt: undefined,
      providersSeen: new Set(), countMax: options.countMax ?? this.#config.providersPerAnswerMax, targetPeer: options.targetPeer,
      values: [], value: options.value, storePending: 0, storedCount: 0, storing: false, closest: undefined,
    }
  }

  #run(now: Millis, query: Query): void {
    query.startedAt = now
    query.deadline = now + this.#config.queryTimeoutMs
    this.#queries.set(query.id, query)
    this.#table.markLookup(now, query.target)
    if (this.#answerLocally(now, query)) return
    const seeds: LookupPeer[] = this.#table.closest(query.target, this.#config.routing.bucketSize)
    if (seeds.length === 0) return this.#finish(now, query, 'no-peers')
    // Records are stored through disjoint paths as well as read through them: an adversary
    // that steered a provide's lookup would be handed the records to drop.
    const pathCount = query.kind === 'find-closest' || query.kind === 'find-peer' || query.kind === 'refresh' ? 1 : this.#config.disjointPaths
    query.lookup = new Lookup({
      alpha: this.#config.alpha,
      closestCount: this.#config.routing.bucketSize,
      pathCount,
      candidatesPerPathMax: 4 * this.#config.routing.bucketSize,
    }, this.#config.self, query.target, seeds)
    this.#pump(now, query)
  }

  /** What this node itself knows; true when that settles the query. */
  #answerLocally(now: Millis, query: Query): boolean {
    if (query.kind === 'find-peer') {
      const contact = this.#table.get(query.targetPeer!)
      if (contact === undefined || contact.addresses.length === 0) return false
      this.#found(now, query, 0)
      this.#emit({ type: 'peer-found', queryId: query.id, peer: { id: contact.peer, addresses: contact.addresses, connection: 'not-connected' } })
      this.#finish(now, query, 'ok')
      return true
    }
    if (query.kind === 'find-providers') {
      for (const provider of this.#localProviders(now, query.wireKey)) {
        this.#onProvider(now, query, provider, 0)
        if (this.#queries.get(query.id) !== query) return true
      }
    }
    return false
  }

  #pump(now: Millis, query: Query): void {
    const lookup = query.lookup
    if (lookup === undefined || query.storing) return
    for (const candidate of lookup.next()) {
      this.#request(now, candidate.peer, candidate.addresses, message(query.messageType, query.wireKey), 'query', query)
    }
    if (lookup.finished) this.#onLookupFinished(now, query)
  }

  #onQueryAnswer(now: Millis, query: Query, from: PeerId, candidate: Candidate | undefined, reply: KadMessage): void {
    const lookup = query.lookup!
    const hop = candidate?.hop ?? 1
    const closer: LookupPeer[] = []
    for (const peer of reply.closerPeers.slice(0, KAD_LIMITS.peersPerListMax)) {
      if (peer.id === this.#config.self) continue
      if (query.kind === 'find-peer' && peer.id === query.targetPeer) {
        this.#found(now, query, hop)
        this.#emit({ type: 'peer-found', queryId: query.id, peer })
        return this.#finish(now, query, 'ok')
      }
      closer.push({ peer: peer.id, key: this.#config.keyOfPeer(peer.id), addresses: peer.addresses })
    }
    lookup.answered(from, closer)
    if (query.kind === 'find-providers') {
      for (const provider of reply.providerPeers) {
        this.#onProvider(now, query, provider, hop)
        if (this.#queries.get(query.id) !== query) return
      }
    } else if (query.kind === 'get-value' && reply.record !== undefined) {
      const { record } = reply
      if (!bytesEqual(record.key, query.wireKey) || validateRecord(this.#config.validators, record.key, record.value, now) !== undefined) {
        this.counters.valuesReceivedInvalid++
        return
      }
      this.#found(now, query, hop)
      query.values.push({ from, value: record.value })
      this.#emit({ type: 'value', queryId: query.id, from, value: record.value })
      if (query.values.length >= this.#config.valueQuorum) this.#onLookupFinished(now, query)
    }
  }

  #onProvider(now: Millis, query: Query, provider: KadPeer, hop: number): void {
    if (query.providersSeen.has(provider.id) || query.providersSeen.size >= query.countMax) return
    query.providersSeen.add(provider.id)
    this.#found(now, query, hop)
    this.#emit({ type: 'provider', queryId: query.id, provider })
    if (query.providersSeen.size >= query.countMax) this.#finish(now, query, 'ok')
  }

  #found(now: Millis, query: Query, hop: number): void {
    if (query.firstResultAt !== undefined) return
    query.firstResultAt = now
    query.resultHop = hop
  }

  #onLookupFinished(now: Millis, query: Query): void {
    const closest = this.#closestOf(query)
    switch (query.kind) {
      case 'provide':
      case 'put-value':
        return this.#store(now, query, closest)
      case 'get-value':
        return this.#finishGetValue(now, query, closest)
      case 'find-providers':
        return this.#finish(now, query, query.providersSeen.size > 0 ? 'ok' : 'not-found')
      case 'find-peer':
        return this.#finish(now, query, 'not-found')
      case 'find-closest':
      case 'refresh':
        return this.#finish(now, query, closest.length > 0 ? 'ok' : 'not-found')
    }
  }

  /** The store phase of provide and put-value: the record goes to the k closest that answered. */
  #store(now: Millis, query: Query, closest: readonly Candidate[]): void {
    query.storing = true
    if (closest.length === 0) return this.#finish(now, query, 'not-found')
    const body = query.kind === 'provide'
      ? { ...message('ADD_PROVIDER', query.wireKey), providerPeers: [this.#selfPeer()] }
      : { ...message('PUT_VALUE', query.wireKey), record: { key: query.wireKey, value: query.value!, timeReceived: '' } }
    query.storePending = closest.length
    for (const peer of closest) this.#request(now, peer.peer, peer.addresses, body, 'store', query, query.kind === 'provide')
  }

  #onStored(now: Millis, query: Query, reply: KadMessage | undefined): void {
    if (this.#queries.get(query.id) !== query) return
    query.storePending--
    // ADD_PROVIDER has no answer: written is stored. PUT_VALUE is echoed back.
    const stored = query.kind === 'provide' ? reply === undefined : reply?.type === 'PUT_VALUE'
    if (stored) query.storedCount++
    if (query.storePending > 0) return
    this.#finish(now, query, query.storedCount > 0 ? 'ok' : 'not-found')
  }

  #finishGetValue(now: Millis, query: Query, closest: readonly Candidate[]): void {
    if (query.values.length === 0) return this.#finish(now, query, 'not-found')
    const validator = this.#config.validators.get(namespaceOf(query.wireKey)!)!
    const best = query.values[validator.select(query.wireKey, query.values.map((entry) => entry.value))]!.value
    query.value = best
    // Correction, as the spec asks: peers among the closest that lack the best value get it.
    const upToDate = new Set(query.values.filter((entry) => bytesEqual(entry.value, best)).map((entry) => entry.from))
    const body = { ...message('PUT_VALUE', query.wireKey), record: { key: query.wireKey, value: best, timeReceived: '' } }
    for (const peer of closest) if (!upToDate.has(peer.peer)) this.#request(now, peer.peer, peer.addresses, body, 'store', undefined)
    this.#finish(now, query, 'ok')
  }

  #finish(now: Millis, query: Query, outcome: QueryOutcome): void {
    const queuedAt = this.#queued.indexOf(query)
    if (queuedAt >= 0) this.#queued.splice(queuedAt, 1)
    if (this.#queries.get(query.id) === query) this.#queries.delete(query.id)
    // Requests still out for it are left to end on their own: their answers are then ignored.
    for (const outstanding of this.#outstanding.values()) if (outstanding.query === query) outstanding.query = undefined
    if (outcome === 'ok') this.counters.queriesSucceeded++
    else this.counters.queriesFailed++
    this.#emitDone(now, query, outcome)
    if (query.id === this.#joinQueryId) {
      this.#joinQueryId = undefined
      // It has just looked itself up: the buckets past REFRESH_PREFIX_LENGTH_MAX are fresh.
      const deepest = this.#table.buckets().reduce((max, bucket) => (bucket.contacts.length > 0 ? Math.max(max, bucket.index) : max), -1)
      this.#refresh(now, Array.from({ length: Math.min(deepest, REFRESH_PREFIX_LENGTH_MAX) + 1 }, (_, index) => index))
    }
    const next = this.#queued.shift()
    if (next !== undefined) this.#run(now, next)
  }

  /** The k closest peers that answered, taken once, when the lookup ends (or the query does). */
  #closestOf(query: Query): readonly Candidate[] {
    query.closest ??= query.lookup?.closestAnswered(this.#config.routing.bucketSize) ?? []
    return query.closest
  }

  #emitDone(now: Millis, query: Query, outcome: QueryOutcome): void {
    // Internal queries (refresh, republish) report to nobody.
    if (query.id <= INTERNAL_QUERY_ID_START) return
    const closest = this.#closestOf(query)
    const event: Extract<KadEvent, { type: 'query-done' }> = {
      type: 'query-done',
      queryId: query.id,
      kind: query.kind,
      outcome,
      closest: closest.map((candidate) => candidate.peer),
      stats: {
        hops: query.resultHop ?? closest.reduce((deepest, candidate) => Math.max(deepest, candidate.hop), 0),
        requests: query.requests,
        failures: query.lookup?.failedCount ?? 0,
        durationMs: now - query.startedAt,
        firstResultMs: query.firstResultAt === undefined ? undefined : query.firstResultAt - query.startedAt,
      },
    }
    if (query.kind === 'get-value' && query.value !== undefined) event.value = query.value
    if (query.kind === 'provide' || query.kind === 'put-value') event.storedCount = query.storedCount
    this.#emit(event)
  }

  #onProvide(now: Millis, queryId: QueryId, key: Uint8Array): void {
    const republishAt = now + this.#config.providerRepublishIntervalMs
    this.#ownProvides.set(hexOf(key), { key, republishAt })
    this.#nextRepublishAt = Math.min(this.#nextRepublishAt, republishAt)
    this.#startQuery(now, queryId, 'provide', key, {})
  }

  #onPutValueCommand(now: Millis, queryId: QueryId, key: Uint8Array, value: Uint8Array): void {
    const invalid = validateRecord(this.#config.validators, key, value, now)
    if (invalid !== undefined) {
      this.counters.valuesRejectedInvalid++
      return this.#emitDone(now, this.#newQuery(now, queryId, 'put-value', key, {}), 'invalid-record')
    }
    this.#storeValue(now, key, value)
    this.#startQuery(now, queryId, 'put-value', key, { value })
  }

  // --- requests in -------------------------------------------------------------------------

  #onRequest(now: Millis, from: PeerId, id: RequestId, request: KadMessage, addresses: readonly string[], remoteIsServer: boolean): void {
    this.counters.peersDroppedByDecoder += request.peersDropped ?? 0
    if (this.#mode !== 'server') {
      this.counters.requestsIgnored++
      return
    }
    // Kademlia learns from every message; only servers belong in the table.
    if (remoteIsServer) this.#learn(now, from, addresses)
    else this.#rememberClient(from, addresses)
    this.counters.requestsServed++
    const closer = (key: Uint8Array): KadPeer[] => this.#closerPeers(keyFromBytes(key), from)
    switch (request.type) {
      case 'PING':
        return this.#respond(from, id, message('PING', new Uint8Array(0)))
      case 'FIND_NODE': {
        // Asked for itself, a node is the closest peer there is (distance 0) and names itself
        // first, as go- and js-libp2p-kad-dht do: else a node that only the asker knows of
        // could never be found, since nobody else would name it. So with a connected client
        // (go-libp2p-kad-dht names any connected peer asked for): clients are in no table,
        // and a node behind a NAT, reachable through its relay, would be found by nobody.
        const exact = bytesEqual(request.key, this.#selfIdBytes) ? this.#selfPeer() : this.#connectedClients.get(hexOf(request.key))
        const closerPeers = exact === undefined ? closer(request.key) : [exact, ...closer(request.key)].slice(0, this.#config.routing.bucketSize)
        return this.#respond(from, id, { ...message('FIND_NODE', request.key), closerPeers })
      }
      case 'GET_PROVIDERS': {
        const providerPeers = this.#localProviders(now, request.key)
        return this.#respond(from, id, { ...message('GET_PROVIDERS', request.key), providerPeers, closerPeers: closer(request.key) })
      }
      case 'ADD_PROVIDER':
        return this.#onAddProvider(now, from, request, addresses)
      case 'GET_VALUE': {
        const record = this.#values.get(now, request.key)
        return this.#respond(from, id, {
          ...message('GET_VALUE', request.key),
          record: record === undefined ? undefined : { key: record.key, value: record.value, timeReceived: new Date(record.receivedAtMs).toISOString() },
          closerPeers: closer(request.key),
        })
      }
      case 'PUT_VALUE': {
        const record = request.record
        if (!this.#admitWrite(now, from)) return
        if (record === undefined || !bytesEqual(record.key, request.key)) {
          this.counters.valuesRejectedInvalid++
          return
        }
        if (validateRecord(this.#config.validators, record.key, record.value, now) !== undefined) {
          this.counters.valuesRejectedInvalid++
          return
        }
        if (this.#storeValue(now, record.key, record.value)) this.#respond(from, id, request)
      }
    }
  }

  #rememberClient(peer: PeerId, addresses: readonly string[]): void {
    if (addresses.length === 0) return
    const key = hexOf(this.#config.peerIdBytes(peer))
    // Re-inserted, so that the map's order is that of the last request.
    this.#connectedClients.delete(key)
    this.#connectedClients.set(key, { id: peer, addresses, connection: 'connected' })
    if (this.#connectedClients.size > CONNECTED_CLIENTS_MAX) this.#connectedClients.delete(this.#connectedClients.keys().next().value!)
  }

  #respond(to: PeerId, id: RequestId, body: KadMessage): void {
    this.#actions.push({ type: 'respond', to, id, message: body })
  }

  #closerPeers(target: Key, requester: PeerId): KadPeer[] {
    return this.#table.closest(target, this.#config.routing.bucketSize, requester).map((contact) => ({ id: contact.peer, addresses: contact.addresses, connection: 'not-connected' }))
  }

  #localProviders(now: Millis, key: Uint8Array): KadPeer[] {
    const providers: KadPeer[] = []
    if (this.#ownProvides.has(hexOf(key))) providers.push(this.#selfPeer())
    for (const record of this.#providers.get(now, key, this.#config.providersPerAnswerMax - providers.length)) {
      providers.push({ id: record.provider, addresses: record.addresses, connection: 'not-connected' })
    }
    return providers
  }

  #selfPeer(): KadPeer {
    return { id: this.#config.self, addresses: this.#addresses, connection: 'connected' }
  }

  #onAddProvider(now: Millis, from: PeerId, request: KadMessage, connectionAddresses: readonly string[]): void {
    if (!this.#admitWrite(now, from)) return
    for (const provider of request.providerPeers) {
      // A peer may announce only itself (spec: "the provider's peer ID must match the sender").
      if (provider.id !== from) {
        this.counters.providersRejectedNotSender++
        continue
      }
      const record: ProviderRecord = {
        key: request.key,
        provider: from,
        addresses: provider.addresses.length > 0 ? provider.addresses : connectionAddresses,
        expiresAtMs: now + this.#config.providerRecordTtlMs,
      }
      const { outcome, evicted } = this.#providers.add(record)
      if (outcome === 'store-full') {
        this.counters.providersRejectedStoreFull++
        continue
      }
      this.counters.providersStored++
      if (evicted !== undefined) this.#persist({ op: 'delete-provider', key: evicted.key, provider: evicted.provider })
      this.#persist({ op: 'put-provider', record })
    }
  }

  /** Stores a value already validated, unless an existing one is better; true when stored or equal. */
  #storeValue(now: Millis, key: Uint8Array, value: Uint8Array): boolean {
    const existing = this.#values.get(now, key)
    if (existing !== undefined && !bytesEqual(existing.value, value)) {
      const validator = this.#config.validators.get(namespaceOf(key)!)!
      if (validator.select(key, [existing.value, value]) === 0) {
        this.counters.valuesRejectedOlder++
        return false
      }
    }
    const record: ValueRecord = { key, value, receivedAtMs: now, expiresAtMs: now + this.#config.valueRecordTtlMs }
    if (!this.#values.put(record)) {
      this.counters.valuesRejectedStoreFull++
      return false
    }
    this.counters.valuesStored++
    this.#persist({ op: 'put-value', record })
    return true
  }

  #admitWrite(now: Millis, peer: PeerId): boolean {
    const { writesPerPeerBurst: burst, writesPerPeerPerSecond: perSecond } = this.#config
    if (this.#writeBuckets.size >= WRITE_BUCKETS_SWEEP_COUNT) {
      for (const [owner, bucket] of this.#writeBuckets) if (bucket.tokens + ((now - bucket.updatedAt) * perSecond) / 1000 >= burst) this.#writeBuckets.delete(owner)
    }
    let bucket = this.#writeBuckets.get(peer)
    if (bucket === undefined) {
      bucket = { tokens: burst, updatedAt: now }
      this.#writeBuckets.set(peer, bucket)
    }
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.updatedAt) * perSecond) / 1000)
    bucket.updatedAt = now
    if (bucket.tokens < 1) {
      this.counters.writesRateLimited++
      return false
    }
    bucket.tokens--
    return true
  }

  #restore(now: Millis, providers: readonly ProviderRecord[], values: readonly ValueRecord[]): void {
    for (const record of providers) if (record.expiresAtMs > now) this.#providers.add(record)
    for (const record of values) {
      if (record.expiresAtMs > now && validateRecord(this.#config.validators, record.key, record.value, now) === undefined) this.#values.put(record)
    }
  }

  #persist(change: RecordChange): void {
    this.#actions.push({ type: 'persist', change })
  }

  #emit(event: KadEvent): void {
    this.#actions.push({ type: 'emit', event })
  }
}

function message(type: KadMessageType, key: Uint8Array): KadMessage {
  return { type, key, record: undefined, closerPeers: [], providerPeers: [] }
}

function messageTypeOf(kind: QueryKind): KadMessageType {
  switch (kind) {
    case 'find-providers': return 'GET_PROVIDERS'
    case 'get-value': return 'GET_VALUE'
    default: return 'FIND_NODE'
  }
}

