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
 *
 * glibc's allocator keeps free memory too: free() gives back only the top of a heap, so the
 * main heap, grown by many buffers alive at once (a transfer's, a flood's), stays grown while
 * one small allocation is left above them; soak daemons kept steps of 5-11 MiB so, and their
 * worker threads' arenas crept up. malloc_trim(0) gives back the free pages inside every
 * arena; at about 2 ms a call in a soak daemon it is cheap enough to run after every major
 * collection, before the RSS is judged.
 */
import { createRequire } from 'node:module'
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

let mallocTrim: (() => void) | null | undefined

/** glibc's malloc_trim(0), through koffi; null where the C library is not glibc (musl, macOS). */
export function mallocTrimmer(): (() => void) | null {
  if (mallocTrim !== undefined) return mallocTrim
  mallocTrim = null
  if (process.platform !== 'linux') return mallocTrim
  try {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi')
    // A call without strings or structs: koffi's default blocks for a call (2 MiB of stack, 1 MiB of heap) would be resident for nothing.
    koffi.config({ ...koffi.config(), sync_stack_size: 64 * 1024, sync_heap_size: 64 * 1024 })
    const trim = koffi.load('libc.so.6').func('int malloc_trim(size_t pad)') as (pad: number) => number
    mallocTrim = () => { trim(0) }
  } catch {
    // No libc.so.6: not glibc, so no malloc_trim.
  }
  return mallocTrim
}

export interface HeapTrimSettings {
  /** null: never ask V8 for a last-resort collection. */
  rssRiseBytesMin: number | null
  intervalMsMin: number
  /** Ask glibc for its free pages after every major collection (where the C library is glibc). */
  mallocTrim: boolean
}

export const HEAP_TRIM_DEFAULTS: HeapTrimSettings = { rssRiseBytesMin: 16 * 2 ** 20, intervalMsMin: 60_000, mallocTrim: true }

type TrimPolicySettings = Pick<HeapTrimSettings, 'rssRiseBytesMin' | 'intervalMsMin'>

/** The decision, apart from V8: when the RSS has risen enough since the last trim to try one. */
export class TrimPolicy {
  readonly #settings: TrimPolicySettings
  #baselineBytes: number | undefined
  #lastTrimMs = -Infinity

  constructor(settings: TrimPolicySettings) {
    this.#settings = settings
  }

  /** After a major collection: whether to trim now. */
  afterMajorGc(rssBytes: number, nowMs: number): boolean {
    const { rssRiseBytesMin, intervalMsMin } = this.#settings
    if (rssRiseBytesMin === null) return false
    if (this.#baselineBytes === undefined) {
      this.#baselineBytes = rssBytes
      return false
    }
    return rssBytes - this.#baselineBytes >= rssRiseBytesMin && nowMs - this.#lastTrimMs >= intervalMsMin
  }

  trimmed(rssBytes: number, nowMs: number): void {
    this.#baselineBytes = rssBytes
    this.#lastTrimMs = nowMs
  }
}

export interface HeapTrim {
  /** v8: a last-resort collection; malloc: glibc's malloc_trim. */
  heap: 'v8' | 'malloc'
  rssBeforeBytes: number
  rssAfterBytes: number
  durationMs: number
}

/** Watches major collections and trims; the heap is the process's, so one per process. */
export class HeapTrimmer {
  readonly #policy: TrimPolicy
  readonly #mallocTrim: (() => void) | null
  readonly #onTrim: (trim: HeapTrim) => void
  readonly #stopObserving: () => void
  #trimming = false
  #stopped = false

  constructor(settings: HeapTrimSettings, onTrim: (trim: HeapTrim) => void) {
    this.#policy = new TrimPolicy(settings)
    this.#mallocTrim = settings.mallocTrim ? mallocTrimmer() : null
    this.#onTrim = onTrim
    this.#stopObserving = onMajorGc(() => {
      if (this.#trimming) return
      this.#trimMalloc()
      if (!this.#policy.afterMajorGc(process.memoryUsage.rss(), performance.now())) return
      this.#trimming = true
      // Not from within the observer's callback: a collection of its own, in a turn of its own.
      setImmediate(() => this.#trimV8())
    })
  }

  #trimV8(): void {
    if (this.#stopped) return
    this.#measured('v8', () => garbageCollector()({ type: 'major', execution: 'sync', flavor: 'last-resort' }))
    // The buffers that collection freed.
    this.#trimMalloc()
    this.#policy.trimmed(process.memoryUsage.rss(), performance.now())
    // The trim's own collections reach the observer in a later turn: they are not ones to judge by.
    setImmediate(() => { this.#trimming = false })
  }

  #trimMalloc(): void {
    if (this.#mallocTrim !== null) this.#measured('malloc', this.#mallocTrim)
  }

  #measured(heap: HeapTrim['heap'], trim: () => void): void {
    const rssBeforeBytes = process.memoryUsage.rss()
    const startMs = performance.now()
    trim()
    const durationMs = performance.now() - startMs
    this.#onTrim({ heap, rssBeforeBytes, rssAfterBytes: process.memoryUsage.rss(), durationMs })
  }

  stop(): void {
    this.#stopped = true
    this.#stopObserving()
  }
}
