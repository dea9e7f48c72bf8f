/**
 * Minimal cores for testing and measuring the simulator itself: a no-op core (the
 * baseline for per-peer memory) and a scripted core that records its inputs and emits
 * the actions a test queues. Not protocols: nothing here ships in a node.
 */
import type { Millis, NetworkAction, NetworkInput, WireCodec } from '../core/sans-io.ts'
import type { SimCore } from './simulator.ts'

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
  input: NetworkInput<M>
}

export class ScriptedCore<M> implements SimCore<M> {
  readonly inputs: RecordedInput<M>[] = []
  readonly #actions: (NetworkAction<M> | { type: string })[] = []
  deadline: Millis | undefined

  handle(now: Millis, input: NetworkInput<M>): void {
    if (input.type !== 'tick') this.inputs.push({ now, input })
  }

  poll(): NetworkAction<M> | { type: string } | undefined {
    return this.#actions.shift()
  }

  nextDeadline(): Millis | undefined {
    return this.deadline
  }

  /** Queues an action; the simulator collects it after the core's next input. */
  enqueue(action: NetworkAction<M> | { type: string }): void {
    this.#actions.push(action)
  }

  inputsOfType<T extends NetworkInput<M>['type']>(type: T): (RecordedInput<M> & { input: Extract<NetworkInput<M>, { type: T }> })[] {
    return this.inputs.filter((recorded) => recorded.input.type === type) as (RecordedInput<M> & { input: Extract<NetworkInput<M>, { type: T }> })[]
  }
}
