/**
 * Selfish peers of the swarm protocol: cores that wrap an honest SwarmCore, so that they
 * find sources, open sessions, download and announce what they get as anyone does, and
 * change what they give. Built by the swarm scenarios (scenarios/swarm.ts); the scenario's
 * SwarmHost wraps them in turn, like any core.
 *
 *   FreeRider   never uploads: its unchokes and every block it would send are suppressed,
 *               so peers that ask it for the DAG's root wait for their request to time out.
 *               It still says interested and have, as BitThief-style clients do.
 */
import type { Core, Millis } from '../../core/sans-io.ts'
import type { SwarmConfig } from '../../core/swarm/config.ts'
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

/** Placeholder: replaced by the BitTyrant-style strategy. */
export class StrategicPeer implements Core<SwarmInput, SwarmAction> {
  readonly #inner: Core<SwarmInput, SwarmAction>

  static config(config: SwarmConfig, _uploadBytesPerSecond: number): SwarmConfig {
    return config
  }

  constructor(inner: Core<SwarmInput, SwarmAction>, _uploadBytesPerSecond: number) {
    this.#inner = inner
  }

  handle(now: Millis, input: SwarmInput): void {
    this.#inner.handle(now, input)
  }

  poll(): SwarmAction | undefined {
    return this.#inner.poll()
  }

  nextDeadline(): Millis | undefined {
    return this.#inner.nextDeadline()
  }
}
