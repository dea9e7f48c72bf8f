/**
 * SubscriptionQueue: one subscriber's buffer between pub/sub (node/pubsub.ts), which pushes
 * each message of the topic as it is delivered, and the reader, which iterates at its own
 * pace. Bounded in messages and in bytes: when full, the oldest message is dropped and
 * counted, so a reader that falls behind costs the node a fixed amount of memory. It ends
 * on close(), on its signal (both drop what is buffered), or on fail() (pub/sub stopped),
 * which hands out what is buffered and then the error. PubSub.subscription() creates it;
 * it has one reader.
 */
import type { PubSubMessage, PubSubSubscription } from './api.ts'

export interface SubscriptionLimits {
  /** Messages buffered for a reader that falls behind; older ones are dropped. */
  messagesMax: number
  /** Bytes of message data buffered; older messages are dropped past it (the newest is always kept). */
  bytesMax: number
}

export const DEFAULT_SUBSCRIPTION_LIMITS: SubscriptionLimits = {
  messagesMax: 1_024,
  bytesMax: 16 * 1024 * 1024,
}

/** What every queue of a node adds to (shoal_pubsub_subscribers_total). */
export interface SubscriberCounters {
  messagesQueued: number
  messagesDropped: number
}

type Ending = { error: unknown; thrown: boolean }

export class SubscriptionQueue implements PubSubSubscription {
  readonly topic: string
  readonly #limits: SubscriptionLimits
  readonly #counters: SubscriberCounters
  readonly #onEnd: () => void
  readonly #messages: PubSubMessage[] = []
  #bytes = 0
  #droppedCount = 0
  /** The reader's pending next(), only while nothing is buffered. */
  #reader: PromiseWithResolvers<IteratorResult<PubSubMessage>> | undefined
  #ending: Ending | undefined
  #signal: AbortSignal | undefined

  /** `onEnd` runs once, when the queue ends for any reason: the owner unsubscribes there. */
  constructor(topic: string, limits: SubscriptionLimits, counters: SubscriberCounters, onEnd: () => void) {
    this.topic = topic
    this.#limits = limits
    this.#counters = counters
    this.#onEnd = onEnd
  }

  get droppedCount(): number {
    return this.#droppedCount
  }

  /** Ends the queue when `signal` aborts (at once if it has). */
  endWith(signal: AbortSignal | undefined): void {
    if (signal === undefined || this.#ending !== undefined) return
    if (signal.aborted) return this.close()
    this.#signal = signal
    signal.addEventListener('abort', this.#onAbort, { once: true })
  }

  push(message: PubSubMessage): void {
    if (this.#ending !== undefined) return
    this.#counters.messagesQueued++
    const reader = this.#reader
    if (reader !== undefined) {
      this.#reader = undefined
      reader.resolve({ done: false, value: message })
      return
    }
    this.#messages.push(message)
    this.#bytes += message.data.byteLength
    while (this.#messages.length > this.#limits.messagesMax || (this.#bytes > this.#limits.bytesMax && this.#messages.length > 1)) {
      this.#bytes -= this.#messages.shift()!.data.byteLength
      this.#droppedCount++
      this.#counters.messagesDropped++
    }
  }

  close(): void {
    this.#messages.length = 0
    this.#bytes = 0
    this.#end(undefined)
  }

  /** Ends the queue with `error`, after the reader has taken what is buffered. */
  fail(error: unknown): void {
    this.#end(error)
  }

  [Symbol.asyncIterator](): AsyncIterator<PubSubMessage> {
    return {
      next: () => this.#next(),
      return: async () => {
        this.close()
        return { done: true, value: undefined }
      },
    }
  }

  #next(): Promise<IteratorResult<PubSubMessage>> {
    const message = this.#messages.shift()
    if (message !== undefined) {
      this.#bytes -= message.data.byteLength
      return Promise.resolve({ done: false, value: message })
    }
    const ending = this.#ending
    if (ending !== undefined) {
      if (ending.error === undefined || ending.thrown) return Promise.resolve({ done: true, value: undefined })
      ending.thrown = true
      return Promise.reject(ending.error)
    }
    if (this.#reader !== undefined) throw new Error('SubscriptionQueue: next() while a next() is pending; iterate it once')
    this.#reader = Promise.withResolvers()
    return this.#reader.promise
  }

  #end(error: unknown): void {
    if (this.#ending !== undefined) return
    this.#ending = { error, thrown: false }
    this.#signal?.removeEventListener('abort', this.#onAbort)
    this.#signal = undefined
    const reader = this.#reader
    this.#reader = undefined
    if (reader !== undefined) {
      // Nothing is buffered while a reader waits.
      if (error === undefined) {
        reader.resolve({ done: true, value: undefined })
      } else {
        this.#ending.thrown = true
        reader.reject(error)
      }
    }
    this.#onEnd()
  }

  readonly #onAbort = (): void => this.close()
}
