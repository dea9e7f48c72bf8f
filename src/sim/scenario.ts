/**
 * Scenario: the harness tests and named scenarios are written in. It builds a Simulator
 * from one seed, brings peers online (bootstrap peers first, then the rest as the churn
 * config says), hands newcomers their bootstrap peers, and offers story-like controls:
 *
 *   const t = scenario({ peerCount: 200, seed: 7n, codec, createCore })
 *   t.partition(groupA, groupB); t.run({ ms: 60_000 }); t.heal()
 *   t.runUntil(() => condition, { msMax: 120_000 })
 *
 * Checkers (invariants) run every N events. Any failure throws a ScenarioFailure whose
 * message carries SEED=<n> and the knobs, so the run can be replayed exactly.
 */
import type { PeerId, WireCodec } from '../core/sans-io.ts'
import { Churn, type ChurnConfig } from './churn.ts'
import { largestComponentFraction } from './metrics.ts'
import type { NatClass, NetworkConfig } from './network-model.ts'
import { formatSeed } from './seed.ts'
import { Simulator, type PeerContext, type Seed, type SimCore, type SimInput } from './simulator.ts'

export interface Checker<M> {
  name: string
  /** Run after every this many events (default 10,000). */
  everyEvents?: number
  /** Returns a description of the violation, or undefined when the invariant holds. */
  check(t: Scenario<M>): string | undefined
}

export interface ScenarioOptions<M> {
  peerCount: number
  seed: Seed
  /** Sizes messages; or give sizeOf (see SimulatorOptions). */
  codec?: WireCodec<M>
  sizeOf?(message: M): number
  /** Whether a peer serves the request protocol (see SimulatorOptions); default: all. */
  servesProtocol?(index: number): boolean
  /** Builds each peer's core (at each join); give adversaries a different one here. */
  createCore(context: PeerContext): SimCore<M>
  network?: Partial<NetworkConfig>
  natClassOf?(index: number): NatClass
  /** Indices of bootstrap peers (default [0]): they join first and never churn. */
  bootstrapPeers?: readonly number[]
  /** Default: everyone at time 0, nobody leaves. */
  churn?: ChurnConfig
  /** Peers that never leave, besides the bootstrap peers (the rest churn as `churn` says). */
  stablePeers?: readonly number[]
  checkers?: readonly Checker<M>[]
  /** Scenario parameters printed with the seed when something fails. */
  knobs?: Record<string, unknown>
  /** The scenario's name in `shoal sim <name>`, for the replay hint. */
  name?: string
  onAction?(peer: number, action: { type: string }, now: number): void
  onJoin?(peer: number, now: number): void
  onLeave?(peer: number, crashed: boolean, now: number): void
}

/** A broken scenario expectation; the message says how to replay it. */
export class ScenarioFailure extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ScenarioFailure'
  }
}

/** A peer as a scenario refers to it. */
export type PeerRef = number | { readonly index: number }

export class Scenario<M> {
  readonly sim: Simulator<M>
  readonly churn: Churn
  readonly seed: Seed
  readonly bootstrapPeers: readonly number[]
  readonly #options: ScenarioOptions<M>
  readonly #checkers: readonly Checker<M>[]
  readonly #checkEveryEvents: number
  #nextCheckAt: number[]

  constructor(options: ScenarioOptions<M>) {
    this.#options = options
    this.seed = options.seed
    this.bootstrapPeers = options.bootstrapPeers ?? [0]
    this.#checkers = options.checkers ?? []
    this.#checkEveryEvents = Math.min(...this.#checkers.map((checker) => checker.everyEvents ?? 10_000), Infinity)
    this.#nextCheckAt = this.#checkers.map((checker) => checker.everyEvents ?? 10_000)
    const bootstrapInputs: { index: number; input: SimInput<M> }[] = this.bootstrapPeers.map((index) => ({
      index,
      input: { type: 'peer-discovered', peer: `p${index}` as PeerId, addresses: [], source: 'bootstrap' },
    }))
    this.sim = new Simulator<M>({
      peerCount: options.peerCount,
      seed: options.seed,
      codec: options.codec,
      sizeOf: options.sizeOf,
      servesProtocol: options.servesProtocol,
      network: options.network,
      natClassOf: options.natClassOf,
      createCore: options.createCore,
      onAction: options.onAction,
      onJoin: (peer, now) => {
        this.churn.onJoin(peer, now)
        for (const { index, input } of bootstrapInputs) if (index !== peer) this.sim.input(peer, input)
        options.onJoin?.(peer, now)
      },
      onLeave: (peer, crashed, now) => {
        this.churn.onLeave(peer, crashed, now)
        options.onLeave?.(peer, crashed, now)
      },
    })
    for (const { index, input } of bootstrapInputs) {
      if (input.type === 'peer-discovered' && input.peer !== this.sim.idOf(index)) throw new Error('peer ids are p<index>: Simulator and Scenario disagree')
    }
    this.churn = new Churn(this.sim as Simulator<unknown>, options.churn ?? { arrival: { kind: 'all-at-once' }, crashFraction: 0 }, this.sim.prng('churn'), [...this.bootstrapPeers, ...(options.stablePeers ?? [])])
    const bootstrap = new Set(this.bootstrapPeers)
    // Bootstrap peers first: a newcomer must find them online.
    for (const index of this.bootstrapPeers) this.sim.join(index, 0)
    const others: number[] = []
    for (let index = 0; index < options.peerCount; index++) if (!bootstrap.has(index)) others.push(index)
    this.churn.scheduleArrivals(others)
  }

  get now(): number {
    return this.sim.now
  }

  get peerCount(): number {
    return this.sim.peerCount
  }

  /** A peer's handle: its index, id, state and current core. */
  peer(ref: PeerRef): { index: number; id: PeerId; online: boolean; core: SimCore<M> | undefined } {
    const index = indexOf(ref)
    return { index, id: this.sim.idOf(index), online: this.sim.isOnline(index), core: this.sim.core(index) }
  }

  /** Every peer index except those given. */
  others(...excluded: PeerRef[]): number[] {
    const skip = new Set(excluded.map(indexOf))
    const result: number[] = []
    for (let index = 0; index < this.sim.peerCount; index++) if (!skip.has(index)) result.push(index)
    return result
  }

  onlinePeers(): number[] {
    const result: number[] = []
    for (let index = 0; index < this.sim.peerCount; index++) if (this.sim.isOnline(index)) result.push(index)
    return result
  }

  partition(...groups: readonly (readonly PeerRef[])[]): void {
    this.sim.partition(...groups.map((group) => group.map(indexOf)))
  }

  heal(): void {
    this.sim.heal()
  }

  crash(ref: PeerRef): void {
    this.sim.leave(indexOf(ref), { crash: true })
  }

  leave(ref: PeerRef): void {
    this.sim.leave(indexOf(ref), { crash: false })
  }

  join(ref: PeerRef): void {
    this.sim.join(indexOf(ref))
  }

  /** Runs `action` at virtual time `ms` (absolute). */
  at(ms: number, action: () => void): void {
    this.sim.at(ms, action)
  }

  /** Advances virtual time by `ms`, running checkers on the way. */
  run(options: { ms: number }): void {
    this.#advance(this.sim.now + options.ms)
  }

  /** Runs until absolute virtual time `ms`. */
  runTo(ms: number): void {
    this.#advance(ms)
  }

  /**
   * Runs until `condition` holds, looking every `checkEveryMs` of virtual time (default
   * 100). Returns the virtual ms it took; throws a ScenarioFailure after `msMax`.
   */
  runUntil(condition: () => boolean, options: { msMax: number; checkEveryMs?: number; what?: string }): number {
    const elapsed = this.tryRunUntil(condition, options)
    if (elapsed === undefined) this.fail(`${options.what ?? 'condition'} not reached within ${options.msMax} ms of virtual time`)
    return elapsed
  }

  /** As runUntil, but returns undefined when `msMax` passes first. */
  tryRunUntil(condition: () => boolean, options: { msMax: number; checkEveryMs?: number }): number | undefined {
    const start = this.sim.now
    const end = start + options.msMax
    const stepMs = options.checkEveryMs ?? 100
    if (condition()) return 0
    while (this.sim.now < end) {
      this.#advance(Math.min(end, this.sim.now + stepMs))
      if (condition()) return this.sim.now - start
    }
    return undefined
  }

  /** Throws a ScenarioFailure if `condition` is false. */
  check(condition: boolean, message: string): void {
    if (!condition) this.fail(message)
  }

  fail(message: string): never {
    throw new ScenarioFailure(`${message}\n${this.replayHint()}`)
  }

  /** `SEED=<n> knobs: {...}` and how to replay. */
  replayHint(): string {
    const seed = formatSeed(this.seed)
    const knobs = JSON.stringify({ peerCount: this.sim.peerCount, ...this.#options.knobs }, (_key, value: unknown) => (typeof value === 'bigint' || value === Infinity ? String(value) : value))
    const command = this.#options.name === undefined ? '' : ` or: shoal sim ${this.#options.name} --seed ${seed} --peers ${this.sim.peerCount}`
    return `SEED=${seed} at ${this.sim.now.toFixed(1)} ms; knobs: ${knobs}\nreplay: SHOAL_SEED=${seed} npm test${command}`
  }

  largestComponentFraction(): number {
    return largestComponentFraction(this.sim as Simulator<unknown>)
  }

  #advance(untilMs: number): void {
    if (this.#checkers.length === 0) {
      this.sim.run(untilMs)
      return
    }
    for (;;) {
      const reached = this.sim.run(untilMs, this.#checkEveryEvents)
      const eventCount = this.sim.eventCount
      this.#checkers.forEach((checker, index) => {
        if (!reached && eventCount < this.#nextCheckAt[index]!) return
        this.#nextCheckAt[index] = eventCount + (checker.everyEvents ?? 10_000)
        const violation = checker.check(this)
        if (violation !== undefined) this.fail(`checker ${checker.name}: ${violation}`)
      })
      if (reached) return
    }
  }
}

export function scenario<M>(options: ScenarioOptions<M>): Scenario<M> {
  return new Scenario(options)
}

function indexOf(ref: PeerRef): number {
  return typeof ref === 'number' ? ref : ref.index
}
