/**
 * Selfish peers of the swarm protocol: cores that wrap an honest SwarmCore, so that they
 * find sources, open sessions, download and announce what they get as anyone does, and
 * change what they give. Built by the swarm scenarios (scenarios/swarm.ts); the scenario's
 * SwarmHost wraps them in turn, like any core.
 *
 *   FreeRider   never uploads: its unchokes and every block it would send are suppressed,
 *               so peers that ask it for the DAG's root wait for their request to time out.
 *               It still says interested and have, as BitThief-style clients do.
 *   StrategicPeer  BitTyrant's strategy (Piatek et al., NSDI 2007) over an honest core: it
 *               picks its own unchoke set, each peer's upload sized to just earn reciprocation.
 *   Poisoner    serves blocks (leaves or inner nodes) with their bytes changed, so that they
 *               no longer match their CIDs: every block, or (covertly) a share of them after
 *               serving each peer some true blocks first; everything else it does honestly,
 *               so that peers find it, trade with it and ask it for blocks until their check
 *               catches it. It notes which peers banned it: those it sent a corrupt block
 *               that then disconnected it.
 *   Whitewasher  the identities of one poisoner that comes back under a fresh peer id once
 *               enough honest peers banned the one it has, up to a bound of identities.
 */
import type { Core, Millis, PeerId } from '../../core/sans-io.ts'
import type { SwarmConfig } from '../../core/swarm/config.ts'
import type { BlockData, ContentKey, SwarmMessage } from '../../core/swarm/messages.ts'
import type { SwarmAction, SwarmInput } from '../../core/swarm/swarm.ts'

export class FreeRider implements Core<SwarmInput, SwarmAction> {
  readonly #inner: Core<SwarmInput, SwarmAction>
  /** Blocks the inner core sent that never left. */
  blocksSuppressed = 0
  unchokesSuppressed = 0

  constructor(inner: Core<SwarmInput, SwarmAction>) {
    this.#inner = inner
  }

  handle(now: Millis, input: SwarmInput): void {
    this.#inner.handle(now, input)
  }

  poll(): SwarmAction | undefined {
    for (let action = this.#inner.poll(); action !== undefined; action = this.#inner.poll()) {
      if (action.type !== 'send') return action
      const type = action.message.type
      if (type === 'block') this.blocksSuppressed++
      else if (type === 'unchoke') this.unchokesSuppressed++
      else return action
    }
    return undefined
  }

  nextDeadline(): Millis | undefined {
    return this.#inner.nextDeadline()
  }
}

/** How a poisoner picks the blocks it corrupts. */
export interface PoisoningPattern {
  /** True blocks each peer is sent before any corrupt one: trust built first. */
  trueBlocksFirst: number
  /** Of the blocks after those, the share corrupted, spread evenly (1: all). */
  corruptShare: number
}

const POISON_EVERY_BLOCK: PoisoningPattern = { trueBlocksFirst: 0, corruptShare: 1 }

/** What a poisoner knows beyond its own core: its accomplices, and whom it reports its bans to. */
export interface PoisonerTeam {
  /** Peers of the same attack, sent true blocks: poisoners that collude spend their bans on honest peers only. */
  isAccomplice?(peer: PeerId): boolean
  /** Told of each peer that disconnects us after we sent it a corrupt block. */
  onBanned?(peer: PeerId, now: Millis): void
}

/**
 * Poisons what it uploads. The bytes are changed by `tamper` (given by the scenario, which
 * knows how its blocks are represented), after the inner core read the true block, the way
 * a modified client would corrupt its output; what it downloads it verifies as anyone does.
 */
export class Poisoner implements Core<SwarmInput, SwarmAction> {
  readonly #inner: Core<SwarmInput, SwarmAction>
  readonly #tamper: (data: BlockData) => BlockData
  readonly #pattern: PoisoningPattern
  /** Blocks sent to each peer so far. */
  readonly #sentTo = new Map<PeerId, number>()
  /** Blocks sent tampered (some may never arrive: the receiver may have dropped us first). */
  blocksPoisoned = 0
  /** Blocks sent true. */
  blocksTrue = 0
  /** Peers sent a corrupt block, until they disconnect us. */
  readonly #corrupted = new Set<PeerId>()
  readonly #team: PoisonerTeam
  /** Peers that disconnected us after a corrupt block: what a poisoner can see of its bans. */
  bannedByCount = 0

  constructor(inner: Core<SwarmInput, SwarmAction>, tamper: (data: BlockData) => BlockData, pattern: PoisoningPattern = POISON_EVERY_BLOCK, team: PoisonerTeam = {}) {
    if (!(pattern.corruptShare > 0 && pattern.corruptShare <= 1)) throw new Error(`corruptShare ${pattern.corruptShare} is not in (0, 1]`)
    this.#inner = inner
    this.#tamper = tamper
    this.#pattern = pattern
    this.#team = team
  }

  /** The n-th block (from 0) to one peer: corrupt when the share's running count steps up at n, past the true blocks. */
  #corrupts(n: number): boolean {
    const after = n - this.#pattern.trueBlocksFirst
    if (after < 0) return false
    const share = this.#pattern.corruptShare
    return Math.floor((after + 1) * share) > Math.floor(after * share)
  }

  handle(now: Millis, input: SwarmInput): void {
    this.#inner.handle(now, input)
    // An honest peer drops the sender of a bad block at once; any other disconnect after one is as good a sign.
    if (input.type === 'peer-disconnected' && this.#corrupted.delete(input.peer)) {
      this.bannedByCount++
      this.#team.onBanned?.(input.peer, now)
    }
  }

  poll(): SwarmAction | undefined {
    const action = this.#inner.poll()
    if (action?.type !== 'send' || action.message.type !== 'block') return action
    if (this.#team.isAccomplice?.(action.to) === true) {
      this.blocksTrue++
      return action
    }
    const sent = this.#sentTo.get(action.to) ?? 0
    this.#sentTo.set(action.to, sent + 1)
    if (!this.#corrupts(sent)) {
      this.blocksTrue++
      return action
    }
    this.blocksPoisoned++
    this.#corrupted.add(action.to)
    return { ...action, message: { ...action.message, data: this.#tamper(action.message.data) } }
  }

  nextDeadline(): Millis | undefined {
    return this.#inner.nextDeadline()
  }
}

/** When a whitewashing poisoner drops its identity for a fresh one, and how many it has. */
export interface WhitewashPolicy {
  /** Identities one attacker uses in all, its first included: 1 never comes back. */
  identitiesMax: number
  /** Peers that ban an identity (Poisoner.bannedByCount) before it is dropped. */
  bansPerIdentity: number
}

/**
 * One whitewashing attacker's identities (Friedman and Resnick's cheap pseudonyms): a peer
 * id costs nothing, so a banned poisoner leaves and comes back as a newcomer, with its store,
 * once `bansPerIdentity` peers banned the identity it has. Only the ban count is decided
 * here; the scenario carries out the departure and the arrival. The last identity stays,
 * banned or not: the bound is what a defence may count on (a proof of work, a membership
 * credential or an IP address per identity, in a real system).
 */
export class Whitewasher {
  readonly #policy: WhitewashPolicy
  #bansOfCurrent = 0
  /** Identities used so far, the current one included. */
  identitiesUsed = 1

  constructor(policy: WhitewashPolicy) {
    if (!(Number.isInteger(policy.identitiesMax) && policy.identitiesMax >= 1)) throw new Error(`identitiesMax ${policy.identitiesMax} is not an integer >= 1`)
    if (!(Number.isInteger(policy.bansPerIdentity) && policy.bansPerIdentity >= 1)) throw new Error(`bansPerIdentity ${policy.bansPerIdentity} is not an integer >= 1`)
    this.#policy = policy
  }

  /** Identities dropped for a fresh one. */
  get rejoins(): number {
    return this.identitiesUsed - 1
  }

  /** A peer banned the current identity; whether the attacker now drops it for a fresh one. */
  banned(): boolean {
    if (this.identitiesUsed >= this.#policy.identitiesMax) return false
    if (++this.#bansOfCurrent < this.#policy.bansPerIdentity) return false
    this.#bansOfCurrent = 0
    this.identitiesUsed++
    return true
  }
}

/** What a strategic peer believes of one neighbour. */
interface Estimate {
  /** They are interested in us (what they said). */
  interested: boolean
  /** In our unchoke set: the inner core has been told of their interest, and unchokes them. */
  active: boolean
  /** Bytes per second we expect from them while they reciprocate (BitTyrant's d_p). */
  download: number
  /** Bytes per second we think they need from us to reciprocate (BitTyrant's u_p). */
  upload: number
  receivedThisRound: number
  unchokingUs: boolean
  unchokedUsThisRound: boolean
  /** Rounds in a row they unchoked us. */
  reciprocatedRounds: number
  leavesAnnounced: number
  firstSeenAt: Millis
  /** The pacing of our blocks to them: tokens (bytes) and when they were counted. */
  tokens: number
  tokensAt: Millis
  /** Our blocks to them waiting for tokens. */
  readonly waiting: SwarmAction[]
}

/** BitTyrant's round, its rates of change (γ, δ) and the rounds of reciprocation before it pays less (r). */
const ROUND_MS = 10_000
const PAY_LESS = 0.1
const PAY_MORE = 0.2
const RECIPROCATED_ROUNDS = 3
/** A compliant peer splits its upload over 4 regular slots and 1 optimistic one. */
const COMPLIANT_SLOTS = 5
const BLOCK_BYTES_ASSUMED = 1024 * 1024

/**
 * BitTyrant (Piatek et al., "Do incentives build robustness in BitTorrent?", NSDI 2007):
 * unchoke the peers that give most per byte given, each just enough to be reciprocated,
 * as many as the uplink allows. Every 10 s round, for each neighbour p:
 *
 *   d_p  what p gives us while it unchokes us: observed over the last round if it did;
 *        otherwise guessed from the rate of its haves (its download, which under tit-for-tat
 *        is about its upload) split over a compliant peer's 5 slots
 *   u_p  what p needs from us: at first an equal split of our upload over 5 slots; 10% less
 *        after 3 rounds in a row of reciprocation, 20% more after a round unchoked by us
 *        without reciprocation
 *
 * and the unchoke set is the interested peers by d_p / u_p, best first, while the sum of
 * their u_p fits our upload capacity; each is sent blocks at no more than u_p (a token
 * bucket per peer, in this wrapper). The honest core underneath keeps doing the rest
 * (downloading, rarest-first, endgame, seeding); it is configured to unchoke every peer it
 * believes interested (StrategicPeer.config), and is told a peer is interested only while
 * the peer is in the unchoke set.
 */
export class StrategicPeer implements Core<SwarmInput, SwarmAction> {
  readonly #inner: Core<SwarmInput, SwarmAction>
  readonly #uploadBytesPerSecond: number
  readonly #estimates = new Map<PeerId, Estimate>()
  #root: ContentKey | undefined
  #now: Millis = 0
  #nextRoundAt: Millis = ROUND_MS
  #blockBytes = BLOCK_BYTES_ASSUMED
  /** Paced blocks ready to go. */
  readonly #released: SwarmAction[] = []
  rounds = 0
  unchokeSetSizes = 0

  /** The inner core's configuration: every peer it believes interested is unchoked; no optimistic slot of its own. */
  static config(config: SwarmConfig, _uploadBytesPerSecond: number): SwarmConfig {
    return { ...config, unchokeSlots: config.peersPerSessionMax, optimisticUnchokeSlots: 0 }
  }

  constructor(inner: Core<SwarmInput, SwarmAction>, uploadBytesPerSecond: number) {
    this.#inner = inner
    this.#uploadBytesPerSecond = uploadBytesPerSecond
  }

  handle(now: Millis, input: SwarmInput): void {
    this.#now = now
    if (input.type === 'peer-disconnected') this.#estimates.delete(input.peer)
    if (input.type === 'message') {
      const heard = this.#observe(now, input.from, input.message)
      if (heard) this.#inner.handle(now, input)
      // Between rounds, capacity freed or a newcomer's interest is used at once, as a compliant core fills a slot.
      if (input.message.type === 'interested' || input.message.type === 'not-interested') this.#fill(now)
      return
    }
    this.#inner.handle(now, input)
    if (input.type === 'tick') {
      if (now >= this.#nextRoundAt) this.#round(now)
      this.#release(now)
    }
  }

  poll(): SwarmAction | undefined {
    const released = this.#released.shift()
    if (released !== undefined) return released
    for (let action = this.#inner.poll(); action !== undefined; action = this.#inner.poll()) {
      if (action.type !== 'send') return action
      const message = action.message
      // Our own choker speaks: the inner core's chokes and unchokes follow what it was told of interest.
      if (message.type !== 'block' || typeof message.block !== 'number') return action
      const estimate = this.#estimates.get(action.to)
      if (estimate === undefined) return action
      this.#refill(estimate, this.#now)
      if (estimate.waiting.length === 0 && estimate.tokens > 0) {
        estimate.tokens -= message.data.byteLength
        return action
      }
      estimate.waiting.push(action)
    }
    return undefined
  }

  nextDeadline(): Millis | undefined {
    let deadline = Math.min(this.#inner.nextDeadline() ?? Infinity, this.#nextRoundAt)
    for (const estimate of this.#estimates.values()) {
      if (estimate.waiting.length === 0) continue
      deadline = Math.min(deadline, estimate.tokensAt + Math.ceil((-estimate.tokens + 1) * 1000 / estimate.upload))
    }
    return deadline === Infinity ? undefined : deadline
  }

  /** Notes what a neighbour says; returns whether the inner core hears it. */
  #observe(now: Millis, from: PeerId, message: SwarmMessage): boolean {
    const estimate = this.#estimateOf(now, from)
    this.#root ??= message.root
    switch (message.type) {
      case 'interested':
        estimate.interested = true
        return estimate.active
      case 'not-interested':
        estimate.interested = false
        return estimate.active
      case 'unchoke':
        estimate.unchokingUs = true
        estimate.unchokedUsThisRound = true
        return true
      case 'choke':
        estimate.unchokingUs = false
        return true
      case 'block':
        estimate.receivedThisRound += message.data.byteLength
        if (typeof message.block === 'number') this.#blockBytes = message.data.byteLength
        return true
      case 'have':
        estimate.leavesAnnounced += message.leaves.length
        return true
      default:
        return true
    }
  }

  #estimateOf(now: Millis, peer: PeerId): Estimate {
    let estimate = this.#estimates.get(peer)
    if (estimate === undefined) {
      const equalSplit = this.#uploadBytesPerSecond / COMPLIANT_SLOTS
      estimate = {
        interested: false, active: false, download: equalSplit, upload: equalSplit, receivedThisRound: 0, unchokingUs: false,
        unchokedUsThisRound: false, reciprocatedRounds: 0, leavesAnnounced: 0, firstSeenAt: now, tokens: this.#blockBytes, tokensAt: now, waiting: [],
      }
      this.#estimates.set(peer, estimate)
    }
    return estimate
  }

  #round(now: Millis): void {
    this.rounds++
    this.#nextRoundAt = now + ROUND_MS
    for (const estimate of this.#estimates.values()) {
      const reciprocated = estimate.unchokedUsThisRound || estimate.unchokingUs
      if (reciprocated && estimate.receivedThisRound > 0) {
        estimate.download = (estimate.receivedThisRound * 1000) / ROUND_MS
        if (++estimate.reciprocatedRounds >= RECIPROCATED_ROUNDS) estimate.upload *= 1 - PAY_LESS
      } else {
        estimate.reciprocatedRounds = 0
        // Its haves say how fast it downloads, about what it uploads; a compliant peer splits that over 5 slots.
        const ageSeconds = Math.max(1, (now - estimate.firstSeenAt) / 1000)
        estimate.download = (estimate.leavesAnnounced * this.#blockBytes) / ageSeconds / COMPLIANT_SLOTS
        if (estimate.active) estimate.upload *= 1 + PAY_MORE
      }
      estimate.receivedThisRound = 0
      estimate.unchokedUsThisRound = false
    }
    const candidates = [...this.#estimates.entries()].filter(([, estimate]) => estimate.interested)
    candidates.sort(([, a], [, b]) => b.download / b.upload - a.download / a.upload)
    const chosen = new Set<PeerId>()
    let budget = this.#uploadBytesPerSecond
    for (const [peer, estimate] of candidates) {
      if (chosen.size > 0 && estimate.upload > budget) break
      chosen.add(peer)
      budget -= estimate.upload
    }
    this.unchokeSetSizes += chosen.size
    const root = this.#root
    if (root === undefined) return
    for (const [peer, estimate] of this.#estimates) {
      const active = chosen.has(peer)
      if (active === estimate.active) continue
      estimate.active = active
      // The inner core unchokes whoever it believes interested: it is told so only while they are in the set.
      if (estimate.interested) this.#inner.handle(now, { type: 'message', from: peer, message: { type: active ? 'interested' : 'not-interested', root } })
    }
  }

  /** Adds the best interested peers outside the set while their u_p fits what the set leaves of our upload. */
  #fill(now: Millis): void {
    let budget = this.#uploadBytesPerSecond
    for (const estimate of this.#estimates.values()) if (estimate.active && estimate.interested) budget -= estimate.upload
    for (;;) {
      let best: [PeerId, Estimate] | undefined
      for (const entry of this.#estimates) {
        const estimate = entry[1]
        if (estimate.active || !estimate.interested || estimate.upload > budget) continue
        if (best === undefined || estimate.download / estimate.upload > best[1].download / best[1].upload) best = entry
      }
      if (best === undefined || this.#root === undefined) return
      best[1].active = true
      budget -= best[1].upload
      this.#inner.handle(now, { type: 'message', from: best[0], message: { type: 'interested', root: this.#root } })
    }
  }

  #refill(estimate: Estimate, now: Millis): void {
    estimate.tokens = Math.min(this.#blockBytes, estimate.tokens + ((now - estimate.tokensAt) * estimate.upload) / 1000)
    estimate.tokensAt = now
  }

  /** Blocks whose peer's bucket refilled go out. */
  #release(now: Millis): void {
    for (const estimate of this.#estimates.values()) {
      this.#refill(estimate, now)
      while (estimate.waiting.length > 0 && estimate.tokens > 0) {
        const action = estimate.waiting.shift()!
        if (action.type === 'send' && action.message.type === 'block') estimate.tokens -= action.message.data.byteLength
        this.#released.push(action)
      }
    }
  }
}
