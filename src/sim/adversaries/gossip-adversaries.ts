/**
 * Adversaries for GossipSub, after the attacks of the GossipSub v1.1 evaluation (Vyzovitis
 * et al., 2020): cores that wrap an honest GossipCore, so that they connect, subscribe,
 * graft and keep meshes as anyone does, and change what they send. Built by the gossip
 * scenarios through gossipNetwork's `adversary` hook; driven like any core.
 *
 *   SilentSybil   forwards nothing from a chosen instant on (covert flash; cold boot from 0)
 *   EclipseSybil  never sends the target a message nor an IHAVE, and GRAFTs it every heartbeat
 *   Spammer       honest, but from a chosen instant publishes invalid messages to every
 *                 subscribed peer it is connected to
 *
 * Each dials whoever it is told of at once: GossipCore bounds the dials it makes to peers it
 * learns of (exchangeDialsMax), and a Sybil has no reason to.
 */
import type { GossipAction, GossipCore, GossipInput } from '../../core/gossip/gossip.ts'
import type { GossipControl, GossipMessage, GossipRpc } from '../../core/gossip/messages.ts'
import type { Core, Millis, PeerId } from '../../core/sans-io.ts'
import { GOSSIP_TOPIC, simMessage } from '../scenarios/gossip-network.ts'

/** The common part: dials at once, and a queue of actions of its own ahead of the inner core's. */
abstract class GossipAdversary implements Core<GossipInput, GossipAction> {
  protected readonly inner: GossipCore
  protected now: Millis = 0
  readonly #own: GossipAction[] = []

  constructor(inner: GossipCore) {
    this.inner = inner
  }

  handle(now: Millis, input: GossipInput): void {
    this.now = now
    if (input.type === 'peer-discovered') {
      this.#own.push({ type: 'dial', peer: input.peer, addresses: input.addresses })
      return
    }
    this.inner.handle(now, input)
    if (input.type === 'tick') this.onTick(now)
  }

  poll(): GossipAction | undefined {
    const own = this.#own.shift()
    if (own !== undefined) return own
    for (let action = this.inner.poll(); action !== undefined; action = this.inner.poll()) {
      const kept = this.filter(action)
      if (kept !== undefined) return kept
    }
    return undefined
  }

  nextDeadline(): Millis | undefined {
    const inner = this.inner.nextDeadline()
    const own = this.ownDeadline()
    if (own === undefined) return inner
    return inner === undefined ? own : Math.min(inner, own)
  }

  protected push(action: GossipAction): void {
    this.#own.push(action)
  }

  /** What becomes of each of the inner core's actions; undefined drops it. */
  protected filter(action: GossipAction): GossipAction | undefined {
    return action
  }

  /** At every tick, after the inner core's. */
  protected onTick(_now: Millis): void {}

  /** When the adversary wants a tick of its own. */
  protected ownDeadline(): Millis | undefined {
    return undefined
  }
}

/** An RPC without its messages and IHAVE: undefined when nothing is left of it. */
function withoutMessagesAndIHave(rpc: GossipRpc): GossipRpc | undefined {
  const control = rpc.control
  const keptControl: GossipControl | undefined = control === undefined || control.ihave.length === 0 ? control : { ...control, ihave: [] }
  const controlLeft = keptControl !== undefined
    && (keptControl.iwant.length + keptControl.graft.length + keptControl.prune.length + keptControl.idontwant.length > 0)
  if (rpc.subscriptions.length === 0 && !controlLeft) return undefined
  if (rpc.messages.length === 0 && keptControl === control) return rpc
  const kept: GossipRpc = { subscriptions: rpc.subscriptions, messages: [] }
  if (controlLeft) kept.control = keptControl
  return kept
}

/**
 * Behaves honestly until `silentFromMs`, then keeps its meshes (it still GRAFTs, answers
 * PRUNEs and announces its subscriptions) but sends no message and advertises none: the
 * covert flash attack's Sybil once it strikes, and the cold boot's from the start.
 */
export class SilentSybil extends GossipAdversary {
  readonly #silentFromMs: Millis

  constructor(inner: GossipCore, silentFromMs: Millis) {
    super(inner)
    this.#silentFromMs = silentFromMs
  }

  protected override filter(action: GossipAction): GossipAction | undefined {
    if (action.type !== 'send' || this.now < this.#silentFromMs) return action
    const kept = withoutMessagesAndIHave(action.message)
    return kept === undefined ? undefined : kept === action.message ? action : { ...action, message: kept }
  }
}

/**
 * Connects to a target and tries to own its mesh: GRAFTs it every heartbeat, whatever it
 * was told (PRUNE, backoff), and never sends it a message nor an IHAVE, so that the target
 * hears nothing through it. Toward anyone else it is honest.
 */
export class EclipseSybil extends GossipAdversary {
  readonly #target: PeerId
  readonly #graftIntervalMs: number
  #nextGraftMs: Millis | undefined
  graftsSent = 0

  constructor(inner: GossipCore, target: PeerId, graftIntervalMs: number) {
    super(inner)
    this.#target = target
    this.#graftIntervalMs = graftIntervalMs
  }

  override handle(now: Millis, input: GossipInput): void {
    if (input.type === 'peer-connected' && input.peer === this.#target) this.#nextGraftMs ??= now + this.#graftIntervalMs
    super.handle(now, input)
  }

  protected override filter(action: GossipAction): GossipAction | undefined {
    if (action.type !== 'send' || action.to !== this.#target) return action
    const kept = withoutMessagesAndIHave(action.message)
    return kept === undefined ? undefined : kept === action.message ? action : { ...action, message: kept }
  }

  protected override onTick(now: Millis): void {
    if (this.#nextGraftMs === undefined || now < this.#nextGraftMs) return
    this.#nextGraftMs = now + this.#graftIntervalMs
    this.graftsSent++
    const control: GossipControl = { ihave: [], iwant: [], graft: [GOSSIP_TOPIC], prune: [], idontwant: [] }
    this.push({ type: 'send', to: this.#target, message: { subscriptions: [], messages: [], control } })
  }

  protected override ownDeadline(): Millis | undefined {
    return this.#nextGraftMs
  }
}

/**
 * Honest, except that from `spamFromMs` to `spamUntilMs` it publishes `perSecond` invalid
 * messages (a bad signature, a fresh seqno each) of `bytes` each, straight to every
 * subscribed peer it is connected to, as flood publishing would send its own.
 */
export class Spammer extends GossipAdversary {
  readonly #self: PeerId
  readonly #spamUntilMs: Millis
  readonly #intervalMs: number
  readonly #data: Uint8Array
  #nextSpamMs: Millis
  #seqno = 1e12
  /** Copies of invalid messages handed to the network. */
  copiesSent = 0

  constructor(inner: GossipCore, self: PeerId, spam: { fromMs: Millis; untilMs: Millis; perSecond: number; bytes: number }) {
    super(inner)
    this.#self = self
    this.#nextSpamMs = spam.fromMs
    this.#spamUntilMs = spam.untilMs
    this.#intervalMs = 1_000 / spam.perSecond
    this.#data = new Uint8Array(spam.bytes)
  }

  protected override onTick(now: Millis): void {
    // Each tick sends what fell due since the last, so a slow tick loses nothing.
    while (this.#nextSpamMs <= now && this.#nextSpamMs < this.#spamUntilMs) {
      this.#nextSpamMs += this.#intervalMs
      const message: GossipMessage = simMessage(this.#self, ++this.#seqno, this.#data, true)
      const rpc: GossipRpc = { subscriptions: [], messages: [message] }
      for (const peer of this.inner.peersOf(GOSSIP_TOPIC)) {
        this.copiesSent++
        this.push({ type: 'send', to: peer, message: rpc })
      }
    }
  }

  protected override ownDeadline(): Millis | undefined {
    return this.#nextSpamMs < this.#spamUntilMs ? this.#nextSpamMs : undefined
  }
}
