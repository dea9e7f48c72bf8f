/**
 * Minimal cores for testing and measuring the simulator itself: a no-op core (the
 * baseline for per-peer memory), a scripted core that records its inputs, emits the
 * actions a test queues and may answer requests, and a request load for benchmarks. Not
 * protocols: nothing here ships in a node.
 */
import type { Prng } from '../core/prng.ts'
import type { Millis, PeerId, RequestId, WireCodec } from '../core/sans-io.ts'
import type { NatClass, NetworkConfig } from './network-model.ts'
import { Simulator, type AnyAction, type SimCore, type SimInput } from './simulator.ts'

/** A test message whose encoded size is chosen by the test. */
export interface BlobMessage {
  type: 'blob'
  bytes: number
  label: string
}

/** Encodes a BlobMessage as `bytes` zero bytes; decoding is not needed in simulation. */
export const blobCodec: WireCodec<BlobMessage> = {
  protocol: '/shoal/test-blob/1.0.0',
  frameBytesMax: 1 << 30,
  encode: (message) => new Uint8Array(message.bytes),
  decode: () => ({ ok: false, error: { code: 'not-decodable' } }),
}

export class NoopCore<M> implements SimCore<M> {
  handle(): void {}
  poll(): undefined {
    return undefined
  }
  nextDeadline(): undefined {
    return undefined
  }
}

export interface RecordedInput<M> {
  now: Millis
  input: SimInput<M>
}

/** The reply to a request, or undefined to leave it unanswered. */
export type Answer<M> = (message: M, from: PeerId) => M | undefined

export class ScriptedCore<M> implements SimCore<M> {
  readonly inputs: RecordedInput<M>[] = []
  readonly #actions: AnyAction<M>[] = []
  readonly #answer: Answer<M> | undefined
  deadline: Millis | undefined

  /** `answer`: respond to each request at once with what it returns. */
  constructor(answer?: Answer<M>) {
    this.#answer = answer
  }

  handle(now: Millis, input: SimInput<M>): void {
    if (input.type === 'tick') return
    this.inputs.push({ now, input })
    if (input.type === 'request' && this.#answer !== undefined) {
      const reply = this.#answer(input.message, input.from)
      if (reply !== undefined) this.#actions.push({ type: 'respond', to: input.from, id: input.id, message: reply })
    }
  }

  poll(): AnyAction<M> | undefined {
    return this.#actions.shift()
  }

  nextDeadline(): Millis | undefined {
    return this.deadline
  }

  /** Queues an action; the simulator collects it after the core's next input. */
  enqueue(action: AnyAction<M>): void {
    this.#actions.push(action)
  }

  inputsOfType<T extends SimInput<M>['type']>(type: T): (RecordedInput<M> & { input: Extract<SimInput<M>, { type: T }> })[] {
    return this.inputs.filter((recorded) => recorded.input.type === type) as (RecordedInput<M> & { input: Extract<SimInput<M>, { type: T }> })[]
  }
}

export interface RequestLoadConfig {
  /** Every peer's id, by index: the targets are drawn from it. */
  ids: readonly PeerId[]
  self: number
  requestCount: number
  /** Mean gap between two requests of one peer (exponential gaps). */
  intervalMs: number
  request: BlobMessage
  response: BlobMessage
}

/**
 * Request load: sends `requestCount` requests to uniformly random other peers and answers
 * every request it receives. Checks that each of its requests ends at most once, and
 * counts how they ended. One action per input, so poll() needs no queue.
 */
export class RequestLoadCore implements SimCore<BlobMessage> {
  responseCount = 0
  failureCount = 0
  readonly #config: RequestLoadConfig
  readonly #prng: Prng
  /** 1 for each request id (1..requestCount) that has ended. */
  readonly #ended: Uint8Array
  #sentCount = 0
  #nextAt: Millis
  #action: AnyAction<BlobMessage> | undefined

  constructor(config: RequestLoadConfig, prng: Prng, now: Millis) {
    this.#config = config
    this.#prng = prng
    this.#ended = new Uint8Array(config.requestCount + 1)
    this.#nextAt = now + prng.exponential(config.intervalMs)
  }

  handle(now: Millis, input: SimInput<BlobMessage>): void {
    switch (input.type) {
      case 'tick': {
        const config = this.#config
        if (now < this.#nextAt || this.#sentCount === config.requestCount) return
        let target = this.#prng.int(config.ids.length - 1)
        if (target >= config.self) target++
        this.#action = { type: 'request', to: config.ids[target]!, addresses: NO_ADDRESSES, id: ++this.#sentCount, message: config.request, oneWay: false }
        this.#nextAt = now + this.#prng.exponential(config.intervalMs)
        return
      }
      case 'request':
        this.#action = { type: 'respond', to: input.from, id: input.id, message: this.#config.response }
        return
      case 'response':
        this.#end(input.id)
        this.responseCount++
        return
      case 'request-failed':
        this.#end(input.id)
        this.failureCount++
        return
    }
  }

  poll(): AnyAction<BlobMessage> | undefined {
    const action = this.#action
    this.#action = undefined
    return action
  }

  nextDeadline(): Millis | undefined {
    return this.#sentCount < this.#config.requestCount ? this.#nextAt : undefined
  }

  #end(id: RequestId): void {
    if (this.#ended[id] !== 0) throw new Error(`request ${id} ended twice`)
    this.#ended[id] = 1
  }
}

const NO_ADDRESSES: readonly string[] = Object.freeze([])

/** One-way latency of every link in scriptedSimulator(). */
export const SCRIPTED_LATENCY_MS = 10

export interface ScriptedSimulatorOptions {
  network?: Partial<NetworkConfig>
  nat?: NatClass[]
  servesProtocol?: (index: number) => boolean
  answer?: Answer<BlobMessage>
}

/**
 * `peerCount` ScriptedCores on links of SCRIPTED_LATENCY_MS and unlimited bandwidth, all
 * online at time 0, for tests that script each peer's actions by hand.
 */
export function scriptedSimulator(peerCount: number, options: ScriptedSimulatorOptions = {}) {
  const cores: ScriptedCore<BlobMessage>[] = []
  const sim = new Simulator<BlobMessage>({
    peerCount,
    seed: 1n,
    codec: blobCodec,
    network: { latency: { kind: 'constant', valueMs: SCRIPTED_LATENCY_MS }, uploadBytesPerSecond: Infinity, downloadBytesPerSecond: Infinity, frameOverheadBytes: 0, ...options.network },
    natClassOf: (index) => options.nat?.[index] ?? 'public',
    servesProtocol: options.servesProtocol,
    createCore: (context) => (cores[context.index] = new ScriptedCore<BlobMessage>(options.answer)),
  })
  for (let index = 0; index < peerCount; index++) sim.join(index)
  sim.run(0)
  /** Makes peer `from` carry out `action` now. */
  const act = (from: number, action: AnyAction<BlobMessage>) => {
    cores[from]!.enqueue(action)
    sim.input(from, { type: 'tick' })
  }
  const connect = (from: number, to: number) => {
    act(from, { type: 'dial', peer: sim.idOf(to), addresses: [] })
    sim.run(sim.now + 2 * SCRIPTED_LATENCY_MS)
  }
  const blob = (label: string, bytes = 100): BlobMessage => ({ type: 'blob', bytes, label })
  return { sim, cores, act, connect, blob }
}
