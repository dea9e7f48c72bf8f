/**
 * Gives the JS heap's freed pages back to the system. V8 (13.6, Node 24) keeps the pages a
 * collection empties, in its spaces or in a pool outside them, to reuse them, and returns
 * them only on a collection made to reduce memory, which its memory reducer starts only once
 * the process allocates little. A daemon under load never does: its RSS keeps the heap's
 * high-water mark, and every burst (a large fetch, a flood, a slow reader) can raise it for
 * good. Measured in a soak: 2 of 10 daemons held 22-24 MiB of 256 KiB heap pages beyond
 * their heap's committed size, and kept them.
 *
 * The pool is not in V8's statistics, so the trimmer watches what it costs: after each major
 * collection it reads the RSS, and once that is `rssRiseBytesMin` above what the last trim
 * left (the first major collection's at the start), and `intervalMsMin` has passed, it asks
 * V8 for a last-resort collection: a few full collections that reduce memory (some tens of
 * ms on a daemon's heap), after which the pool is empty. A rise the process needs stays, and
 * is the next trim's baseline: at most one collection an interval is spent on it.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { onMajorGc } from '../net/metrics.ts'

/** V8's gc() of --expose-gc; `flavor: 'last-resort'` collects to reduce memory. */
export type GarbageCollect = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async'; flavor?: 'regular' | 'last-resort' }) => void

let gc: GarbageCollect | undefined

/** V8's gc(), also in a process started without --expose-gc (a context made after the flag is set gets it; the global stays without). */
export function garbageCollector(): GarbageCollect {
  gc ??= (globalThis as { gc?: GarbageCollect }).gc
  if (gc === undefined) {
    setFlagsFromString('--expose-gc')
    gc = runInNewContext('gc') as GarbageCollect
  }
  return gc
}

export interface HeapTrimSettings {
  rssRiseBytesMin: number
  intervalMsMin: number
}

export const HEAP_TRIM_DEFAULTS: HeapTrimSettings = { rssRiseBytesMin: 16 * 2 ** 20, intervalMsMin: 60_000 }

/** The decision, apart from V8: when the RSS has risen enough since the last trim to try one. */
export class TrimPolicy {
  readonly #settings: HeapTrimSettings
  #baselineBytes: number | undefined
  #lastTrimMs = -Infinity

  constructor(settings: HeapTrimSettings) {
    this.#settings = settings
  }

  /** After a major collection: whether to trim now. */
  afterMajorGc(rssBytes: number, nowMs: number): boolean {
    if (this.#baselineBytes === undefined) {
      this.#baselineBytes = rssBytes
      return false
    }
    return rssBytes - this.#baselineBytes >= this.#settings.rssRiseBytesMin && nowMs - this.#lastTrimMs >= this.#settings.intervalMsMin
  }

  trimmed(rssBytes: number, nowMs: number): void {
    this.#baselineBytes = rssBytes
    this.#lastTrimMs = nowMs
  }
}

export interface HeapTrim {
  rssBeforeBytes: number
  rssAfterBytes: number
  durationMs: number
}

/** Watches major collections and trims; the heap is the process's, so one per process. */
export class HeapTrimmer {
  readonly #policy: TrimPolicy
  readonly #onTrim: (trim: HeapTrim) => void
  readonly #stopObserving: () => void
  #trimming = false
  #stopped = false

  constructor(settings: HeapTrimSettings, onTrim: (trim: HeapTrim) => void) {
    this.#policy = new TrimPolicy(settings)
    this.#onTrim = onTrim
    this.#stopObserving = onMajorGc(() => {
      if (this.#trimming || !this.#policy.afterMajorGc(process.memoryUsage.rss(), performance.now())) return
      this.#trimming = true
      // Not from within the observer's callback: a collection of its own, in a turn of its own.
      setImmediate(() => this.#trim())
    })
  }

  #trim(): void {
    if (this.#stopped) return
    const rssBeforeBytes = process.memoryUsage.rss()
    const startMs = performance.now()
    garbageCollector()({ type: 'major', execution: 'sync', flavor: 'last-resort' })
    const endMs = performance.now()
    const rssAfterBytes = process.memoryUsage.rss()
    this.#policy.trimmed(rssAfterBytes, endMs)
    // The trim's own collections reach the observer in a later turn: they are not ones to judge by.
    setImmediate(() => { this.#trimming = false })
    this.#onTrim({ rssBeforeBytes, rssAfterBytes, durationMs: endMs - startMs })
  }

  stop(): void {
    this.#stopped = true
    this.#stopObserving()
  }
}
