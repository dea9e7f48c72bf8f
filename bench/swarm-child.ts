/**
 * bench:swarm's child processes: one seed or one leecher of one system each, driven by the
 * parent (bench/swarm.ts) over lines on stdin and stdout. Each system's roles live in a
 * module of their own (swarm-raw.ts, swarm-http.ts, swarm-helia.ts, swarm-webtorrent.ts,
 * swarm-shoal.ts), loaded only in the children that run that system.
 *
 * The exchange, every line from the child prefixed with SWARM_LINE_PREFIX so that whatever a
 * library prints is ignored:
 *   seed:     → `READY {seed info}`, then serves until killed or until its stdin closes.
 *   leecher:  → `READY {}` once prepared (libraries loaded, node started: process start-up
 *             and node creation are not timed); ← `GO`; then connects and fetches, and
 *             → `DONE {}` as soon as the content is complete; then → `RECEIVED {bytes,
 *             sha256}`. Systems that write the content to a file are hashed after DONE, out of
 *             the timed phase; systems that hand out a byte stream are hashed as the bytes
 *             arrive (the leecher's way of consuming them), inside it.
 *   either:   → `ERROR {code, message}` and exit 1 when anything fails.
 * A child exits when its stdin closes, so that a parent that dies leaves no child behind.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'

export const SWARM_LINE_PREFIX = 'SWARM '
export const GO_LINE = 'GO'

export type System = 'raw' | 'http' | 'helia' | 'webtorrent' | 'shoal'
export const SYSTEMS: readonly System[] = ['raw', 'http', 'helia', 'webtorrent', 'shoal']

/** What leechers need to reach the seed and name the content: JSON, passed on their argv. */
export type SeedInfo = Record<string, string | number>

/** What a leecher got: bytes it hashed as they arrived, or a file to hash after the timed phase. */
export type Received =
  | { kind: 'hashed'; bytes: number; sha256: string }
  | { kind: 'file'; path: string }

export interface Leecher {
  /** Connects to the seed and fetches the whole content. */
  fetch(): Promise<Received>
}

export interface LeecherContext {
  seed: SeedInfo
  /** A folder of the leecher's own, removed by the parent. */
  workDir: string
  /** Arguments the parent's system runner added for this leecher (e.g. Shoal's repository). */
  extra: Record<string, string>
}

export interface SystemRoles {
  /** Starts serving `file`; resolves once leechers can fetch it. Absent where the parent starts the seed itself (Shoal). */
  seed?(file: string, workDir: string): Promise<SeedInfo>
  /** Prepares a leecher up to the point where only connecting and fetching remain. */
  leecher(context: LeecherContext): Promise<Leecher>
}

/** A failure with a code the parent classifies (e.g. Shoal's 'not-built'). */
export class BenchError extends Error {
  constructor(readonly code: string, message: string) {
    super(message)
  }
}

export interface ChildArgs {
  system: System
  role: 'seed' | 'leecher'
  file: string | undefined
  workDir: string
  seed: string | undefined
  extra: string | undefined
}

export async function runChild(args: ChildArgs): Promise<void> {
  const lines = createInterface({ input: process.stdin })
  // The parent closed our stdin or died: nothing will read what we do any more.
  lines.on('close', () => process.exit(0))
  const goes: Array<() => void> = []
  let goReceived = false
  lines.on('line', (line) => {
    if (line.trim() !== GO_LINE) return
    goReceived = true
    for (const go of goes.splice(0)) go()
  })
  try {
    const roles = await loadRoles(args.system)
    if (args.role === 'seed') {
      if (roles.seed === undefined || args.file === undefined) throw new Error(`${args.system} has no seed child (or no --file)`)
      send('READY', await roles.seed(args.file, args.workDir))
      return // Serves until killed or until stdin closes.
    }
    if (args.seed === undefined) throw new Error('a leecher needs --seed-info')
    const leecher = await roles.leecher({
      seed: JSON.parse(args.seed) as SeedInfo,
      workDir: args.workDir,
      extra: args.extra === undefined ? {} : JSON.parse(args.extra) as Record<string, string>,
    })
    send('READY', {})
    if (!goReceived) await new Promise<void>((resolve) => goes.push(resolve))
    const received = await leecher.fetch()
    send('DONE', {})
    send('RECEIVED', received.kind === 'hashed' ? received : await hashFile(received.path))
    // Libraries' timers and sockets may keep the loop alive: the figures are out.
    process.exit(0)
  } catch (error) {
    const code = error instanceof BenchError ? error.code : (error as { code?: unknown } | undefined)?.code
    const message = error instanceof Error ? error.message : String(error)
    send('ERROR', { code: typeof code === 'string' ? code : 'error', message })
    if (process.env['SWARM_DEBUG']) console.error(error)
    process.exit(1)
  }
}

async function loadRoles(system: System): Promise<SystemRoles> {
  switch (system) {
    case 'raw': return (await import('./swarm-raw.ts')).rawRoles
    case 'http': return (await import('./swarm-http.ts')).httpRoles
    case 'helia': return (await import('./swarm-helia.ts')).heliaRoles
    case 'webtorrent': return (await import('./swarm-webtorrent.ts')).webTorrentRoles
    case 'shoal': return (await import('./swarm-shoal.ts')).shoalRoles
  }
}

function send(kind: 'READY' | 'DONE' | 'RECEIVED' | 'ERROR', value: object): void {
  process.stdout.write(`${SWARM_LINE_PREFIX}${kind} ${JSON.stringify(value)}\n`)
}

/** A running SHA-256 over chunks as they arrive. */
export class ByteCounter {
  readonly #hash = createHash('sha256')
  bytes = 0

  add(chunk: Uint8Array): void {
    this.#hash.update(chunk)
    this.bytes += chunk.byteLength
  }

  result(): Received {
    return { kind: 'hashed', bytes: this.bytes, sha256: this.#hash.digest('hex') }
  }
}

export async function hashFile(path: string): Promise<Received> {
  const counter = new ByteCounter()
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) counter.add(chunk as Buffer)
  return counter.result()
}
