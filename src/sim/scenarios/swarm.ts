/**
 * The swarm scenarios: one origin seed and N downloaders running the real SwarmCore (behind
 * SwarmHost, the node's part) fetch one file, F = 1 GiB of 1,024 leaves of 1 MiB under one
 * unixfs-v1-2025 root node of 51,211 bytes, fetched first; blocks are virtual (a length).
 *
 *   swarm-flash        every downloader arrives within 1 s; homogeneous uploads, then heterogeneous
 *   swarm-poisson      Poisson arrivals over 300 s; homogeneous, then heterogeneous
 *   swarm-freeriders   20% of the downloaders never upload (adversaries/FreeRider); the origin
 *                      leaves once every leaf is held by 3 downloaders that upload
 *   swarm-strategic    heterogeneous uploads; 1% of the downloaders of each class play a
 *                      BitTyrant-style strategy (adversaries/StrategicPeer)
 *   swarm-poisoning    15% of the downloaders serve blocks that do not match their CIDs
 *                      (adversaries/Poisoner); honest peers verify every block (SwarmHost), so
 *                      none is stored, and ban whoever sent it; against the same swarm without them
 *   swarm-poisoning-covert  as swarm-poisoning, the poisoners sending each peer 32 true
 *                      blocks first, then corrupting one block in four
 *   swarm-poisoning-whitewash  as swarm-poisoning, the poisoners colluding, each coming back
 *                      under a fresh peer id (a peer of its own, idle until then, that arrives
 *                      as any downloader does) with its store once 16 peers banned the one it
 *                      has (adversaries/Whitewasher), up to 8 identities
 *
 * The network: the origin uploads at 100 Mbit/s; a downloader at 50 Mbit/s (homogeneous) or
 * 10, 50 or 100 Mbit/s, a third each (heterogeneous); every peer downloads at 200 Mbit/s
 * (an asymmetric access line). One-way latency is WIDE_AREA_LATENCY's lognormal (median
 * 40 ms). Each connection is one serialized stream (NetworkConfig.streamsSerialized), and
 * messages up to 2 KiB (have, request, choke...) take no share of a link.
 *
 * Sources: the DHT does not run alongside (at 10,000 peers it would cost more than the
 * swarm); a peer's find-sources is answered as a BitTorrent tracker would, with up to 50
 * peers drawn at random among those in the swarm (arrived and online), the origin always
 * among them on a peer's first ask while it is online.
 *
 * Peers stay online, seeding, once complete, until the run ends (every downloader complete,
 * or the time limit); the origin stays too unless the scenario makes it leave.
 *
 * Measures, against LB = max(F/u_s, F/d_min, N·F/(u_s + Σu_i)) (Kumar and Ross's minimum
 * distribution time for a flash crowd; it ignores latency and the DAG fetch): download
 * times (completion − arrival) p50, p99 and p99.9; origin egress and the largest upload of
 * one downloader in multiples of F; upload utilisation over the steady state, defined as
 * the interval from the instant 10% of all the leaf copies the run delivers have arrived to
 * the instant 90% have; the endgame, the time the last 1% of the leaves of each download
 * took as a share of its download time. For Poisson arrivals the download times are held
 * against the same LB, as the issue defines it, though it bounds no single download strictly
 * there (a late arrival finds seeds that stay, and may beat it); F/d_i, its own downlink,
 * does, and is given beside, but a download reaches it only where seeds far outnumber
 * downloaders, not while the swarm is still growing.
 */
import { Prng } from '../../core/prng.ts'
import type { Core, Millis, PeerId } from '../../core/sans-io.ts'
import { swarmConfig, type SwarmConfig } from '../../core/swarm/config.ts'
import type { SwarmMessage } from '../../core/swarm/messages.ts'
import { SwarmCore, type Source, type SwarmAction, type SwarmEvent, type SwarmInput } from '../../core/swarm/swarm.ts'
import { swarmMessageSize } from '../../wire/swarm.ts'
import { FreeRider, Poisoner, StrategicPeer, Whitewasher, type PoisonerTeam, type PoisoningPattern, type WhitewashPolicy } from '../adversaries/swarm-adversaries.ts'
import type { DurationDistribution } from '../distributions.ts'
import { scenario, type Scenario } from '../scenario.ts'
import type { SimCore, SimInput } from '../simulator.ts'
import { WIDE_AREA_LATENCY } from './dht.ts'
import { SwarmHost, tamperedBlock, verifiesAgainst, virtualFile, type SwarmObserver, type VirtualFile } from './swarm-host.ts'
import { combinedRuns, type Figure, type NamedScenario, type ScenarioReport, type ScenarioRunOptions } from './types.ts'

/** Bytes per second in one Mbit/s. */
export const MBIT_PER_SECOND = 125_000
const MIB = 1024 * 1024

export interface CapacityClass {
  label: string
  uploadBytesPerSecond: number
  /** Share of the downloaders in this class (the shares sum to 1). */
  share: number
}

export const HOMOGENEOUS_CLASSES: readonly CapacityClass[] = [{ label: 'up50', uploadBytesPerSecond: 50 * MBIT_PER_SECOND, share: 1 }]
export const HETEROGENEOUS_CLASSES: readonly CapacityClass[] = [
  { label: 'up10', uploadBytesPerSecond: 10 * MBIT_PER_SECOND, share: 1 / 3 },
  { label: 'up50', uploadBytesPerSecond: 50 * MBIT_PER_SECOND, share: 1 / 3 },
  { label: 'up100', uploadBytesPerSecond: 100 * MBIT_PER_SECOND, share: 1 / 3 },
]

export type ArrivalPattern =
  /** Arrivals uniform at random within the window. */
  | { kind: 'flash'; windowMs: number }
  /** A Poisson process of rate peers / windowMs. */
  | { kind: 'poisson'; windowMs: number }

export interface SwarmKnobs {
  /** Downloaders; the origin is one more peer (index 0). */
  peers: number
  leafCount: number
  leafBytes: number
  originUploadBytesPerSecond: number
  downloadBytesPerSecond: number
  classes: readonly CapacityClass[]
  arrival: ArrivalPattern
  /** Share of the downloaders that never upload. */
  freeRiderShare: number
  /** Downloaders of each class that play the strategy of StrategicPeer. */
  strategicPerClass: number
  /** Share of the downloaders that serve corrupt blocks (Poisoner). */
  poisonerShare: number
  /** True blocks a poisoner sends each peer before it corrupts any (PoisoningPattern). */
  poisonerTrueBlocksFirst: number
  /** Of a poisoner's blocks after those, the share it corrupts. */
  poisonerCorruptShare: number
  /** Poisoners know each other's peer ids and send each other true blocks (PoisonerTeam). */
  poisonersCollude: boolean
  /** Identities each poisoner uses in all (WhitewashPolicy): 1, it never comes back once banned. */
  poisonerIdentitiesMax: number
  /** Peers that ban a poisoner's identity before it comes back under a fresh one. */
  poisonerBansPerIdentity: number
  /** From a poisoner identity's departure to its next one's arrival. */
  poisonerRejoinDelayMs: number
  /**
   * The origin leaves once every leaf is held by this many downloaders that upload (not free
   * riders, whose copies serve nobody); Infinity: it stays.
   */
  originLeavesAtCopies: number
  /** Peers a tracker answer holds. */
  sourcesCount: number
  latency: DurationDistribution
  handshakeRoundTripCount: number
  expressBytesMax: number
  /** Swarm configuration over the defaults, for every honest core. */
  swarm: Partial<SwarmConfig>
  /** The origin publishes as an initial seed (SwarmConfig.initialSeeding), as a publisher's node is set up to. */
  originInitialSeeding: boolean
  /** The run stops this long after the last arrival at the latest, in multiples of LB. */
  timeLimitLbMultiple: number
  /** Overrides the time limit (virtual ms), when given. */
  timeLimitMs?: number
}

export const SWARM_KNOBS: SwarmKnobs = {
  peers: 1_000,
  leafCount: 1_024,
  leafBytes: MIB,
  originUploadBytesPerSecond: 100 * MBIT_PER_SECOND,
  downloadBytesPerSecond: 200 * MBIT_PER_SECOND,
  classes: HOMOGENEOUS_CLASSES,
  arrival: { kind: 'flash', windowMs: 1_000 },
  freeRiderShare: 0,
  strategicPerClass: 0,
  poisonerShare: 0,
  poisonerTrueBlocksFirst: 0,
  poisonerCorruptShare: 1,
  poisonersCollude: false,
  poisonerIdentitiesMax: 1,
  poisonerBansPerIdentity: 1,
  poisonerRejoinDelayMs: 1_000,
  originLeavesAtCopies: Infinity,
  sourcesCount: 50,
  latency: WIDE_AREA_LATENCY,
  handshakeRoundTripCount: 2,
  expressBytesMax: 2_048,
  swarm: {},
  originInitialSeeding: true,
  timeLimitLbMultiple: 20,
}

const enum Role {
  Origin = 0,
  Compliant = 1,
  FreeRider = 2,
  Strategic = 3,
  Poisoner = 4,
}



/** A simulated peer's index from its id, p<index> (as Simulator names them), without a map lookup. */
function peerIndexOf(id: PeerId): number {
  let index = 0
  for (let position = 1; position < id.length; position++) index = index * 10 + id.charCodeAt(position) - 48
  return index
}

/** Every this often the run's totals are sampled, for utilisation. */
const SAMPLE_EVERY_MS = 1_000

/** The tracker and the measurements: what every host reports to. */
export class SwarmWorld implements SwarmObserver {
  readonly file: VirtualFile
  readonly peerCount: number
  readonly role: Uint8Array
  readonly classOf: Uint8Array
  readonly uploadBytesPerSecond: Float64Array
  readonly arrivalMs: Float64Array
  readonly dagMs: Float64Array
  readonly lastPercentMs: Float64Array
  readonly completeMs: Float64Array
  /** Leaves each peer held when the origin left, and when the last compliant downloader completed. */
  heldAtOriginLeft: Uint16Array | undefined
  heldAtCompliantDone: Uint16Array | undefined
  heldAtCompliantFirstDone: Uint16Array | undefined
  originLeftMs = Number.NaN
  compliantDoneMs = Number.NaN
  compliantFirstDoneMs = Number.NaN
  /** Block bytes counted on arrival, by sender. */
  readonly uploadedBlockBytes: Float64Array
  readonly hosts: (SwarmHost | undefined)[]
  readonly cores: (SwarmCore | undefined)[]
  readonly adversaries: Core<SwarmInput, SwarmAction>[] = []
  completedCount = 0
  compliantCount = 0
  compliantCompletedCount = 0
  /** Downloaders the run waits for: all but poisoners, which honest peers ban and may never serve in full. */
  awaitedCount = 0
  awaitedCompletedCount = 0
  /** Bans for a bad block, each (banning peer, banned peer) once, as banning × peerCount + banned. */
  readonly badBlockBans = new Set<number>()
  /**
   * Each poisoner identity's attacker: the index of the attacker's first identity (its own
   * for a first one); -1 for every other peer. The fresh identities are peers after the
   * downloaders, online and idle from the start, outside the tracker until they arrive.
   */
  readonly attackerOf: Int32Array
  /** Each whitewashing attacker's identities, its first one first, and what it decided. */
  readonly identities = new Map<number, number[]>()
  readonly whitewashers = new Map<number, Whitewasher>()
  /** Bytes of blocks that did not verify, received by honest peers from poisoners. */
  badBlockBytesToHonest = 0
  /** Bytes of blocks poisoners received from honest peers: honest upload the swarm lost to them. */
  honestBlockBytesToPoisoners = 0
  /** Of those, the origin's. */
  originBlockBytesToPoisoners = 0
  leafCopiesStored = 0
  blockBytesUploaded = 0
  /** Sum of the upload capacities of the peers online (origin included). */
  onlineUploadBytesPerSecond = 0
  /** Samples every SAMPLE_EVERY_MS: time, leaf copies stored, wire and block bytes uploaded, capacity online. */
  readonly samples: number[][] = []
  #t: Scenario<SwarmMessage> | undefined
  readonly #lastPercentCount: number
  readonly #copies: Uint32Array
  #leavesAtCopies = 0
  readonly #originLeavesAtCopies: number
  /** The tracker's list: peers in the swarm, and each one's place in it (-1 when out). */
  readonly #members: number[] = []
  readonly #memberSlot: Int32Array
  readonly #askedSources: Uint8Array
  readonly #sourceOf: (Source | undefined)[]
  readonly #picked: Uint32Array
  #pickRound = 0
  readonly #sourcesCount: number
  readonly #trackerPrng: Prng

  constructor(file: VirtualFile, peerCount: number, options: { sourcesCount: number; originLeavesAtCopies: number; prng: Prng }) {
    this.file = file
    this.peerCount = peerCount
    this.role = new Uint8Array(peerCount)
    this.classOf = new Uint8Array(peerCount)
    this.uploadBytesPerSecond = new Float64Array(peerCount)
    this.arrivalMs = new Float64Array(peerCount).fill(Number.NaN)
    this.dagMs = new Float64Array(peerCount).fill(Number.NaN)
    this.lastPercentMs = new Float64Array(peerCount).fill(Number.NaN)
    this.completeMs = new Float64Array(peerCount).fill(Number.NaN)
    this.attackerOf = new Int32Array(peerCount).fill(-1)
    this.uploadedBlockBytes = new Float64Array(peerCount)
    this.hosts = new Array(peerCount).fill(undefined)
    this.cores = new Array(peerCount).fill(undefined)
    this.#lastPercentCount = Math.ceil(0.99 * file.leafCount)
    this.#copies = new Uint32Array(file.leafCount)
    this.#originLeavesAtCopies = options.originLeavesAtCopies
    this.#memberSlot = new Int32Array(peerCount).fill(-1)
    this.#askedSources = new Uint8Array(peerCount)
    this.#sourceOf = new Array(peerCount).fill(undefined)
    this.#picked = new Uint32Array(peerCount)
    this.#sourcesCount = options.sourcesCount
    this.#trackerPrng = options.prng
  }

  attach(t: Scenario<SwarmMessage>): void {
    this.#t = t
  }

  get t(): Scenario<SwarmMessage> {
    return this.#t!
  }

  // ---- the tracker ----------------------------------------------------------------------

  join(index: number): void {
    if (this.#memberSlot[index]! >= 0) return
    this.#memberSlot[index] = this.#members.length
    this.#members.push(index)
  }

  leave(index: number): void {
    const slot = this.#memberSlot[index]!
    if (slot < 0) return
    const last = this.#members.pop()!
    if (last !== index) {
      this.#members[slot] = last
      this.#memberSlot[last] = slot
    }
    this.#memberSlot[index] = -1
  }

  sources(index: number): readonly Source[] {
    const members = this.#members
    const wanted = Math.min(this.#sourcesCount, members.length - (this.#memberSlot[index]! >= 0 ? 1 : 0))
    const round = ++this.#pickRound
    const picked = this.#picked
    picked[index] = round
    const sources: Source[] = []
    if (this.#askedSources[index] === 0 && this.#memberSlot[0]! >= 0 && index !== 0) {
      sources.push(this.#source(0))
      picked[0] = round
    }
    this.#askedSources[index] = 1
    if (wanted >= members.length - 1) {
      for (const member of members) if (picked[member] !== round) sources.push(this.#source(member))
      return sources
    }
    while (sources.length < wanted) {
      const member = members[this.#trackerPrng.int(members.length)]!
      if (picked[member] === round) continue
      picked[member] = round
      sources.push(this.#source(member))
    }
    return sources
  }

  #source(index: number): Source {
    return (this.#sourceOf[index] ??= Object.freeze({ peer: this.t.sim.idOf(index), addresses: [] }))
  }

  // ---- what the hosts report --------------------------------------------------------------

  stored(index: number, leaf: number, heldCount: number, now: Millis): void {
    if (leaf < 0) {
      this.dagMs[index] = now
      return
    }
    this.leafCopiesStored++
    if (heldCount === this.#lastPercentCount) this.lastPercentMs[index] = now
    if (this.role[index] === Role.FreeRider) return
    if (++this.#copies[leaf]! === this.#originLeavesAtCopies && ++this.#leavesAtCopies === this.file.leafCount && this.t.sim.isOnline(0)) {
      this.t.leave(0)
    }
  }

  event(index: number, event: SwarmEvent, now: Millis): void {
    if (event.type === 'misbehaved' && event.reason === 'bad-block') this.badBlockBans.add(index * this.peerCount + peerIndexOf(event.peer))
    if (event.type !== 'complete' || !Number.isNaN(this.completeMs[index]!) || index === 0) return
    this.completeMs[index] = now
    this.completedCount++
    if (this.role[index] !== Role.Poisoner) this.awaitedCompletedCount++
    if (this.role[index] === Role.Compliant && this.compliantCompletedCount === 0) {
      this.compliantFirstDoneMs = now
      this.heldAtCompliantFirstDone = this.#heldNow()
    }
    if (this.role[index] === Role.Compliant && ++this.compliantCompletedCount === this.compliantCount) {
      this.compliantDoneMs = now
      this.heldAtCompliantDone = this.#heldNow()
    }
  }

  received(index: number, from: PeerId, message: SwarmMessage, _now: Millis): void {
    if (message.type !== 'block') return
    const sender = peerIndexOf(from)
    this.uploadedBlockBytes[sender]! += message.data.byteLength
    this.blockBytesUploaded += message.data.byteLength
    if (this.role[index] === Role.Poisoner && this.isHonest(sender)) {
      this.honestBlockBytesToPoisoners += message.data.byteLength
      if (sender === 0) this.originBlockBytesToPoisoners += message.data.byteLength
    }
    if (this.role[sender] !== Role.Poisoner || !this.isHonest(index)) return
    const cid = typeof message.block === 'number' ? this.file.leaves[message.block] : message.block
    if (cid === undefined || !verifiesAgainst(message.data, cid)) this.badBlockBytesToHonest += message.data.byteLength
  }

  isHonest(index: number): boolean {
    return this.role[index] === Role.Compliant || this.role[index] === Role.Origin
  }

  /** A fresh identity that has not arrived yet: online and idle, outside the swarm. */
  isWaitingIdentity(index: number): boolean {
    const attacker = this.attackerOf[index]!
    return attacker >= 0 && attacker !== index && Number.isNaN(this.arrivalMs[index]!)
  }

  /** Bytes on the wire that have left every peer so far (the simulator counts them as they leave). */
  wireBytesUploadedNow(): number {
    let total = 0
    for (let index = 0; index < this.peerCount; index++) total += this.t.sim.bytesUploadedBy(index)
    return total
  }

  onOnline(index: number): void {
    this.onlineUploadBytesPerSecond += this.uploadBytesPerSecond[index]!
  }

  onOffline(index: number, now: Millis): void {
    this.onlineUploadBytesPerSecond -= this.uploadBytesPerSecond[index]!
    this.leave(index)
    if (index === 0) {
      this.originLeftMs = now
      this.heldAtOriginLeft = this.#heldNow()
    }
  }

  sample(now: Millis): void {
    this.samples.push([now, this.leafCopiesStored, this.wireBytesUploadedNow(), this.blockBytesUploaded, this.onlineUploadBytesPerSecond])
  }

  #heldNow(): Uint16Array {
    const held = new Uint16Array(this.peerCount)
    for (let index = 0; index < this.peerCount; index++) held[index] = this.hosts[index]?.heldCount ?? 0
    return held
  }
}

export interface SwarmRun {
  t: Scenario<SwarmMessage>
  knobs: SwarmKnobs
  world: SwarmWorld
  /** Every downloader completed within the time limit. */
  finished: boolean
  lbMs: number
  wallMs: number
}

/** Builds the swarm and runs it until every downloader completes or the time limit passes. */
export function runSwarm(seed: ScenarioRunOptions['seed'], overrides: Partial<SwarmKnobs>, name: string): SwarmRun {
  const startedMs = performance.now()
  const knobs: SwarmKnobs = { ...SWARM_KNOBS, ...overrides }
  const whitewash: WhitewashPolicy = { identitiesMax: knobs.poisonerIdentitiesMax, bansPerIdentity: knobs.poisonerBansPerIdentity }
  // Each whitewashing poisoner's fresh identities are peers of their own: a new peer id is a new simulated peer.
  const peerCount = knobs.peers + 1 + poisonerCountOf(knobs) * (whitewash.identitiesMax - 1)
  const file = virtualFile('swarm-file', knobs.leafCount, knobs.leafBytes)
  const frameOverheadBytes = 32
  const world = new SwarmWorld(file, peerCount, {
    sourcesCount: knobs.sourcesCount,
    originLeavesAtCopies: knobs.originLeavesAtCopies,
    prng: Prng.fromSeed(seed).fork('swarm:tracker'),
  })
  assignRoles(world, knobs, Prng.fromSeed(seed).fork('swarm:roles'))
  for (const attacker of world.identities.keys()) world.whitewashers.set(attacker, new Whitewasher(whitewash))
  const arrivalsPrng = Prng.fromSeed(seed).fork('swarm:arrivals')
  // A fresh identity arrives when its attacker whitewashes, if ever (NaN until then).
  const arrivalAt = new Float64Array(peerCount).fill(Number.NaN)
  if (knobs.arrival.kind === 'flash') {
    for (let index = 1; index <= knobs.peers; index++) arrivalAt[index] = arrivalsPrng.uniform(0, knobs.arrival.windowMs)
  } else {
    const gapMeanMs = knobs.arrival.windowMs / knobs.peers
    let at = 0
    for (let index = 1; index <= knobs.peers; index++) {
      arrivalAt[index] = at
      at += arrivalsPrng.exponential(gapMeanMs)
    }
  }
  const config = swarmConfig({ progressIntervalMs: 0, ...knobs.swarm })
  const originConfig = swarmConfig({ ...config, initialSeeding: knobs.originInitialSeeding })
  const poisoning: PoisoningPattern = { trueBlocksFirst: knobs.poisonerTrueBlocksFirst, corruptShare: knobs.poisonerCorruptShare }

  const t = scenario<SwarmMessage>({
    name,
    peerCount,
    seed,
    sizeOf: (message) => swarmMessageSize(message),
    network: {
      latency: knobs.latency,
      handshakeRoundTripCount: knobs.handshakeRoundTripCount,
      uploadBytesPerSecond: knobs.originUploadBytesPerSecond,
      downloadBytesPerSecond: knobs.downloadBytesPerSecond,
      frameOverheadBytes,
      streamsSerialized: true,
      expressBytesMax: knobs.expressBytesMax,
    },
    bootstrapPeers: [0],
    churn: { arrival: { kind: 'all-at-once' }, crashFraction: 0 },
    knobs: { ...knobs, classes: knobs.classes.map((entry) => entry.label).join('/'), swarm: undefined, ...knobs.swarm },
    createCore: (context): SimCore<SwarmMessage> => {
      const index = context.index
      const role = world.role[index]!
      const peerConfig = role === Role.Origin ? originConfig : role === Role.Strategic ? StrategicPeer.config(config, world.uploadBytesPerSecond[index]!) : config
      const core = new SwarmCore({ self: context.id, config: peerConfig, prng: context.prng })
      let inner: Core<SwarmInput, SwarmAction> = core
      if (role === Role.FreeRider) inner = new FreeRider(core)
      else if (role === Role.Strategic) inner = new StrategicPeer(core, world.uploadBytesPerSecond[index]!)
      else if (role === Role.Poisoner) inner = new Poisoner(core, tamperedBlock, poisoning, poisonerTeam(index))
      if (inner !== core) world.adversaries.push(inner)
      const host = new SwarmHost(index, inner, file, world, index === 0)
      world.hosts[index] = host
      world.cores[index] = core
      return host
    },
    onJoin: (index) => {
      if (world.isWaitingIdentity(index)) return
      world.onOnline(index)
      if (index === 0) world.join(0)
      else world.t.at(arrivalAt[index]!, () => arrive(index))
    },
    onLeave: (index, _crashed, now) => world.onOffline(index, now),
  })
  world.attach(t)
  for (let index = 0; index < peerCount; index++) t.sim.setCapacity(index, world.uploadBytesPerSecond[index]!, knobs.downloadBytesPerSecond)

  const arrive = (index: number): void => {
    world.arrivalMs[index] = t.now
    world.join(index)
    t.sim.input(index, { type: 'fetch', root: file.root, rootIsLeaf: false, order: 'rarest' } as unknown as SimInput<SwarmMessage>)
  }
  const poisonerTeam = (index: number): PoisonerTeam => ({
    ...(knobs.poisonersCollude ? { isAccomplice: (peer: PeerId) => world.role[peerIndexOf(peer)] === Role.Poisoner } : {}),
    ...(whitewash.identitiesMax > 1 ? { onBanned: () => whitewashIfDue(index) } : {}),
  })
  /** A poisoner identity was banned once more: its attacker may leave and come back as its next identity, with its store. */
  const whitewashIfDue = (identity: number): void => {
    const attacker = world.attackerOf[identity]!
    const identities = world.identities.get(attacker)!
    const whitewasher = world.whitewashers.get(attacker)!
    // Bans of an identity already dropped (told as it leaves) count for nothing.
    if (identities[whitewasher.identitiesUsed - 1] !== identity || !whitewasher.banned()) return
    const fresh = identities[whitewasher.identitiesUsed - 1]!
    t.leave(identity)
    t.at(t.now + knobs.poisonerRejoinDelayMs, () => {
      world.hosts[fresh]!.adoptStoreOf(world.hosts[identity]!)
      world.onOnline(fresh)
      arrive(fresh)
    })
  }
  const sampleAt = (at: number): void => {
    t.at(at, () => {
      world.sample(at)
      sampleAt(at + SAMPLE_EVERY_MS)
    })
  }
  sampleAt(0)

  const lbMs = flashLowerBoundMs(world, knobs)
  let lastArrivalMs = 0
  for (let index = 1; index <= knobs.peers; index++) lastArrivalMs = Math.max(lastArrivalMs, arrivalAt[index]!)
  const limitMs = knobs.timeLimitMs ?? lastArrivalMs + knobs.timeLimitLbMultiple * lbMs
  const elapsed = t.tryRunUntil(() => world.awaitedCompletedCount === world.awaitedCount, { msMax: limitMs, checkEveryMs: SAMPLE_EVERY_MS })
  world.sample(t.now)
  return { t, knobs, world, finished: elapsed !== undefined, lbMs, wallMs: performance.now() - startedMs }
}

function poisonerCountOf(knobs: SwarmKnobs): number {
  return Math.round(knobs.poisonerShare * knobs.peers)
}

/**
 * Capacity classes in the given shares, at random places; then free riders, strategic peers
 * and poisoners; then each poisoner's fresh identities, of its class, after the downloaders.
 */
function assignRoles(world: SwarmWorld, knobs: SwarmKnobs, prng: Prng): void {
  const downloaders = Array.from({ length: knobs.peers }, (_, index) => index + 1)
  const order = prng.sample(downloaders, downloaders.length)
  let start = 0
  knobs.classes.forEach((entry, classIndex) => {
    const end = classIndex === knobs.classes.length - 1 ? order.length : Math.min(order.length, start + Math.round(entry.share * knobs.peers))
    for (let position = start; position < end; position++) {
      const index = order[position]!
      world.classOf[index] = classIndex
      world.uploadBytesPerSecond[index] = entry.uploadBytesPerSecond
    }
    start = end
  })
  world.role.fill(Role.Compliant)
  world.role[0] = Role.Origin
  world.classOf[0] = 255
  world.uploadBytesPerSecond[0] = knobs.originUploadBytesPerSecond
  for (const index of prng.sample(downloaders, Math.round(knobs.freeRiderShare * knobs.peers))) world.role[index] = Role.FreeRider
  if (knobs.strategicPerClass > 0) {
    knobs.classes.forEach((_entry, classIndex) => {
      const members = downloaders.filter((index) => world.classOf[index] === classIndex && world.role[index] === Role.Compliant)
      for (const index of prng.sample(members, knobs.strategicPerClass)) world.role[index] = Role.Strategic
    })
  }
  if (knobs.poisonerShare > 0) {
    const members = downloaders.filter((index) => world.role[index] === Role.Compliant)
    for (const index of prng.sample(members, poisonerCountOf(knobs))) world.role[index] = Role.Poisoner
  }
  let fresh = knobs.peers + 1
  for (const index of downloaders) {
    if (world.role[index] !== Role.Poisoner) continue
    world.attackerOf[index] = index
    const identities = [index]
    for (let count = 1; count < knobs.poisonerIdentitiesMax; count++, fresh++) {
      world.role[fresh] = Role.Poisoner
      world.classOf[fresh] = world.classOf[index]!
      world.uploadBytesPerSecond[fresh] = world.uploadBytesPerSecond[index]!
      world.attackerOf[fresh] = index
      identities.push(fresh)
    }
    world.identities.set(index, identities)
  }
  for (const index of downloaders) {
    if (world.role[index] === Role.Compliant) world.compliantCount++
    if (world.role[index] !== Role.Poisoner) world.awaitedCount++
  }
}

/**
 * LB = max(F/u_s, F/d_min, N·F/(u_s + Σu_i)), in ms: N the downloaders the run waits for
 * (poisoners aside, whom honest peers stop serving), Σ over those that upload blocks that verify.
 */
export function flashLowerBoundMs(world: SwarmWorld, knobs: SwarmKnobs): number {
  const fileBytes = world.file.fileBytes
  let uploadSum = knobs.originUploadBytesPerSecond
  for (let index = 1; index < world.peerCount; index++) if (world.role[index] !== Role.FreeRider && world.role[index] !== Role.Poisoner) uploadSum += world.uploadBytesPerSecond[index]!
  const seconds = Math.max(fileBytes / knobs.originUploadBytesPerSecond, fileBytes / knobs.downloadBytesPerSecond, (world.awaitedCount * fileBytes) / uploadSum)
  return seconds * 1000
}

// ---- measuring ----------------------------------------------------------------------------

function round(value: number | undefined, digits = 0): number | null {
  return value === undefined || !Number.isFinite(value) ? null : Number(value.toFixed(digits))
}

/** The q-quantile by nearest rank of values sorted ascending. */
function quantile(sorted: Float64Array, q: number): number | undefined {
  if (sorted.length === 0) return undefined
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

function sortedOf(values: number[]): Float64Array {
  return Float64Array.from(values).sort()
}

function mean(values: readonly number[]): number | undefined {
  return values.length === 0 ? undefined : values.reduce((sum, value) => sum + value, 0) / values.length
}

/** A target as printed: the figure, the bound, and whether it is met. */
function target(value: number | null, comparison: '<=' | '>=', bound: number): string {
  if (value === null) return `missing ${comparison} ${bound}: MISSED`
  const met = comparison === '<=' ? value <= bound : value >= bound
  return `${value} ${comparison} ${bound}: ${met ? 'met' : 'MISSED'}`
}

/** Download times (completion − arrival) of the downloaders `include` accepts, in ms; NaN when incomplete. */
function downloadTimes(world: SwarmWorld, include: (index: number) => boolean): { times: number[]; incomplete: number } {
  const times: number[] = []
  let incomplete = 0
  for (let index = 1; index < world.peerCount; index++) {
    if (!include(index)) continue
    const time = world.completeMs[index]! - world.arrivalMs[index]!
    if (Number.isNaN(time)) incomplete++
    else times.push(time)
  }
  return { times, incomplete }
}

/** Upload utilisation from the instant `from` of all leaf copies have arrived to the instant `to` have. */
function utilisation(world: SwarmWorld, totalCopies: number, from: number, to: number): { wire: number; goodput: number; startMs: number; endMs: number } | undefined {
  const samples = world.samples
  const first = samples.findIndex((sample) => sample[1]! >= from * totalCopies)
  const last = samples.findIndex((sample) => sample[1]! >= to * totalCopies)
  if (first < 0 || last <= first) return undefined
  let capacityBytes = 0
  for (let index = first; index < last; index++) capacityBytes += samples[index]![4]! * ((samples[index + 1]![0]! - samples[index]![0]!) / 1000)
  return {
    wire: (samples[last]![2]! - samples[first]![2]!) / capacityBytes,
    goodput: (samples[last]![3]! - samples[first]![3]!) / capacityBytes,
    startMs: samples[first]![0]!,
    endMs: samples[last]![0]!,
  }
}

/** Counters of the honest cores of the downloaders `include` accepts, summed. */
function coreTotals(world: SwarmWorld, include: (index: number) => boolean): Record<string, number> {
  const totals: Record<string, number> = {}
  for (let index = 0; index < world.peerCount; index++) {
    const core = world.cores[index]
    if (core === undefined || !include(index)) continue
    for (const [key, value] of Object.entries(core.counters)) totals[key] = (totals[key] ?? 0) + value
  }
  return totals
}

/** The figures every swarm run gives: download times against the bound, egress, utilisation, endgame. */
export function swarmFigures(run: SwarmRun, options: { poisson: boolean }): Record<string, Figure> {
  const { world, knobs, lbMs } = run
  const fileBytes = world.file.fileBytes
  const compliant = (index: number) => world.role[index] === Role.Compliant
  const { times, incomplete } = downloadTimes(world, compliant)
  const sorted = sortedOf(times)
  const p50 = quantile(sorted, 0.5)
  const p99 = quantile(sorted, 0.99)
  const p999 = quantile(sorted, 0.999)
  const boundMs = lbMs
  const downlinkBoundMs = (fileBytes / knobs.downloadBytesPerSecond) * 1000
  const ratio = (value: number | undefined) => round(value === undefined ? undefined : value / boundMs, 3)
  let largestUpload = 0
  for (let index = 1; index < world.peerCount; index++) largestUpload = Math.max(largestUpload, world.uploadedBlockBytes[index]!)
  const shares: number[] = []
  for (let index = 1; index < world.peerCount; index++) {
    if (!compliant(index) || Number.isNaN(world.completeMs[index]!)) continue
    const total = world.completeMs[index]! - world.arrivalMs[index]!
    shares.push((world.completeMs[index]! - world.lastPercentMs[index]!) / total)
  }
  const endgame = sortedOf(shares)
  const dag = sortedOf(times.length === 0 ? [] : Array.from({ length: world.peerCount - 1 }, (_, position) => position + 1)
    .filter((index) => compliant(index) && !Number.isNaN(world.dagMs[index]!))
    .map((index) => world.dagMs[index]! - world.arrivalMs[index]!))
  const totalCopies = knobs.peers * world.file.leafCount
  const used = utilisation(world, totalCopies, 0.1, 0.9)
  const totals = coreTotals(world, (index) => index > 0)
  const originEgress = world.uploadedBlockBytes[0]! / fileBytes
  const figures: Record<string, Figure> = {
    downloaders: knobs.peers,
    compliant: world.compliantCount,
    completed: world.completedCount,
    incompleteCompliant: incomplete,
    lbSeconds: round(lbMs / 1000, 1),
  }
  if (options.poisson) figures.downlinkBoundSeconds = round(downlinkBoundMs / 1000, 1)
  Object.assign(figures, {
    downloadP50Seconds: round(p50 === undefined ? undefined : p50 / 1000, 1),
    downloadP99Seconds: round(p99 === undefined ? undefined : p99 / 1000, 1),
    downloadP999Seconds: round(p999 === undefined ? undefined : p999 / 1000, 1),
    downloadMaxSeconds: round(sorted.at(-1) === undefined ? undefined : sorted.at(-1)! / 1000, 1),
    p50OverBound: ratio(p50),
    p99OverBound: ratio(p99),
    p999OverBound: ratio(p999),
  })
  if (options.poisson) {
    figures.p50OverDownlinkBound = round(p50 === undefined ? undefined : p50 / downlinkBoundMs, 3)
    figures.p99OverDownlinkBound = round(p99 === undefined ? undefined : p99 / downlinkBoundMs, 3)
  }
  Object.assign(figures, {
    dagP50Ms: round(quantile(dag, 0.5)),
    dagP99Ms: round(quantile(dag, 0.99)),
    originEgressF: round(originEgress, 2),
    largestPeerUploadF: round(largestUpload / fileBytes, 2),
    utilisationWindowSeconds: used === undefined ? null : `${round(used.startMs / 1000, 0)}-${round(used.endMs / 1000, 0)}`,
    utilisation: round(used?.wire, 3),
    utilisationGoodput: round(used?.goodput, 3),
    lastPercentShareP50: round(quantile(endgame, 0.5), 4),
    lastPercentShareP99: round(quantile(endgame, 0.99), 4),
    lastPercentShareMax: round(endgame.at(-1), 4),
    duplicateBlocksPerDownload: round((totals.duplicateBlocks ?? 0) / knobs.peers, 2),
    endgameRequestsPerDownload: round((totals.endgameRequests ?? 0) / knobs.peers, 2),
    requestTimeouts: totals.requestTimeouts ?? 0,
    rejectsReceived: totals.rejectsReceived ?? 0,
    peersDroppedUnresponsive: totals.peersDroppedUnresponsive ?? 0,
    wireOverheadShare: round(1 - world.blockBytesUploaded / world.wireBytesUploadedNow(), 4),
    /** Ticks after which a core still asked for a tick at once: a core bug if not 0. */
    stuckDeadlines: run.t.sim.counters.stuckDeadlines,
    'target.p50': target(ratio(p50), '<=', 1.15),
    'target.p99': target(ratio(p99), '<=', 1.4),
    'target.p999': target(ratio(p999), '<=', 1.6),
    'target.utilisation': target(round(used?.wire, 3), '>=', 0.9),
    'target.originEgressF': target(round(originEgress, 2), '<=', 3),
    'target.lastPercentShareMax': target(round(endgame.at(-1), 4), '<=', 0.05),
    simulatedSeconds: round(run.t.now / 1000, 1),
    events: run.t.sim.eventCount,
    wallSeconds: round(run.wallMs / 1000, 1),
  })
  if (knobs.peers >= 10_000) figures['target.wallSeconds'] = target(round(run.wallMs / 1000, 1), '<=', 60)
  return figures
}

function prefixed(prefix: string, figures: Record<string, Figure>): Record<string, Figure> {
  return Object.fromEntries(Object.entries(figures).map(([key, value]) => [`${prefix}.${key}`, value]))
}

function timeLimit(options: ScenarioRunOptions): Partial<SwarmKnobs> {
  return options.ms === undefined || options.ms === 0 ? {} : { timeLimitMs: options.ms }
}

// ---- the scenarios --------------------------------------------------------------------------

/** Homogeneous then heterogeneous uploads, with the given arrivals; figures prefixed by the mix. */
export function runArrivals(options: ScenarioRunOptions, arrival: ArrivalPattern, name: string, overrides: Partial<SwarmKnobs> = {}): ScenarioReport {
  // Only each run's summary is kept: a 10,000-peer swarm takes gigabytes, and the next run needs them.
  const summaries: Omit<ScenarioReport, 'figures'>[] = []
  const figures: Record<string, Figure> = {}
  for (const [label, classes] of [['homogeneous', HOMOGENEOUS_CLASSES], ['heterogeneous', HETEROGENEOUS_CLASSES]] as const) {
    const run = runSwarm(options.seed, { peers: options.peers, arrival, classes, ...timeLimit(options), ...overrides }, name)
    summaries.push({ events: run.t.sim.eventCount, simulatedMs: run.t.now, traceHash: run.t.sim.traceHash })
    Object.assign(figures, prefixed(label, swarmFigures(run, { poisson: arrival.kind === 'poisson' })))
  }
  return { ...combinedRuns(summaries), figures }
}

export const POISSON_WINDOW_MS = 300_000

/** 20% free riders, homogeneous uploads; the origin leaves once every leaf is held by 3 downloaders. */
export function runFreeRiders(options: ScenarioRunOptions, overrides: Partial<SwarmKnobs> = {}): { run: SwarmRun; report: ScenarioReport } {
  const run = runSwarm(options.seed, { peers: options.peers, freeRiderShare: 0.2, originLeavesAtCopies: 3, ...timeLimit(options), ...overrides }, 'swarm-freeriders')
  const { world } = run
  const figures = swarmFigures(run, { poisson: false })
  // Each downloader's rate from the origin's departure until it completed, or until the last compliant one did.
  const leafBytes = world.file.leafBytes
  const rates = (role: Role, phase: 'all' | 'trading' = 'all'): number[] => {
    const result: number[] = []
    const leftMs = world.originLeftMs
    const before = world.heldAtOriginLeft
    if (before === undefined) return result
    const endMs = phase === 'trading' ? world.compliantFirstDoneMs : Number.isNaN(world.compliantDoneMs) ? run.t.now : world.compliantDoneMs
    const after = phase === 'trading' ? world.heldAtCompliantFirstDone : world.heldAtCompliantDone
    for (let index = 1; index < world.peerCount; index++) {
      if (world.role[index] !== role) continue
      const completeMs = world.completeMs[index]!
      if (completeMs <= leftMs) continue
      const untilMs = Number.isNaN(completeMs) || completeMs > endMs ? endMs : completeMs
      const heldAt = untilMs === completeMs ? world.file.leafCount : (after?.[index] ?? world.hosts[index]!.heldCount)
      if (untilMs > leftMs) result.push(((heldAt - before[index]!) * leafBytes) / ((untilMs - leftMs) / 1000))
    }
    return result
  }
  const compliantRate = mean(rates(Role.Compliant))
  const freeRiderRate = mean(rates(Role.FreeRider))
  const ratio = compliantRate === undefined || freeRiderRate === undefined ? undefined : freeRiderRate / compliantRate
  const tradingCompliantRate = mean(rates(Role.Compliant, 'trading'))
  const tradingFreeRiderRate = mean(rates(Role.FreeRider, 'trading'))
  const tradingRatio = tradingCompliantRate === undefined || tradingFreeRiderRate === undefined ? undefined : tradingFreeRiderRate / tradingCompliantRate
  const compliantTimes = sortedOf(downloadTimes(world, (index) => world.role[index] === Role.Compliant).times)
  const freeRiders = sortedOf(downloadTimes(world, (index) => world.role[index] === Role.FreeRider).times)
  const suppressed = world.adversaries.reduce((sum, core) => sum + (core as FreeRider).blocksSuppressed, 0)
  return {
    run,
    report: {
      events: run.t.sim.eventCount,
      simulatedMs: run.t.now,
      traceHash: run.t.sim.traceHash,
      figures: {
        freeRiders: world.adversaries.length,
        originLeftSeconds: round(world.originLeftMs / 1000, 1),
        compliantDoneSeconds: round(world.compliantDoneMs / 1000, 1),
        compliantRateMbitPerSecond: round(compliantRate === undefined ? undefined : compliantRate / MBIT_PER_SECOND, 2),
        freeRiderRateMbitPerSecond: round(freeRiderRate === undefined ? undefined : freeRiderRate / MBIT_PER_SECOND, 2),
        freeRiderRateRatio: round(ratio, 3),
        'target.freeRiderRateRatio': target(round(ratio, 3), '<=', 0.1),
        compliantFirstDoneSeconds: round(world.compliantFirstDoneMs / 1000, 1),
        tradingFreeRiderRateRatio: round(tradingRatio, 3),
        compliantDownloadP50Seconds: round(quantile(compliantTimes, 0.5) === undefined ? undefined : quantile(compliantTimes, 0.5)! / 1000, 1),
        freeRiderDownloadP50Seconds: round(quantile(freeRiders, 0.5) === undefined ? undefined : quantile(freeRiders, 0.5)! / 1000, 1),
        freeRiderDownloadMaxSeconds: round(freeRiders.at(-1) === undefined ? undefined : freeRiders.at(-1)! / 1000, 1),
        freeRiderBlocksSuppressed: suppressed,
        ...prefixed('compliant', figures),
      },
    },
  }
}

/** Heterogeneous uploads; strategicPerClass strategic downloaders in each class. */
export function runStrategic(options: ScenarioRunOptions, overrides: Partial<SwarmKnobs> = {}): { run: SwarmRun; report: ScenarioReport } {
  const strategicPerClass = Math.max(1, Math.round((0.01 * options.peers) / HETEROGENEOUS_CLASSES.length))
  const run = runSwarm(options.seed, { peers: options.peers, classes: HETEROGENEOUS_CLASSES, strategicPerClass, ...timeLimit(options), ...overrides }, 'swarm-strategic')
  const { world, knobs } = run
  const figures: Record<string, Figure> = { strategicPerClass }
  let worstGain: number | undefined
  knobs.classes.forEach((entry, classIndex) => {
    const ofRole = (role: Role) => sortedOf(downloadTimes(world, (index) => world.classOf[index] === classIndex && world.role[index] === role).times)
    const compliantMedian = quantile(ofRole(Role.Compliant), 0.5)
    const strategicMedian = quantile(ofRole(Role.Strategic), 0.5)
    const gain = compliantMedian === undefined || strategicMedian === undefined ? undefined : 1 - strategicMedian / compliantMedian
    if (gain !== undefined) worstGain = Math.max(worstGain ?? -Infinity, gain)
    figures[`${entry.label}.compliantDownloadP50Seconds`] = round(compliantMedian === undefined ? undefined : compliantMedian / 1000, 1)
    figures[`${entry.label}.strategicDownloadP50Seconds`] = round(strategicMedian === undefined ? undefined : strategicMedian / 1000, 1)
    figures[`${entry.label}.strategicGain`] = round(gain, 3)
  })
  figures['target.strategicGainMax'] = target(round(worstGain, 3), '<=', 0.2)
  Object.assign(figures, prefixed('compliant', swarmFigures(run, { poisson: false })))
  return { run, report: { events: run.t.sim.eventCount, simulatedMs: run.t.now, traceHash: run.t.sim.traceHash, figures } }
}

/** Share of the downloaders that poison in swarm-poisoning. */
export const POISONER_SHARE = 0.15
/** swarm-poisoning-covert: the poisoners build trust with each peer, then corrupt a share of what they send. */
export const COVERT_POISONING: Partial<SwarmKnobs> = { poisonerTrueBlocksFirst: 32, poisonerCorruptShare: 0.25 }
/**
 * swarm-poisoning-whitewash: the poisoners collude (they spend no identity on each other) and
 * each comes back under a fresh peer id once 16 peers banned the one it has, up to 8 identities
 * in all. Of 1, 4 and 16 bans, 16 got the most corrupt blocks to honest peers at seeds 1-5 (100
 * downloaders of 64 MiB): an identity dropped at its first ban loses the peers it has not hit yet.
 */
export const WHITEWASH_POISONING = { poisonersCollude: true, poisonerIdentitiesMax: 8, poisonerBansPerIdentity: 16 } satisfies Partial<SwarmKnobs>

/** Download times (completion − arrival) of the compliant downloaders, sorted, in ms. */
function compliantTimes(world: SwarmWorld): Float64Array {
  return sortedOf(downloadTimes(world, (index) => world.role[index] === Role.Compliant).times)
}

/** Bad blocks honest peers received in all. */
function honestBadBlocks(world: SwarmWorld): number {
  let count = 0
  for (let index = 0; index < world.peerCount; index++) if (world.isHonest(index)) count += world.cores[index]!.counters.badBlocks
  return count
}

/** A run to compare with: only its summary, download times and bad blocks are kept, so that its memory is free for the next run. */
function runForComparison(seed: ScenarioRunOptions['seed'], knobs: Partial<SwarmKnobs>, name: string): { summary: Omit<ScenarioReport, 'figures'>; times: Float64Array; badBlocksReceived: number; honestUploadToPoisonersF: number } {
  const run = runSwarm(seed, knobs, name)
  const { world } = run
  return {
    summary: { events: run.t.sim.eventCount, simulatedMs: run.t.now, traceHash: run.t.sim.traceHash },
    times: compliantTimes(world),
    badBlocksReceived: honestBadBlocks(world),
    honestUploadToPoisonersF: world.honestBlockBytesToPoisoners / world.file.fileBytes,
  }
}

/**
 * POISONER_SHARE of the downloaders serve corrupt blocks (homogeneous uploads, flash
 * arrivals), after the same swarm (seed, peers, knobs) in which they are honest: what the
 * poisoners cost honest peers, and whether any corrupt block got into an honest store. When
 * they whitewash (poisonerIdentitiesMax > 1), the same swarm whose poisoners never come back
 * runs too: what coming back adds.
 */
export function runPoisoning(options: ScenarioRunOptions, overrides: Partial<SwarmKnobs> = {}, name = 'swarm-poisoning'): { run: SwarmRun; report: ScenarioReport } {
  const knobs: Partial<SwarmKnobs> = { peers: options.peers, poisonerShare: POISONER_SHARE, ...timeLimit(options), ...overrides }
  const baseline = runForComparison(options.seed, { ...knobs, poisonerShare: 0 }, name)
  const whitewashing = (knobs.poisonerIdentitiesMax ?? SWARM_KNOBS.poisonerIdentitiesMax) > 1
  const nonReturning = whitewashing ? runForComparison(options.seed, { ...knobs, poisonerIdentitiesMax: 1 }, name) : undefined
  const run = runSwarm(options.seed, knobs, name)
  const { world } = run
  // Every identity's core, those never used included (they sent nothing).
  const poisoners = world.adversaries.filter((core): core is Poisoner => core instanceof Poisoner)
  const badBlocksReceived = honestBadBlocks(world)
  let badBlocksPerHonestMax = 0
  let badBlocksStored = 0
  let honestCompletedIntact = 0
  let poisonersCompleted = 0
  for (let index = 0; index < world.peerCount; index++) {
    if (!world.isHonest(index)) {
      if (!Number.isNaN(world.completeMs[index]!)) poisonersCompleted++
      continue
    }
    badBlocksPerHonestMax = Math.max(badBlocksPerHonestMax, world.cores[index]!.counters.badBlocks)
    const host = world.hosts[index]!
    badBlocksStored += host.wrongBlocksStored
    if (index > 0 && host.complete && host.wrongBlocksStored === 0) honestCompletedIntact++
  }
  // Who banned whom: each poisoner (over all its identities) by how many honest peers; and any ban of a peer that is no poisoner.
  const bannedBy = new Map<number, number>()
  const identitiesBanned = new Set<number>()
  let honestBanPairs = 0
  let peersBannedWrongly = 0
  for (const pair of world.badBlockBans) {
    const banning = Math.floor(pair / world.peerCount)
    const banned = pair % world.peerCount
    if (world.role[banned] !== Role.Poisoner) peersBannedWrongly++
    else if (world.isHonest(banning)) {
      honestBanPairs++
      identitiesBanned.add(banned)
      const attacker = world.attackerOf[banned]!
      bannedBy.set(attacker, (bannedBy.get(attacker) ?? 0) + 1)
    }
  }
  const bans = [...world.identities.keys()].map((attacker) => bannedBy.get(attacker) ?? 0)
  const identitiesUsed = [...world.whitewashers.values()].reduce((sum, whitewasher) => sum + whitewasher.identitiesUsed, 0)
  const times = compliantTimes(world)
  const seconds = (ms: number | undefined) => round(ms === undefined ? undefined : ms / 1000, 1)
  const over = (value: number | undefined, base: number | undefined) => round(value === undefined || base === undefined ? undefined : value / base, 3)
  const figures: Record<string, Figure> = {
    downloaders: run.knobs.peers,
    poisoners: world.identities.size,
    /** Peer ids the poisoners used, their first ones included; and how many times one came back under a fresh one. */
    poisonerIdentitiesUsed: identitiesUsed,
    poisonerRejoins: identitiesUsed - world.identities.size,
    poisonerIdentitiesBanned: identitiesBanned.size,
    /** Identities after a poisoner's first that honest peers found, traded with and banned. */
    freshIdentitiesBanned: [...identitiesBanned].filter((identity) => world.attackerOf[identity] !== identity).length,
    honest: world.compliantCount,
    honestCompleted: world.compliantCompletedCount,
    /** Completed honest downloaders whose every stored block is the file's true block. */
    honestCompletedIntact,
    poisonersCompleted,
    blocksPoisoned: poisoners.reduce((sum, poisoner) => sum + poisoner.blocksPoisoned, 0),
    /** Blocks poisoners sent true (all of them, for a covert poisoner, until a peer has had its first few). */
    poisonerBlocksTrue: poisoners.reduce((sum, poisoner) => sum + poisoner.blocksTrue, 0),
    badBlocksReceived,
    badBlocksPerHonestMean: round(badBlocksReceived / Math.max(1, world.compliantCount), 2),
    badBlocksPerHonestMax,
    badBlocksStored,
    /** Bytes of corrupt blocks an honest downloader received, on average, in multiples of F: download spent for nothing. */
    badBlockBytesPerHonestF: round(world.badBlockBytesToHonest / Math.max(1, world.compliantCount) / world.file.fileBytes, 4),
    /** What honest peers (the origin included) uploaded to poisoners, in multiples of F. */
    honestUploadToPoisonersF: round(world.honestBlockBytesToPoisoners / world.file.fileBytes, 1),
    originUploadToPoisonersF: round(world.originBlockBytesToPoisoners / world.file.fileBytes, 2),
    poisonersBanned: bans.filter((count) => count > 0).length,
    poisonerBannedByMean: round(mean(bans), 1),
    poisonerBannedByMin: bans.length === 0 ? null : Math.min(...bans),
    /** Bad blocks an honest peer took from a poisoner, per pair: 1 when the first one ends their exchange. */
    badBlocksPerBan: round(badBlocksReceived / Math.max(1, honestBanPairs), 3),
    peersBannedWrongly,
    honestDownloadP50Seconds: seconds(quantile(times, 0.5)),
    baselineDownloadP50Seconds: seconds(quantile(baseline.times, 0.5)),
    p50OverBaseline: over(quantile(times, 0.5), quantile(baseline.times, 0.5)),
    ...(nonReturning === undefined ? {} : {
      nonReturningDownloadP50Seconds: seconds(quantile(nonReturning.times, 0.5)),
      nonReturningBadBlocksReceived: nonReturning.badBlocksReceived,
      nonReturningHonestUploadToPoisonersF: round(nonReturning.honestUploadToPoisonersF, 1),
      /** Corrupt blocks honest peers received, against the same poisoners that never come back: what coming back gains them. */
      badBlocksOverNonReturning: over(badBlocksReceived, nonReturning.badBlocksReceived),
      /** Against the same poisoners that never come back: what whitewashing adds. */
      p50OverNonReturning: over(quantile(times, 0.5), quantile(nonReturning.times, 0.5)),
    }),
    honestDownloadP99Seconds: seconds(quantile(times, 0.99)),
    baselineDownloadP99Seconds: seconds(quantile(baseline.times, 0.99)),
    p99OverBaseline: over(quantile(times, 0.99), quantile(baseline.times, 0.99)),
    stuckDeadlines: run.t.sim.counters.stuckDeadlines,
    'target.badBlocksStored': target(badBlocksStored, '<=', 0),
    'target.peersBannedWrongly': target(peersBannedWrongly, '<=', 0),
    ...prefixed('honest', swarmFigures(run, { poisson: false })),
  }
  const summary = { events: run.t.sim.eventCount, simulatedMs: run.t.now, traceHash: run.t.sim.traceHash }
  return { run, report: { ...combinedRuns([baseline.summary, ...(nonReturning === undefined ? [] : [nonReturning.summary]), summary]), figures } }
}

export const SWARM_FLASH_SCENARIO: NamedScenario = {
  name: 'swarm-flash',
  description: 'one origin (100 Mbit/s up) and N downloaders arriving within 1 s fetch 1 GiB (1,024 leaves of 1 MiB); uploads 50 Mbit/s, then 10/50/100 Mbit/s; downloads 200 Mbit/s: p50/p99/p99.9 against LB, egress, utilisation, endgame',
  defaults: { peers: 1_000, ms: 0 },
  run: (options) => runArrivals(options, { kind: 'flash', windowMs: 1_000 }, 'swarm-flash'),
}

export const SWARM_POISSON_SCENARIO: NamedScenario = {
  name: 'swarm-poisson',
  description: 'as swarm-flash, with N Poisson arrivals over 300 s; download times against LB (and against F/d)',
  defaults: { peers: 1_000, ms: 0 },
  run: (options) => runArrivals(options, { kind: 'poisson', windowMs: POISSON_WINDOW_MS }, 'swarm-poisson'),
}

export const SWARM_FREERIDERS_SCENARIO: NamedScenario = {
  name: 'swarm-freeriders',
  description: 'swarm-flash (homogeneous) with 20% free riders that never upload; the origin leaves once every leaf is held by 3 downloaders that upload: free riders\' download rate against compliant peers\'',
  defaults: { peers: 1_000, ms: 0 },
  run: (options) => runFreeRiders(options).report,
}

export const SWARM_STRATEGIC_SCENARIO: NamedScenario = {
  name: 'swarm-strategic',
  description: 'swarm-flash (heterogeneous) with 1% BitTyrant-style strategic downloaders per class: their download time against compliant peers of the same capacity',
  defaults: { peers: 1_000, ms: 0 },
  run: (options) => runStrategic(options).report,
}

export const SWARM_POISONING_SCENARIO: NamedScenario = {
  name: 'swarm-poisoning',
  description: 'swarm-flash (homogeneous) with 15% poisoners that serve blocks not matching their CIDs: bad blocks received and stored (0), poisoners banned by how many honest peers, honest download time against the same swarm without poisoners',
  defaults: { peers: 1_000, ms: 0 },
  run: (options) => runPoisoning(options).report,
}

export const SWARM_POISONING_COVERT_SCENARIO: NamedScenario = {
  name: 'swarm-poisoning-covert',
  description: `swarm-poisoning with covert poisoners: each sends every peer ${COVERT_POISONING.poisonerTrueBlocksFirst} true blocks first, then corrupts ${COVERT_POISONING.poisonerCorruptShare! * 100}% of the blocks it sends`,
  defaults: { peers: 1_000, ms: 0 },
  run: (options) => runPoisoning(options, COVERT_POISONING).report,
}

export const SWARM_POISONING_WHITEWASH_SCENARIO: NamedScenario = {
  name: 'swarm-poisoning-whitewash',
  description: `swarm-poisoning with whitewashing poisoners that collude (true blocks among themselves): once ${WHITEWASH_POISONING.poisonerBansPerIdentity} peers banned it, one leaves and comes back ${SWARM_KNOBS.poisonerRejoinDelayMs / 1000} s later under a fresh peer id with its store, up to ${WHITEWASH_POISONING.poisonerIdentitiesMax} identities; identities used, corrupt blocks received and stored, honest download time against the same swarm without poisoners and with the same poisoners never coming back`,
  defaults: { peers: 1_000, ms: 0 },
  run: (options) => runPoisoning(options, WHITEWASH_POISONING, 'swarm-poisoning-whitewash').report,
}
