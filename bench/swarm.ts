/**
 * Benchmark of whole-file transfer between real processes on loopback: Shoal's swarm
 * protocol against a raw libp2p stream, a plain HTTP origin, Helia (bitswap) and WebTorrent,
 * all measured in the same run. The issue's targets: Shoal single-source at least 0.9× the
 * raw libp2p stream's throughput (scenario A), and Shoal's time with 8 leechers at most a
 * third of WebTorrent's and of Helia's (scenario B).
 *
 *   npm run bench:swarm -- --runs 3 --scenario all --systems raw,http,helia,webtorrent,shoal
 *
 * Scenarios:
 *   A: 1 seed → 1 leecher, --size-a MiB (256).
 *   B: 1 seed → 8 leechers, --size-b MiB (64), all leechers started together: 9 processes
 *      (Shoal: 9 daemons, and 8 processes running the leechers' CLI commands) on however
 *      many cores the machine has.
 * The file is pseudo-random bytes from --seed (AES-256-CTR keystream keyed by SHA-256 of the
 * seed), written once per benchmark under os.tmpdir() (the real disk), and so in the page cache.
 *
 * Systems, each a seed process and one process per leecher (the modules name the details):
 *   raw         the file's bytes on one libp2p stream per leecher, from a seed holding the
 *               file in memory; Shoal's own host stack (net/host.ts createHost: TCP, Noise,
 *               Yamux, identify, ping). The baseline (swarm-raw.ts).
 *   http        node:http origin holding the file in memory; one GET per leecher (swarm-http.ts).
 *   helia       Helia 7, bitswap only, no routing: leechers dial the seed by multiaddr and
 *               `cat` the root CID of the seed's @helia/unixfs import (swarm-helia.ts).
 *   webtorrent  WebTorrent 2 over TCP, no DHT, tracker, LSD, uTP or WebRTC; leechers get the
 *               seed's .torrent file and its address (torrent.addPeer) (swarm-webtorrent.ts).
 *   shoal       `shoal daemon` processes; `shoal add` on the seed; each leecher runs
 *               `shoal swarm connect <seed>` and `shoal get <cid> -o <file>` (swarm-shoal.ts).
 *               A build without `get`, or whose daemon does not speak the swarm protocol,
 *               gets a "not built" row, and is not tried again in later runs.
 *
 * Method, per run, scenario and system (the systems' order rotates from run to run): the seed
 * starts and prepares its content (import, hashing, .torrent; not timed), then the leechers
 * start and prepare: libraries loaded, their node or client started, the .torrent read (not
 * timed: process start-up is not what is compared). Each reports READY; then the parent sends
 * GO to all of them at once, and the time runs from there to the last leecher's DONE: it
 * includes every leecher's connection set-up (dial, handshakes, protocol negotiation) and
 * fetch. Leechers that receive a byte stream (raw, http, helia) hash it as it arrives, inside
 * the time, which is how they consume it; leechers that write a file (webtorrent, shoal: both
 * check every piece or block on arrival) report DONE when the file is complete and hash it
 * after. Every leecher's SHA-256 and byte count are checked against the file's: a mismatch
 * fails the row loudly (and the benchmark exits 1). MB/s = file bytes × leechers / time, with
 * MB = 10^6 bytes. The table gives the median time of the runs that succeeded and the MB/s
 * from it; a system with a failed or timed-out run says so in its status.
 *
 * Every wait is bounded: preparing by SETUP_MS_MAX, the transfer by --timeout-s (120), the
 * hashing after it by VERIFY_MS_MAX; a bound that runs out gives a "timeout" row. Every child
 * process is killed by PID and every temporary folder removed after each transfer, whatever
 * happened, and on SIGINT/SIGTERM.
 *
 * All processes share the machine's cores: with 9 or more processes on 2 cores, scenario B
 * measures CPU per byte as much as protocol design. Whatever the topology, each leecher's
 * bytes are encrypted once and decrypted once (Noise, for every libp2p system), so on few
 * cores the raw stream's B time is close to a floor for the libp2p systems, swarms included;
 * WebTorrent and HTTP do not encrypt. The 1-minute load average before each
 * transfer is printed, after a PAUSE_MS pause; it lags (it still counts the previous
 * transfer's processes) and counts Node's helper threads. The share of the machine's CPU that
 * was busy during that pause, when none of the benchmark's processes run, is printed too: it
 * is other work, which competes with the transfers (a warning above OTHER_WORK_BUSY_MAX).
 * Node runs with its default flags everywhere (the daemons as the tests start them, without
 * the executable's --max-semi-space-size=2).
 *
 * Options: --runs N (3), --scenario a|b|all (all), --systems LIST (raw,http,helia,webtorrent,
 * shoal), --size-a MiB (256), --size-b MiB (64), --seed TEXT (1), --timeout-s N (120).
 * SWARM_DEBUG=1 passes the children's stderr through, with the stack trace of any failure.
 * The last line is `RESULT {json}`.
 */
import { createCipheriv, createHash } from 'node:crypto'
import { readFileSync, rmSync } from 'node:fs'
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises'
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { TimeoutError, withTimeout } from '../src/testing/cli.ts'
import { SHOAL_VERSION } from '../src/version.ts'
import { runChild, SYSTEMS, type SeedInfo, type System } from './swarm-child.ts'
import { BenchChild, ChildFailure, killAllSync, killRemainingChildren } from './swarm-process.ts'
import { startShoalNodes, SWARM_PROTOCOL } from './swarm-shoal.ts'

type Scenario = 'a' | 'b'

interface ScenarioSpec {
  scenario: Scenario
  leecherCount: number
  sizeBytes: number
  file: string
  sha256: string
}

type Status = 'ok' | 'failed' | 'timeout' | 'not-built'

interface Transfer {
  status: Status
  /** From GO to the last leecher's DONE. */
  ms?: number
  message?: string
  loadAverage: number
  /** Share of the machine's CPU time busy during the pause before the transfer, when none of the benchmark's processes ran. */
  busyBefore: number
}

const MIB_BYTES = 1024 * 1024
/** The running transfer's cleanups (Shoal's daemons), for the signal handlers too. */
const cleanups: Array<() => unknown> = []
const SCENARIO_LEECHERS: Record<Scenario, number> = { a: 1, b: 8 }
const SYSTEM_NAMES: Record<System, string> = { raw: 'raw libp2p stream', http: 'HTTP origin', helia: 'Helia (bitswap)', webtorrent: 'WebTorrent', shoal: 'Shoal' }
/** Seed and leechers' preparation (an import or .torrent of the whole file, 9 daemons starting on 2 cores). */
const SETUP_MS_MAX = 300_000
/**
 * Before each transfer: the last one's processes are gone and their writes settle, and the
 * machine's CPU use over the pause, when none of the benchmark's processes run, is other work.
 */
const PAUSE_MS = 2_000
/** Other work above this share of the CPU during a pause gets a warning. */
const OTHER_WORK_BUSY_MAX = 0.1
/** Hashing a written file after DONE. */
const VERIFY_MS_MAX = 60_000
const GENERATOR_CHUNK_BYTES = MIB_BYTES
const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const VERSIONED_PACKAGES = [
  'libp2p', '@libp2p/tcp', '@chainsafe/libp2p-noise', '@libp2p/yamux',
  'helia', '@helia/unixfs', '@helia/bitswap', '@helia/libp2p',
  'webtorrent', 'bittorrent-protocol', 'uint8-util',
]
/** A/B targets from the issue. */
const SINGLE_SOURCE_RATIO_MIN = 0.9
const SWARM_TIME_RATIO_MAX = 1 / 3

const { values: options } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    scenario: { type: 'string', default: 'all' },
    systems: { type: 'string', default: SYSTEMS.join(',') },
    'size-a': { type: 'string', default: '256' },
    'size-b': { type: 'string', default: '64' },
    seed: { type: 'string', default: '1' },
    'timeout-s': { type: 'string', default: '120' },
    // A child process of this benchmark (swarm-child.ts).
    child: { type: 'string' },
    role: { type: 'string' },
    file: { type: 'string' },
    'work-dir': { type: 'string' },
    'seed-info': { type: 'string' },
    extra: { type: 'string' },
  },
})

if (options.child !== undefined) {
  if (!SYSTEMS.includes(options.child as System)) throw new Error(`--child must be one of ${SYSTEMS.join(', ')}`)
  if (options.role !== 'seed' && options.role !== 'leecher') throw new Error('--role must be seed or leecher')
  if (options['work-dir'] === undefined) throw new Error('a child needs --work-dir')
  await runChild({ system: options.child as System, role: options.role, file: options.file, workDir: options['work-dir'], seed: options['seed-info'], extra: options.extra })
} else {
  await runParent()
}

// --- the parent ------------------------------------------------------------------------------

async function runParent(): Promise<void> {
  const runCount = positiveInteger('runs', options.runs)
  const transferMsMax = positiveInteger('timeout-s', options['timeout-s']) * 1000
  const sizeMib: Record<Scenario, number> = { a: positiveInteger('size-a', options['size-a']), b: positiveInteger('size-b', options['size-b']) }
  if (!['a', 'b', 'all'].includes(options.scenario)) throw new Error('--scenario must be a, b or all')
  const scenarios: Scenario[] = options.scenario === 'all' ? ['a', 'b'] : [options.scenario as Scenario]
  const systems = options.systems.split(',').map((name) => name.trim()).filter(Boolean) as System[]
  for (const system of systems) if (!SYSTEMS.includes(system)) throw new Error(`unknown system ${system}; the systems are ${SYSTEMS.join(', ')}`)
  const command = ['npm run bench:swarm --', '--runs', runCount, '--scenario', options.scenario, '--systems', systems.join(','),
    '--size-a', sizeMib.a, '--size-b', sizeMib.b, '--seed', options.seed, '--timeout-s', transferMsMax / 1000].join(' ')

  const root = await mkdtemp(join(tmpdir(), 'bench-swarm-'))
  for (const name of ['SIGINT', 'SIGTERM'] as const) {
    process.once(name, () => {
      // Each step on its own: one that fails must not keep the others from running.
      const attempt = (step: () => unknown) => {
        try {
          const result = step()
          if (result instanceof Promise) result.catch(() => {})
        } catch {
          // Best effort: the process is exiting.
        }
      }
      attempt(killAllSync)
      for (const cleanup of cleanups) attempt(cleanup)
      attempt(() => rmSync(root, { recursive: true, force: true, maxRetries: 3 }))
      process.exit(130)
    })
  }

  const loadAtStart = loadavg()[0]!
  const busyAtStart = await machineBusyDuring(PAUSE_MS)
  console.log(`Swarm transfer: ${systems.map((system) => SYSTEM_NAMES[system]).join(', ')}; ${runCount} run(s), transfer timeout ${transferMsMax / 1000} s`)
  console.log(`machine: ${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), load average ${loadAtStart.toFixed(2)} at start, CPU ${percent(busyAtStart)} busy`)
  console.log(`versions: node ${process.versions.node}, shoal ${SHOAL_VERSION}, ${VERSIONED_PACKAGES.map((name) => `${name} ${packageVersion(name)}`).join(', ')}`)

  const results: Record<Scenario, Partial<Record<System, Transfer[]>>> = { a: {}, b: {} }
  const notBuilt = new Map<System, string>()
  try {
    const specs: ScenarioSpec[] = []
    for (const scenario of scenarios) {
      const file = join(root, `content-${scenario}.bin`)
      const sizeBytes = sizeMib[scenario] * MIB_BYTES
      const sha256 = await writeContent(file, sizeBytes, options.seed)
      specs.push({ scenario, leecherCount: SCENARIO_LEECHERS[scenario], sizeBytes, file, sha256 })
    }
    for (let run = 0; run < runCount; run++) {
      const order = systems.map((_, index) => systems[(index + run) % systems.length]!)
      for (const spec of specs) {
        for (const system of order) {
          const previous = notBuilt.get(system)
          const busyBefore = previous === undefined ? await machineBusyDuring(PAUSE_MS) : NaN
          const transfer: Transfer = previous === undefined
            ? { ...await runTransfer(system, spec, root, transferMsMax), busyBefore }
            : { status: 'not-built', message: previous, loadAverage: loadavg()[0]!, busyBefore }
          if (transfer.status === 'not-built') notBuilt.set(system, transfer.message ?? '')
          ;(results[spec.scenario][system] ??= []).push(transfer)
          if (previous === undefined) console.log(`run ${run + 1} ${spec.scenario.toUpperCase()} ${SYSTEM_NAMES[system].padEnd(18)} ${describe(transfer, spec)}`)
          if (transfer.status === 'failed') {
            console.log(`  FAILED: ${transfer.message}`)
            process.exitCode = 1
          }
        }
      }
    }

    const report: Record<string, unknown> = {}
    for (const spec of specs) report[spec.scenario] = printScenario(spec, systems, results[spec.scenario], runCount)
    const loadMax = Math.max(loadAtStart, ...Object.values(results).flatMap((bySystem) => Object.values(bySystem).flatMap((transfers) => transfers.map((transfer) => transfer.loadAverage))))
    const busyMax = Math.max(busyAtStart, ...Object.values(results).flatMap((bySystem) => Object.values(bySystem).flatMap((transfers) => transfers.map((transfer) => transfer.busyBefore).filter((busy) => !Number.isNaN(busy)))))
    console.log(`load average: ${loadAtStart.toFixed(2)} at the start, up to ${loadMax.toFixed(2)} before a transfer (the benchmark's own processes count in it); CPU busy with other work: ${percent(busyAtStart)} at the start, up to ${percent(busyMax)} in the pauses between transfers`)
    if (busyMax > OTHER_WORK_BUSY_MAX) console.log(`WARNING: other work kept up to ${percent(busyMax)} of the machine's CPU busy between transfers: it ran during them too, and skews the figures`)
    console.log(`command: ${command}`)
    console.log(`RESULT ${JSON.stringify({ command, runs: runCount, versions: Object.fromEntries(VERSIONED_PACKAGES.map((name) => [name, packageVersion(name)])), node: process.versions.node, loadAtStart, busyAtStart, ...report })}`)
  } finally {
    killAllSync()
    // A set-up that timed out may have registered cleanups after its transfer's own ran.
    for (const cleanup of cleanups.splice(0)) void cleanup()
    await rm(root, { recursive: true, force: true })
  }
}

/** One system moving one scenario's file once; never throws: a failure is a row. */
async function runTransfer(system: System, spec: ScenarioSpec, root: string, transferMsMax: number): Promise<Omit<Transfer, 'busyBefore'>> {
  const workDir = await mkdtemp(join(root, `${system}-${spec.scenario}-`))
  const children: BenchChild[] = []
  let loadAverage = loadavg()[0]!
  let swarmServed = true
  try {
    let seedInfo: SeedInfo
    let leecherExtras: Array<Record<string, string>> = []
    if (system === 'shoal') {
      const nodes = await withTimeout(startShoalNodes(spec.file, workDir, spec.leecherCount, { after: (cleanup) => cleanups.push(cleanup) }), SETUP_MS_MAX, 'Shoal daemons and add')
      seedInfo = nodes.seed
      leecherExtras = nodes.leecherExtras
      swarmServed = nodes.swarmServed
    } else {
      const seedDir = join(workDir, 'seed')
      await mkdir(seedDir)
      const seed = spawnChild(system, 'seed', ['--file', spec.file, '--work-dir', seedDir])
      children.push(seed)
      seedInfo = await seed.waitFor<SeedInfo>('READY', SETUP_MS_MAX, `READY within ${SETUP_MS_MAX / 1000} s`)
    }
    const leechers: BenchChild[] = []
    for (let index = 0; index < spec.leecherCount; index++) {
      const leecherDir = join(workDir, `leecher-${index}`)
      await mkdir(leecherDir)
      const extra = leecherExtras[index]
      const leecher = spawnChild(system, 'leecher', ['--work-dir', leecherDir, '--seed-info', JSON.stringify(seedInfo),
        ...(extra === undefined ? [] : ['--extra', JSON.stringify(extra)])], `leecher ${index}`)
      children.push(leecher)
      leechers.push(leecher)
    }
    await Promise.all(leechers.map((leecher) => leecher.waitFor('READY', SETUP_MS_MAX, `READY within ${SETUP_MS_MAX / 1000} s`)))

    loadAverage = loadavg()[0]!
    let doneCount = 0
    const startedAt = performance.now()
    for (const leecher of leechers) leecher.go()
    const doneAt = await Promise.all(leechers.map(async (leecher) => {
      try {
        await leecher.waitFor('DONE', startedAt + transferMsMax - performance.now(), `DONE within ${transferMsMax / 1000} s of GO`)
      } catch (error) {
        if (error instanceof TimeoutError) error.message += ` (${doneCount}/${leechers.length} leechers done by then)`
        throw error
      }
      doneCount++
      return performance.now()
    }))
    const ms = Math.max(...doneAt) - startedAt

    const received = await Promise.all(leechers.map((leecher) => leecher.waitFor<{ bytes: number; sha256: string }>('RECEIVED', VERIFY_MS_MAX, `RECEIVED within ${VERIFY_MS_MAX / 1000} s of DONE`)))
    const wrong = received.flatMap((got, index) => (got.bytes === spec.sizeBytes && got.sha256 === spec.sha256 ? []
      : [`leecher ${index} received ${got.bytes} bytes with SHA-256 ${got.sha256}, expected ${spec.sizeBytes} bytes with ${spec.sha256}`]))
    if (wrong.length > 0) return { status: 'failed', ms, message: `CONTENT MISMATCH: ${wrong.join('; ')}`, loadAverage }
    return { status: 'ok', ms, loadAverage }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    if (system === 'shoal' && (!swarmServed || (error instanceof ChildFailure && error.code === 'not-built'))) {
      return { status: 'not-built', message: swarmServed ? message : `the seed daemon does not offer ${SWARM_PROTOCOL}; ${message.replace(/^shoal leecher \d+: /, '')}`, loadAverage }
    }
    return { status: error instanceof TimeoutError ? 'timeout' : 'failed', message, loadAverage }
  } finally {
    await Promise.all(children.map((child) => child.kill()))
    for (let cleanup = cleanups.pop(); cleanup !== undefined; cleanup = cleanups.pop()) {
      try {
        await cleanup()
      } catch {
        // Cleaning up is best effort; the folder goes below regardless.
      }
    }
    await killRemainingChildren()
    await rm(workDir, { recursive: true, force: true, maxRetries: 3 })
  }
}

function spawnChild(system: System, role: 'seed' | 'leecher', args: readonly string[], label: string = role): BenchChild {
  return new BenchChild(`${system} ${label}`, ['--enable-source-maps', fileURLToPath(import.meta.url), '--child', system, '--role', role, ...args])
}

// --- the report ----------------------------------------------------------------------------

function printScenario(spec: ScenarioSpec, systems: readonly System[], bySystem: Partial<Record<System, Transfer[]>>, runCount: number) {
  const totalBytes = spec.sizeBytes * spec.leecherCount
  const title = spec.scenario === 'a'
    ? `Scenario A: 1 seed → 1 leecher, ${spec.sizeBytes / MIB_BYTES} MiB`
    : `Scenario B: 1 seed → ${spec.leecherCount} leechers started together, ${spec.sizeBytes / MIB_BYTES} MiB`
  console.log('')
  console.log(`${title}; median of ${runCount} run(s); MB = 10^6 bytes`)
  const summaries = Object.fromEntries(systems.map((system) => [system, summarize(bySystem[system] ?? [], totalBytes)])) as Record<System, ReturnType<typeof summarize>>
  const raw = summaries.raw?.ms
  const row = (system: string, status: string, time: string, rate: string, ratio: string, runs: string) =>
    console.log(`  ${system.padEnd(19)}${status.padEnd(16)}${time.padStart(9)}${rate.padStart(9)}${ratio.padStart(13)}   ${runs}`)
  row('system', 'status', 'time (s)', 'MB/s', 'MB/s ÷ raw', 'per run (s)')
  for (const system of systems) {
    const summary = summaries[system]
    row(SYSTEM_NAMES[system], summary.status, seconds(summary.ms), fixed(summary.mbPerSecond, 1), raw === undefined || summary.ms === undefined ? '—' : `${(raw / summary.ms).toFixed(2)}×`, summary.runs)
  }
  const shoal = summaries.shoal?.ms
  const targets: Record<string, unknown> = {}
  if (spec.scenario === 'a' && systems.includes('shoal')) {
    const ratio = shoal === undefined || raw === undefined ? undefined : raw / shoal
    targets['shoalOverRawThroughput'] = ratio
    console.log(`  target: Shoal single-source ≥ ${SINGLE_SOURCE_RATIO_MIN}× raw stream throughput: ${ratio === undefined ? `not measured (Shoal ${summaries.shoal.status})` : `${ratio.toFixed(2)}× — ${ratio >= SINGLE_SOURCE_RATIO_MIN ? 'met' : 'NOT met'}`}`)
  }
  if (spec.scenario === 'b' && systems.includes('shoal')) {
    for (const other of ['webtorrent', 'helia'] as const) {
      if (!systems.includes(other)) continue
      const theirs = summaries[other].ms
      const ratio = shoal === undefined || theirs === undefined ? undefined : shoal / theirs
      targets[`shoalOver${other === 'helia' ? 'Helia' : 'WebTorrent'}Time`] = ratio
      console.log(`  target: Shoal's time ≤ 1/3 of ${SYSTEM_NAMES[other]}'s: ${ratio === undefined ? `not measured (Shoal ${summaries.shoal.status}, ${SYSTEM_NAMES[other]} ${summaries[other].status})` : `${ratio.toFixed(2)} — ${ratio <= SWARM_TIME_RATIO_MAX ? 'met' : 'NOT met'}`}`)
    }
  }
  for (const system of systems) {
    const messages = new Set((bySystem[system] ?? []).flatMap((transfer) => (transfer.message === undefined ? [] : [transfer.message])))
    for (const message of messages) console.log(`  ${SYSTEM_NAMES[system]}: ${message.split('\n').join('\n    ')}`)
  }
  return { sizeBytes: spec.sizeBytes, leechers: spec.leecherCount, sha256: spec.sha256, systems: summaries, ...targets }
}

function summarize(transfers: readonly Transfer[], totalBytes: number) {
  const okMs = transfers.filter((transfer) => transfer.status === 'ok').map((transfer) => transfer.ms!)
  const counts = new Map<Status, number>()
  for (const transfer of transfers) counts.set(transfer.status, (counts.get(transfer.status) ?? 0) + 1)
  const status = counts.size === 0 ? 'not run'
    : counts.size === 1 && counts.has('ok') ? 'ok'
    : [...counts].filter(([name]) => name !== 'ok').map(([name, count]) => `${name === 'not-built' ? 'not built' : name.toUpperCase()} ${count}/${transfers.length}`).join(', ')
  const ms = okMs.length === 0 ? undefined : median(okMs)
  return {
    status,
    ms,
    mbPerSecond: ms === undefined ? undefined : totalBytes / 1e6 / (ms / 1000),
    runs: transfers.map((transfer) => (transfer.status === 'ok' ? (transfer.ms! / 1000).toFixed(2) : transfer.status)).join('/'),
    loadAverages: transfers.map((transfer) => Number(transfer.loadAverage.toFixed(2))),
    busyBefore: transfers.map((transfer) => Number(transfer.busyBefore.toFixed(3))),
  }
}

function describe(transfer: Transfer, spec: ScenarioSpec): string {
  const load = `load ${transfer.loadAverage.toFixed(2)}, CPU ${percent(transfer.busyBefore)} busy before`
  if (transfer.status !== 'ok') return `${transfer.status}${transfer.status === 'failed' ? '' : `: ${transfer.message?.split('\n')[0]}`} (${load})`
  const mbPerSecond = (spec.sizeBytes * spec.leecherCount) / 1e6 / (transfer.ms! / 1000)
  return `${seconds(transfer.ms)} s, ${mbPerSecond.toFixed(1)} MB/s (${load})`
}

// --- helpers -------------------------------------------------------------------------------

/** Pseudo-random content from `seed` (AES-256-CTR keystream), written and synced; returns its SHA-256. */
async function writeContent(path: string, sizeBytes: number, seed: string): Promise<string> {
  const key = createHash('sha256').update(`bench-swarm:${seed}`).digest()
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16))
  const zeros = Buffer.alloc(GENERATOR_CHUNK_BYTES)
  const hash = createHash('sha256')
  const handle = await open(path, 'wx')
  try {
    for (let written = 0; written < sizeBytes;) {
      const chunk = cipher.update(zeros.subarray(0, Math.min(GENERATOR_CHUNK_BYTES, sizeBytes - written)))
      hash.update(chunk)
      await handle.write(chunk)
      written += chunk.byteLength
    }
    // Otherwise writeback of the fresh file would compete with the first transfers for the disk.
    await handle.sync()
  } finally {
    await handle.close()
  }
  return hash.digest('hex')
}

/** The share of all cores' time that was not idle over the next `ms`. */
async function machineBusyDuring(ms: number): Promise<number> {
  const before = cpuTimes()
  await sleep(ms)
  const after = cpuTimes()
  const total = after.total - before.total
  return total <= 0 ? 0 : 1 - (after.idle - before.idle) / total
}

function cpuTimes(): { idle: number; total: number } {
  let idle = 0
  let total = 0
  for (const { times } of cpus()) {
    idle += times.idle
    total += times.user + times.nice + times.sys + times.irq + times.idle
  }
  return { idle, total }
}

function percent(ratio: number): string {
  return Number.isNaN(ratio) ? '—' : `${(100 * ratio).toFixed(0)}%`
}

function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(PROJECT_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return 'absent'
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = (sorted.length - 1) / 2
  return (sorted[Math.floor(middle)]! + sorted[Math.ceil(middle)]!) / 2
}

function seconds(ms: number | undefined): string {
  return ms === undefined ? '—' : (ms / 1000).toFixed(2)
}

function fixed(value: number | undefined, digits: number): string {
  return value === undefined ? '—' : value.toFixed(digits)
}

function positiveInteger(name: string, text: string | undefined): number {
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer`)
  return value
}
