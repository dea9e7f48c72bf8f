/**
 * The DHT scenarios: N peers run the real Kad core over a wide-area latency model.
 *
 *   dht-lookup   no churn: random find-closest lookups checked against the true k closest
 *                online peers, then provide / find-providers of random content
 *   dht-churn    10% of peers replaced per simulated hour (their sessions: median 30 min),
 *                content re-provided by providers that come back; provider lookups for
 *                held content, continuously
 *   dht-churn-heavy   the same with 50% of peers replaced every 2 hours
 *   dht-eclipse  20% adversaries that answer with only adversaries and drop provider
 *                records; provider lookups with disjoint paths (d = 4) and without
 *
 * Peers join through 4 bootstrap peers (each new peer pings one, looks itself up, then
 * refreshes its buckets, as a starting daemon does). Peer ids are p<index>; their keys are
 * SHA-256 of those names, so the key space is uniform as with real peer ids.
 */
import { DEFAULT_KAD_CONFIG, Kad, type KadCommand, type KadConfig, type KadEvent } from '../../core/kad/kad.ts'
import { distancePrefix, keyFromBytes, type Key } from '../../core/kad/key.ts'
import type { KadMessage, KadPeer } from '../../core/kad/messages.ts'
import { DEFAULT_RECORD_VALIDATORS } from '../../core/kad/validators.ts'
import { Prng } from '../../core/prng.ts'
import { asPeerId, type Millis, type PeerId } from '../../core/sans-io.ts'
import { kadMessageSize } from '../../wire/kad.ts'
import type { DurationDistribution } from '../distributions.ts'
import { percentile } from '../metrics.ts'
import { scenario, type Scenario } from '../scenario.ts'
import type { PeerContext, SimCore, SimInput } from '../simulator.ts'
import { combinedRuns, type Figure, type NamedScenario, type ScenarioReport, type ScenarioRunOptions } from './types.ts'

export interface DhtKnobs {
  peers: number
  bootstrapCount: number
  /** Newcomers per second while the network forms. */
  arrivalsPerSecond: number
  /** Quiet time after the last arrival before measuring. */
  settleMs: number
  /** One-way latency of a pair of peers. */
  latency: DurationDistribution
  /** TCP + Noise + multistream: round trips before a new connection carries a request. */
  handshakeRoundTripCount: number
  connectionsPerPeerMax: number
  /** Operations measured: lookups, provides and provider searches each. */
  operations: number
  /** Operations started per simulated second (more when operationsWindowMs asks). */
  operationsPerSecond: number
  /**
   * The longest a batch of operations may take to start: 100,000 lookups at 20/s would take
   * 83 simulated minutes, and the bucket refreshes of those minutes would cost more than them.
   */
  operationsWindowMs: number
  /** Share of peers that churn; the rest stay the whole run. */
  churningFraction: number
  /** Session length of churning peers. */
  session: DurationDistribution | undefined
  /** Time a departed peer stays away before it comes back (as a fresh core). */
  offline: DurationDistribution | undefined
  /** Share of peers that are eclipse adversaries. */
  adversaryFraction: number
  kad: Partial<Omit<KadConfig, 'self' | 'keyOfPeer' | 'peerIdBytes' | 'prng'>>
}

/** Global one-way latency: median 40 ms (RTT 80 ms), tail to 200 ms (RTT 400 ms). */
export const WIDE_AREA_LATENCY: DurationDistribution = { kind: 'lognormal', medianMs: 40, sigma: 0.6, maxMs: 200 }

export const DHT_KNOBS: DhtKnobs = {
  peers: 10_000,
  bootstrapCount: 4,
  arrivalsPerSecond: 100,
  settleMs: 120_000,
  latency: WIDE_AREA_LATENCY,
  handshakeRoundTripCount: 2,
  connectionsPerPeerMax: 128,
  operations: 1_000,
  operationsPerSecond: 20,
  operationsWindowMs: 100_000,
  churningFraction: 0,
  session: undefined,
  offline: undefined,
  adversaryFraction: 0,
  kad: {},
}

const encoder = new TextEncoder()
/** Keys of the simulated peer names, shared by every core of every run (names repeat). */
const peerKeys = new Map<string, Key>()

function keyOfPeer(peer: PeerId): Key {
  let key = peerKeys.get(peer)
  if (key === undefined) {
    key = keyFromBytes(encoder.encode(peer))
    peerKeys.set(peer, key)
  }
  return key
}

function peerIdBytes(peer: PeerId): Uint8Array {
  return encoder.encode(peer)
}

export interface DhtRun {
  t: Scenario<KadMessage>
  knobs: DhtKnobs
  /** Queries' outcomes by id, and the events they streamed. */
  done: Map<number, Extract<KadEvent, { type: 'query-done' }>>
  providersFound: Map<number, KadPeer[]>
  isAdversary(index: number): boolean
  command(index: number, command: KadCommand): void
  /** The `count` online honest-or-not servers closest to `target`, closest first. */
  trueClosest(target: Key, count: number, exclude: number): number[]
  nextQueryId(): number
  /** Called when a peer comes online (a first join or a return). */
  onJoin: ((index: number) => void) | undefined
}

export function dhtScenario(seed: ScenarioRunOptions['seed'], overrides: Partial<DhtKnobs>, name: string): DhtRun {
  const knobs: DhtKnobs = { ...DHT_KNOBS, ...overrides }
  const bootstrapPeers = Array.from({ length: Math.min(knobs.bootstrapCount, knobs.peers) }, (_, index) => index)
  const done = new Map<number, Extract<KadEvent, { type: 'query-done' }>>()
  const providersFound = new Map<number, KadPeer[]>()
  // Adversaries are drawn from the peers that are not bootstrap peers.
  const adversaries = new Uint8Array(knobs.peers)
  // Roles are drawn before the Simulator exists, from a fork of their own.
  const roles = Prng.fromSeed(seed).fork('dht:roles')
  for (let index = knobs.bootstrapCount; index < knobs.peers; index++) if (roles.next() < knobs.adversaryFraction) adversaries[index] = 1
  const churning = new Uint8Array(knobs.peers)
  for (let index = knobs.bootstrapCount; index < knobs.peers; index++) if (roles.next() < knobs.churningFraction) churning[index] = 1
  const adversaryKeys: Array<{ peer: PeerId; key: Key }> = []
  for (let index = 0; index < knobs.peers; index++) if (adversaries[index] === 1) adversaryKeys.push({ peer: asPeerId(`p${index}`), key: keyOfPeer(asPeerId(`p${index}`)) })
  const closestAdversaries = new ClosestAdversaries(adversaryKeys)
  const kadConfig: Omit<KadConfig, 'self' | 'prng'> = {
    ...DEFAULT_KAD_CONFIG,
    keyOfPeer,
    peerIdBytes,
    mode: 'server',
    validators: DEFAULT_RECORD_VALIDATORS,
    ...knobs.kad,
  }
  let queryCounter = 1
  let run: DhtRun | undefined
  const t = scenario<KadMessage>({
    name,
    peerCount: knobs.peers,
    seed,
    sizeOf: kadMessageSize,
    network: {
      latency: knobs.latency,
      handshakeRoundTripCount: knobs.handshakeRoundTripCount,
      connectionsPerPeerMax: knobs.connectionsPerPeerMax,
      uploadBytesPerSecond: Infinity,
      downloadBytesPerSecond: Infinity,
    },
    bootstrapPeers,
    stablePeers: Array.from({ length: knobs.peers }, (_, index) => index).filter((index) => churning[index] !== 1),
    churn: {
      arrival: { kind: 'poisson', windowMs: (knobs.peers / knobs.arrivalsPerSecond) * 1000 },
      session: knobs.session,
      crashFraction: 0.5,
      offline: knobs.offline,
    },
    knobs: { ...knobs, kad: undefined, ...knobs.kad },
    createCore: (context: PeerContext): SimCore<KadMessage> => {
      const honest = new Kad({ ...kadConfig, self: context.id, prng: context.prng }, 0)
      if (adversaries[context.index] === 1) return new EclipseAdversary(honest, context.id, closestAdversaries) as unknown as SimCore<KadMessage>
      return honest as unknown as SimCore<KadMessage>
    },
    onJoin: (peer) => run?.onJoin?.(peer),
    onAction: (_peer, action) => {
      if (action.type !== 'emit') return
      const event = (action as { type: 'emit'; event: KadEvent }).event
      if (event.type === 'query-done') done.set(event.queryId, event)
      else if (event.type === 'provider') {
        const list = providersFound.get(event.queryId) ?? []
        list.push(event.provider)
        providersFound.set(event.queryId, list)
      }
    },
  })
  run = {
    t,
    knobs,
    done,
    providersFound,
    isAdversary: (index) => adversaries[index] === 1,
    command: (index, command) => t.sim.input(index, command as unknown as SimInput<KadMessage>),
    trueClosest: (target, count, exclude) => {
      // Rank by the distance's first 6 bytes, then order the few nearest exactly.
      const ranked: Array<{ index: number; distance: number }> = []
      for (let index = 0; index < knobs.peers; index++) {
        if (index === exclude || !t.sim.isOnline(index)) continue
        ranked.push({ index, distance: distancePrefix(target, keyOfPeer(t.sim.idOf(index))) })
      }
      ranked.sort((a, b) => a.distance - b.distance)
      return ranked.slice(0, count).map((entry) => entry.index)
    },
    nextQueryId: () => queryCounter++,
    onJoin: undefined,
  }
  return run
}


/** Peers told to ask next about a key: what an eclipse adversary answers. */
const ANSWER_PEERS_COUNT = DEFAULT_KAD_CONFIG.routing.bucketSize
/** Keys whose closest adversaries are kept; past it the cache starts over. */
const CLOSEST_CACHED_MAX = 4_096

/**
 * The adversaries closest to a key, shared by a run's eclipse adversaries: a lookup asks
 * many of them about the same key, and sorting every adversary for each answer took a
 * quarter of a run's time.
 */
class ClosestAdversaries {
  readonly #adversaries: ReadonlyArray<{ peer: PeerId; key: Key }>
  readonly #byKey = new Map<string, KadPeer[]>()

  constructor(adversaries: ReadonlyArray<{ peer: PeerId; key: Key }>) {
    this.#adversaries = adversaries
  }

  /** The `count` adversaries closest to `key` other than the asker and the one answering, closest first. */
  closest(key: Uint8Array, count: number, except: readonly PeerId[]): KadPeer[] {
    const cacheKey = `${count + except.length}:${Buffer.from(key).toString('hex')}`
    let closest = this.#byKey.get(cacheKey)
    if (closest === undefined) {
      if (this.#byKey.size >= CLOSEST_CACHED_MAX) this.#byKey.clear()
      const target = keyFromBytes(key)
      // Enough to leave `count` once the excepted peers are taken out.
      closest = this.#adversaries
        .map((adversary) => ({ adversary, distance: distancePrefix(target, adversary.key) }))
        .sort((a, b) => a.distance - b.distance)
        .slice(0, count + except.length)
        .map(({ adversary }): KadPeer => ({ id: adversary.peer, addresses: [], connection: 'not-connected' }))
      this.#byKey.set(cacheKey, closest)
    }
    return closest.filter((peer) => !except.includes(peer.id)).slice(0, count)
  }
}

/**
 * An eclipse adversary (the model): it answers every lookup with the adversaries
 * closest to the key and nobody else, claims no providers and drops the provider and value
 * records it is given. Otherwise it behaves as an honest peer — it joins, looks itself up,
 * refreshes its buckets and answers pings — so that honest peers meet it, keep it in their
 * tables and hand it to each other.
 */
class EclipseAdversary {
  readonly #self: PeerId
  readonly #honest: Kad
  readonly #adversaries: ClosestAdversaries
  readonly #answers: Array<{ type: 'respond'; to: PeerId; id: number; message: KadMessage }> = []

  constructor(honest: Kad, self: PeerId, adversaries: ClosestAdversaries) {
    this.#honest = honest
    this.#self = self
    this.#adversaries = adversaries
  }

  handle(now: Millis, input: SimInput<KadMessage>): void {
    if (input.type !== 'request' || input.message.type === 'PING') return this.#honest.handle(now, input as never)
    const { message } = input
    if (message.type === 'ADD_PROVIDER' || message.type === 'PUT_VALUE') return
    const closerPeers = this.#adversaries.closest(message.key, ANSWER_PEERS_COUNT, [this.#self, input.from])
    this.#answers.push({ type: 'respond', to: input.from, id: input.id, message: { ...message, record: undefined, closerPeers, providerPeers: [] } })
  }

  poll(): ReturnType<Kad['poll']> {
    return this.#answers.shift() ?? this.#honest.poll()
  }

  nextDeadline(): Millis | undefined {
    return this.#honest.nextDeadline()
  }
}

// ---- measuring ----------------------------------------------------------------------------

function round(value: number | undefined, digits = 0): number | null {
  return value === undefined ? null : Number(value.toFixed(digits))
}

function randomKeyBytes(prng: Prng): Uint8Array {
  const bytes = new Uint8Array(34)
  bytes[0] = 0x12
  bytes[1] = 0x20
  for (let index = 2; index < bytes.length; index++) bytes[index] = prng.int(256)
  return bytes
}

/** A random online honest peer other than `exclude`. */
function randomHonestPeer(run: DhtRun, prng: Prng, exclude = -1): number {
  for (;;) {
    const index = prng.int(run.knobs.peers)
    if (index !== exclude && run.t.sim.isOnline(index) && !run.isAdversary(index)) return index
  }
}

/** Starts `count` operations at operationsPerSecond, then runs until they are all done (or 2 min more pass). */
function runOperations(run: DhtRun, count: number, start: (index: number) => number): number[] {
  const { t, knobs } = run
  const ids: number[] = []
  const gapMs = Math.min(1000 / knobs.operationsPerSecond, knobs.operationsWindowMs / count)
  const startAt = t.now
  for (let index = 0; index < count; index++) {
    t.runTo(startAt + index * gapMs)
    ids.push(start(index))
  }
  const deadline = t.now + 120_000
  while (t.now < deadline && ids.some((id) => !run.done.has(id))) t.runTo(t.now + 1_000)
  return ids
}

function formNetwork(run: DhtRun): void {
  const { t, knobs } = run
  t.runTo((knobs.peers / knobs.arrivalsPerSecond) * 1000 + knobs.settleMs)
}

/** find-closest lookups of random keys, checked against the true k closest online peers. */
function measureLookups(run: DhtRun, prng: Prng, count: number, checkTruth: boolean): Record<string, Figure> {
  const k = DEFAULT_KAD_CONFIG.routing.bucketSize
  const checks: Array<{ id: number; from: number; target: Key }> = []
  const ids = runOperations(run, count, () => {
    const from = randomHonestPeer(run, prng)
    const key = randomKeyBytes(prng)
    const id = run.nextQueryId()
    checks.push({ id, from, target: keyFromBytes(key) })
    run.command(from, { type: 'find-closest', queryId: id, key })
    return id
  })
  const hops: number[] = []
  const requests: number[] = []
  const durations: number[] = []
  let succeeded = 0
  let closestFound = 0
  let allKFound = 0
  let allKWithin4Hops = 0
  let overlapSum = 0
  for (const check of checks) {
    const done = run.done.get(check.id)
    if (done === undefined) continue
    hops.push(done.stats.hops)
    requests.push(done.stats.requests)
    durations.push(done.stats.durationMs)
    if (done.outcome === 'ok') succeeded++
    if (!checkTruth) continue
    const truth = run.trueClosest(check.target, k, check.from).map((index) => run.t.sim.idOf(index))
    const found = new Set(done.closest)
    const overlap = truth.filter((peer) => found.has(peer)).length
    overlapSum += overlap / truth.length
    if (found.has(truth[0]!)) closestFound++
    if (overlap === truth.length) {
      allKFound++
      if (done.stats.hops <= 4) allKWithin4Hops++
    }
  }
  const figures: Record<string, Figure> = {
    lookups: ids.length,
    lookupSuccessRate: round(succeeded / ids.length, 4),
    lookupHopsP50: round(percentile(hops, 0.5)),
    lookupHopsP95: round(percentile(hops, 0.95)),
    lookupRequestsMean: round(requests.reduce((sum, value) => sum + value, 0) / Math.max(1, requests.length), 1),
    lookupLatencyP50Ms: round(percentile(durations, 0.5)),
    lookupLatencyP95Ms: round(percentile(durations, 0.95)),
  }
  if (checkTruth) {
    figures.lookupFoundClosestRate = round(closestFound / ids.length, 4)
    figures.lookupFoundAllKClosestRate = round(allKFound / ids.length, 4)
    figures.lookupKClosestWithin4HopsRate = round(allKWithin4Hops / ids.length, 4)
    figures.lookupKClosestOverlapMean = round(overlapSum / ids.length, 4)
  }
  return figures
}

interface Content {
  key: Uint8Array
  provider: number
}

/** Each content provided by a random honest peer; the provide's duration and reach measured. */
function provideContents(run: DhtRun, prng: Prng, count: number): { contents: Content[]; figures: Record<string, Figure> } {
  const contents: Content[] = []
  const ids = runOperations(run, count, () => {
    const content = { key: randomKeyBytes(prng), provider: randomHonestPeer(run, prng) }
    contents.push(content)
    const id = run.nextQueryId()
    run.command(content.provider, { type: 'provide', queryId: id, key: content.key })
    return id
  })
  const durations: number[] = []
  const stored: number[] = []
  for (const id of ids) {
    const done = run.done.get(id)
    if (done === undefined) continue
    durations.push(done.stats.durationMs)
    stored.push(done.storedCount ?? 0)
  }
  return {
    contents,
    figures: {
      provides: ids.length,
      provideLatencyP50Ms: round(percentile(durations, 0.5)),
      provideLatencyP95Ms: round(percentile(durations, 0.95)),
      provideStoredMean: round(stored.reduce((sum, value) => sum + value, 0) / Math.max(1, stored.length), 1),
    },
  }
}

/** find-providers (first provider) of each content, from a random other honest peer. */
function findProviders(run: DhtRun, prng: Prng, contents: readonly Content[], prefix: string): Record<string, Figure> {
  const asked: Array<{ id: number; content: Content }> = []
  const ids = runOperations(run, contents.length, (index) => {
    const content = contents[index]!
    const id = run.nextQueryId()
    asked.push({ id, content })
    run.command(randomHonestPeer(run, prng, content.provider), { type: 'find-providers', queryId: id, key: content.key, countMax: 1 })
    return id
  })
  const latencies: number[] = []
  const hops: number[] = []
  const requests: number[] = []
  let found = 0
  for (const { id, content } of asked) {
    const done = run.done.get(id)
    const providers = run.providersFound.get(id) ?? []
    if (done === undefined || !providers.some((provider) => provider.id === run.t.sim.idOf(content.provider))) continue
    found++
    latencies.push(done.stats.firstResultMs ?? done.stats.durationMs)
    hops.push(done.stats.hops)
    requests.push(done.stats.requests)
  }
  return {
    [`${prefix}Searches`]: ids.length,
    [`${prefix}SuccessRate`]: round(found / Math.max(1, ids.length), 4),
    [`${prefix}LatencyP50Ms`]: round(percentile(latencies, 0.5)),
    [`${prefix}LatencyP95Ms`]: round(percentile(latencies, 0.95)),
    [`${prefix}HopsP50`]: round(percentile(hops, 0.5)),
    [`${prefix}RequestsMean`]: round(requests.reduce((sum, value) => sum + value, 0) / Math.max(1, requests.length), 1),
  }
}

function costFigures(run: DhtRun, startedMs: number): Record<string, Figure> {
  const { counters } = run.t.sim
  return {
    onlinePeers: run.t.sim.onlineCount,
    requestsSent: counters.requestsSent,
    requestsFailed: counters.requestsFailedDial + counters.requestsFailedConnectionClosed + counters.requestsFailedProtocolUnsupported + counters.requestsFailedUnknownPeer,
    dials: counters.dials,
    /** Ticks asked for at the instant of the last one: a core whose deadline stays in the past. */
    stuckDeadlines: counters.stuckDeadlines,
    wallMs: Math.round(performance.now() - startedMs),
  }
}

function report(run: DhtRun, figures: Record<string, Figure>): ScenarioReport {
  return { events: run.t.sim.eventCount, simulatedMs: run.t.now, traceHash: run.t.sim.traceHash, figures }
}

export function runDhtLookup(options: ScenarioRunOptions, overrides: Partial<DhtKnobs> = {}): ScenarioReport {
  const startedMs = performance.now()
  const run = dhtScenario(options.seed, { ...overrides, peers: options.peers, operations: options.count ?? DHT_KNOBS.operations }, 'dht-lookup')
  const prng = run.t.sim.prng('operations')
  formNetwork(run)
  const formedMs = performance.now()
  const checkTruth = run.knobs.operations <= 10_000
  const lookups = measureLookups(run, prng, run.knobs.operations, checkTruth)
  const lookupsWallMs = Math.round(performance.now() - formedMs)
  const { contents, figures: provides } = provideContents(run, prng, Math.min(run.knobs.operations, 10_000))
  const searches = findProviders(run, prng, contents, 'providerSearch')
  return report(run, { ...lookups, lookupsWallMs, ...provides, ...searches, ...costFigures(run, startedMs) })
}

export function runDhtChurn(options: ScenarioRunOptions, overrides: Partial<DhtKnobs>, name: string): ScenarioReport {
  const startedMs = performance.now()
  const run = dhtScenario(options.seed, { ...overrides, peers: options.peers }, name)
  const prng = run.t.sim.prng('operations')
  formNetwork(run)
  const { contents, figures: provides } = provideContents(run, prng, Math.min(options.count ?? run.knobs.operations, 1_000))
  // Providers that come back announce their content again, as a restarting daemon does.
  const held = new Map<number, Content[]>()
  for (const content of contents) held.set(content.provider, [...(held.get(content.provider) ?? []), content])
  run.onJoin = (index) => {
    for (const content of held.get(index) ?? []) run.command(index, { type: 'provide', queryId: run.nextQueryId(), key: content.key })
  }
  const endMs = run.t.now + (options.ms ?? 2 * 3_600_000)
  const rounds: Array<Record<string, Figure>> = []
  while (run.t.now < endMs) {
    run.t.runTo(Math.min(endMs, run.t.now + 10 * 60_000))
    const online = contents.filter((content) => run.t.sim.isOnline(content.provider))
    rounds.push(findProviders(run, prng, online.slice(0, 200), 'search'))
  }
  const rates = rounds.map((figures) => figures.searchSuccessRate as number)
  const latencies = rounds.map((figures) => figures.searchLatencyP50Ms as number)
  return report(run, {
    ...provides,
    searchRounds: rounds.length,
    searchSuccessRateMin: round(Math.min(...rates), 4),
    searchSuccessRateMean: round(rates.reduce((sum, value) => sum + value, 0) / rates.length, 4),
    searchLatencyP50MsMedianOfRounds: round(percentile(latencies, 0.5)),
    arrivals: run.t.churn.counters.arrivals,
    rejoins: run.t.churn.counters.rejoins,
    crashes: run.t.churn.counters.crashes,
    gracefulLeaves: run.t.churn.counters.gracefulLeaves,
    ...costFigures(run, startedMs),
  })
}

/** The same network twice, lookups plain then over 4 disjoint paths; figures prefixed plain. and disjoint4. */
export function runDhtEclipse(options: ScenarioRunOptions, overrides: Partial<DhtKnobs> = {}): ScenarioReport {
  const startedMs = performance.now()
  const figures: Record<string, Figure> = {}
  const summaries: Omit<ScenarioReport, 'figures'>[] = []
  for (const disjointPaths of [1, 4]) {
    const run = dhtScenario(options.seed, { adversaryFraction: 0.2, ...overrides, peers: options.peers, kad: { ...overrides.kad, disjointPaths } }, 'dht-eclipse')
    const prng = run.t.sim.prng('operations')
    formNetwork(run)
    const operations = Math.min(options.count ?? 1_000, 10_000)
    const { contents, figures: provides } = provideContents(run, prng, operations)
    const searches = findProviders(run, prng, contents, 'providerSearch')
    const label = disjointPaths === 1 ? 'plain' : `disjoint${disjointPaths}`
    for (const [name, value] of Object.entries({ ...provides, ...searches, stuckDeadlines: run.t.sim.counters.stuckDeadlines })) figures[`${label}.${name}`] = value
    summaries.push({ events: run.t.sim.eventCount, simulatedMs: run.t.now, traceHash: run.t.sim.traceHash })
  }
  return { ...combinedRuns(summaries), figures: { ...figures, wallMs: Math.round(performance.now() - startedMs) } }
}

export const DHT_LOOKUP_SCENARIO: NamedScenario = {
  name: 'dht-lookup',
  description: 'N peers form a Kademlia DHT over wide-area latency; random lookups checked against the true k closest, then provide and find-providers (--count operations each)',
  defaults: { peers: 10_000, ms: 0 },
  run: (options) => runDhtLookup(options),
}

/** Churning peers' sessions: exponential with median 30 min. */
const SESSION_30_MIN_MEDIAN: DurationDistribution = { kind: 'exponential', meanMs: (30 * 60_000) / Math.LN2 }
/** Replaced per hour by churning peers: churningFraction / mean session (in hours). */
const churningFractionFor = (replacedPerHour: number) => replacedPerHour * ((30 / 60) / Math.LN2)

export const DHT_CHURN_SCENARIO: NamedScenario = {
  name: 'dht-churn',
  description: 'as dht-lookup, with 10% of peers replaced each hour (sessions of churning peers: median 30 min); provider searches for held content every 10 min',
  defaults: { peers: 10_000, ms: 2 * 3_600_000 },
  run: (options) => runDhtChurn(options, { churningFraction: churningFractionFor(0.1), session: SESSION_30_MIN_MEDIAN, offline: { kind: 'exponential', meanMs: 60_000 } }, 'dht-churn'),
}

export const DHT_CHURN_HEAVY_SCENARIO: NamedScenario = {
  name: 'dht-churn-heavy',
  description: 'dht-churn with 50% of peers replaced every 2 hours',
  defaults: { peers: 10_000, ms: 2 * 3_600_000 },
  run: (options) => runDhtChurn(options, { churningFraction: churningFractionFor(0.25), session: SESSION_30_MIN_MEDIAN, offline: { kind: 'exponential', meanMs: 60_000 } }, 'dht-churn-heavy'),
}

export const DHT_ECLIPSE_SCENARIO: NamedScenario = {
  name: 'dht-eclipse',
  description: '20% adversaries answer lookups with only adversaries and drop provider records; provider searches with and without disjoint paths (d = 4)',
  defaults: { peers: 10_000, ms: 0 },
  run: (options) => runDhtEclipse(options),
}
