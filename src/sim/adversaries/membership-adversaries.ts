/**
 * Adversaries for the membership protocol: cores that implement the same Core interface
 * but misbehave, for scenarios to plant among honest peers. Each wraps an honest
 * Membership so it joins and stays connected like anyone else, and alters one thing.
 */
import { Membership, type MembershipAction, type MembershipConfig, type MembershipInput, type PeerRecord } from '../../core/membership/membership.ts'
import type { Prng } from '../../core/prng.ts'
import type { Core, Millis, PeerId } from '../../core/sans-io.ts'

/** Connects and dials like an honest peer, but never answers a ping: its neighbours must drop it. */
export class SilentPeer implements Core<MembershipInput, MembershipAction> {
  readonly #inner: Membership

  constructor(config: MembershipConfig, prng: Prng) {
    this.#inner = new Membership(config, prng)
  }

  get connectedCount(): number {
    return this.#inner.connectedCount
  }

  handle(now: Millis, input: MembershipInput): void {
    this.#inner.handle(now, input)
  }

  poll(): MembershipAction | undefined {
    for (let action = this.#inner.poll(); action !== undefined; action = this.#inner.poll()) {
      if (action.type === 'send' && action.message.type === 'pong') continue
      return action
    }
    return undefined
  }

  nextDeadline(): Millis | undefined {
    return this.#inner.nextDeadline()
  }
}

/**
 * Answers every peer-exchange request with ids of peers that do not exist (an eclipse
 * attempt by address-book poisoning); otherwise honest, so it is never dropped for silence.
 */
export class SybilExchanger implements Core<MembershipInput, MembershipAction> {
  readonly #inner: Membership
  readonly #self: PeerId
  readonly #prng: Prng
  readonly #answers: MembershipAction[] = []
  sybilIdsGiven = 0

  constructor(config: MembershipConfig, prng: Prng) {
    this.#inner = new Membership(config, prng.fork('inner'))
    this.#self = config.self
    this.#prng = prng
  }

  get connectedCount(): number {
    return this.#inner.connectedCount
  }

  handle(now: Millis, input: MembershipInput): void {
    if (input.type === 'message' && input.message.type === 'exchange-request') {
      const peers: PeerRecord[] = []
      for (let index = 0; index < Math.min(input.message.count, 16); index++) {
        peers.push({ peer: `sybil-${this.#self}-${this.#prng.nextUint32()}` as PeerId, addresses: [] })
      }
      this.sybilIdsGiven += peers.length
      this.#answers.push({ type: 'send', to: input.from, message: { type: 'exchange-response', peers } })
      // The honest core still gets a tick, so its own timers keep running.
      this.#inner.handle(now, { type: 'tick' })
      return
    }
    this.#inner.handle(now, input)
  }

  poll(): MembershipAction | undefined {
    return this.#answers.shift() ?? this.#inner.poll()
  }

  nextDeadline(): Millis | undefined {
    return this.#inner.nextDeadline()
  }
}
