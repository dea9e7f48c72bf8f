/**
 * Floods against a running daemon on loopback (issue 8): a target daemon holds a file; a
 * well-behaved daemon, connected to it, fetches the file again and again (unpinning and
 * collecting it between fetches) while a probe pings the target and, once the flood is under
 * way, peers new to the target dial it one after another; and in each phase after a
 * quiet baseline, flooder processes (flooders.ts) attack it in one way for `seconds`. Per
 * phase: what the flooders did and saw, what the target counted as refused, dropped or hung
 * up on in its metrics, the well-behaved peer's fetches and ping round trips, the newcomers' dials,
 * and the target's resident memory, sampled every 200 ms.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import type { HttpClient } from '../api/http-client.ts'
import { readConfig } from '../node/config.ts'
import { gossipCodec } from '../wire/gossip.ts'
import { kadCodec } from '../wire/kad.ts'
import { membershipCodec } from '../wire/membership.ts'
import { swarmCodec } from '../wire/swarm.ts'
import { runChildProcess } from './child-process.ts'
import { daemonApi, runShoal, startDaemon, type Daemon } from './cli.ts'
import type { FloodOutcome, FloodPlan } from './flooders.ts'
import { residentBytes } from './proc-stats.ts'
import { pseudoRandomBytes, type HasAfter } from './temp.ts'

export const FLOODS = ['connections', 'streams', 'frames', 'http'] as const
export type FloodName = typeof FLOODS[number]

export interface FloodRunOptions {
  /** How long each flood (and the baseline) lasts. */
  seconds: number
  floods: readonly FloodName[]
  connectionsPerSecond: number
  /** Source addresses the connection flood spreads over (127.0.1.x). */
  connectionSources: number
  /** Streams the stream flood opens at most, over all its identities. */
  streamsMax: number
  httpConcurrency: number
  /** The file the well-behaved peer fetches. */
  fileMib: number
}

export interface FloodPhase {
  name: 'baseline' | FloodName
  flooders: FloodOutcome[]
  /** Series of the metrics of refusals (REFUSAL_METRICS) that moved during the phase, `name{labels}` → increase. */
  counted: Record<string, number>
  /** The well-behaved peer's fetches of the whole file, each from an empty repository. */
  fetchesMs: number[]
  fetchFailures: string[]
  ping: FloodOutcome
  /** Peers of fresh identities, each dialling and pinging the target once, from the flood's first seconds to its end. */
  newcomers: FloodOutcome
  rssPeakMb: number
  /** The target still runs, and answers its API, when the phase is over. */
  targetAlive: boolean
}

export interface FloodReport {
  options: FloodRunOptions
  fileBytes: number
  rssStartMb: number
  phases: FloodPhase[]
  /** `shoal repo verify` on the target at the end: its blocks, and those that failed. */
  targetVerify: { blockCount: number; corrupt: number }
}

const FLOODER = fileURLToPath(new URL('./flooder-process.js', import.meta.url))
const FLOODER_NODE_FLAGS = ['--enable-source-maps']
const RSS_SAMPLE_MS = 200
const PING_INTERVAL_MS = 250
/** The probe runs (and connects) this long before the flooders start. */
const PROBE_LEAD_SECONDS = 2
const PROBE_SOURCE = '127.0.0.3'
const NEWCOMER_SOURCE = '127.0.0.4'
const NEWCOMER_INTERVAL_MS = 500
const STREAM_FLOOD_SOURCE = '127.0.2.1'
const FRAME_FLOOD_SOURCE = '127.0.3.1'
const MiB = 1024 * 1024

export async function runFloods(t: HasAfter, directory: string, options: FloodRunOptions): Promise<FloodReport> {
  await mkdir(directory, { recursive: true })
  const source = join(directory, 'file.bin')
  const fileBytes = options.fileMib * MiB
  await writeFile(source, pseudoRandomBytes(fileBytes, 8))
  // A DHT server, so that the floods reach the DHT's driver too (on loopback AutoNAT would make it a client).
  const target = await startDaemon(t, join(directory, 'target'), { config: { 'dht.mode': 'server' } })
  const added = await runShoal(['--repo', target.repo, 'add', '--quiet', source])
  if (added.code !== 0) throw new Error(`add on the target failed: ${added.stderr}`)
  const cid = added.stdout.trim()
  const targetApi = daemonApi(target)
  const wellBehaved = await startDaemon(t, join(directory, 'well-behaved'), { bootstrap: [target.address] })
  const wellBehavedApi = daemonApi(wellBehaved)
  const kadProtocol = (await readConfig(target.repo)).dht.protocol
  const report: FloodReport = { options, fileBytes, rssStartMb: rssMb(target), phases: [], targetVerify: { blockCount: 0, corrupt: 0 } }

  const [host, port] = tcpEndpoint(target.address)
  const plans: Record<FloodName, FloodPlan[]> = {
    connections: [{
      kind: 'connections', host, port, perSecond: options.connectionsPerSecond, seconds: options.seconds, heldMax: 2_000,
      sourceAddresses: Array.from({ length: options.connectionSources }, (_, index) => `127.0.1.${index + 1}`),
    }],
    streams: [{
      kind: 'streams', target: target.address, seconds: options.seconds, sourceAddress: STREAM_FLOOD_SOURCE, streamsMax: options.streamsMax,
      protocols: [membershipCodec.protocol, gossipCodec.protocol, swarmCodec.protocol, kadProtocol],
    }],
    frames: [{
      kind: 'frames', target: target.address, seconds: options.seconds, sourceAddress: FRAME_FLOOD_SOURCE,
      protocols: [membershipCodec, gossipCodec, swarmCodec, kadCodec(kadProtocol)].map((codec) => ({ protocol: codec.protocol, frameBytesMax: codec.frameBytesMax })),
    }],
    http: [{
      kind: 'http', api: targetApi.url, seconds: options.seconds, concurrency: options.httpConcurrency,
      paths: ['/api/v0/id', '/api/v0/stats', '/api/v0/repo/stat', `/api/v0/stat?arg=${cid}`, `/api/v0/cat?arg=${cid}&length=65536`, '/api/v0/dht/table', '/metrics', '/api/v0/cat?arg=not-a-cid', '/api/v0/no-such-route'],
    }],
  }

  for (const name of ['baseline', ...options.floods] as const) {
    report.phases.push(await runPhase(name, name === 'baseline' ? [] : plans[name], { target, targetApi, wellBehavedApi, cid, seconds: options.seconds }))
    if (!report.phases.at(-1)!.targetAlive) break
  }
  const verified = await targetApi.repoVerify()
  report.targetVerify = { blockCount: verified.blockCount, corrupt: verified.corrupt.length }
  return report
}

interface PhaseContext {
  target: Daemon
  targetApi: HttpClient
  wellBehavedApi: HttpClient
  cid: string
  seconds: number
}

function runFlooder(plan: FloodPlan, label: string, timeoutMs: number): Promise<FloodOutcome> {
  return runChildProcess<FloodOutcome>([...FLOODER_NODE_FLAGS, FLOODER, JSON.stringify(plan)], label, timeoutMs)
}

/**
 * The flooders' outcomes are awaited together after the phase's fetches; until then a
 * failure is held, not an unhandled rejection (which ended a run without its cleanup and
 * left its daemons running).
 */
function held<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {})
  return promise
}

async function runPhase(name: FloodPhase['name'], plans: readonly FloodPlan[], context: PhaseContext): Promise<FloodPhase> {
  const { target, targetApi, wellBehavedApi, cid, seconds } = context
  const before = await countersOf(targetApi)
  let rssPeakMb = rssMb(target)
  const sampler = setInterval(() => { rssPeakMb = Math.max(rssPeakMb, rssMb(target)) }, RSS_SAMPLE_MS)
  const timeoutMs = (seconds + 60) * 1_000
  // The probe connects before the flood, as the well-behaved daemon did; the newcomers
  // dial while it runs.
  const probing = held(runFlooder({ kind: 'ping', target: target.address, seconds: seconds + PROBE_LEAD_SECONDS, intervalMs: PING_INTERVAL_MS, sourceAddress: PROBE_SOURCE }, 'ping probe', timeoutMs))
  await sleep(PROBE_LEAD_SECONDS * 1_000)
  const flooding = held(Promise.all(plans.map((plan) => runFlooder(plan, `${plan.kind} flooder`, timeoutMs))))
  const fetchesMs: number[] = []
  const fetchFailures: string[] = []
  // The first fetch starts once the flood is under way; the last one starts before it ends.
  const endMs = performance.now() + seconds * 1_000
  const leadMs = Math.min(2_000, seconds * 200)
  await sleep(leadMs)
  const newcoming = held(runFlooder({ kind: 'newcomers', target: target.address, seconds: seconds - leadMs / 1_000, intervalMs: NEWCOMER_INTERVAL_MS, sourceAddress: NEWCOMER_SOURCE }, 'newcomer probe', timeoutMs))
  do {
    const startedMs = performance.now()
    try {
      await wellBehavedApi.fetch(cid, { pin: false, signal: AbortSignal.timeout(timeoutMs) })
      fetchesMs.push(performance.now() - startedMs)
      await wellBehavedApi.gc()
      const held = await wellBehavedApi.repoStat()
      if (held.blockCount !== 0) fetchFailures.push(`the well-behaved peer still held ${held.blockCount} blocks after gc`)
    } catch (error) {
      fetchFailures.push((error as Error).message)
    }
  } while (performance.now() < endMs && fetchFailures.length === 0)
  const [flooders, ping, newcomers] = await Promise.all([flooding, probing, newcoming])
  clearInterval(sampler)
  const targetAlive = target.process.exitCode === null && target.process.signalCode === null && await targetApi.id().then(() => true, () => false)
  const after = targetAlive ? await countersOf(targetApi) : before
  const counted: Record<string, number> = {}
  for (const [series, value] of after) {
    const increase = value - (before.get(series) ?? 0)
    if (increase > 0) counted[series] = increase
  }
  return { name, flooders, counted, fetchesMs, fetchFailures, ping, newcomers, rssPeakMb, targetAlive }
}

/** Where the node counts what it refused, dropped or hung up on (net/metrics.ts). */
const REFUSAL_METRICS = ['shoal_connections_refused_total', 'shoal_wire_rejected_total', 'shoal_dropped_total', 'shoal_disconnects_total']

/** The target's series of REFUSAL_METRICS, `name{labels}` → value, from GET /metrics. */
async function countersOf(api: HttpClient): Promise<Map<string, number>> {
  const response = await fetch(`${api.url}/metrics`)
  const counters = new Map<string, number>()
  for (const line of (await response.text()).split('\n')) {
    const match = /^((\w+)(?:\{[^}]*\})?) (\S+)$/.exec(line)
    if (match !== null && REFUSAL_METRICS.includes(match[2]!)) counters.set(match[1]!, Number(match[3]))
  }
  return counters
}

function rssMb(daemon: Daemon): number {
  try {
    return residentBytes(daemon.process.pid!) / MiB
  } catch {
    return 0 // the process is gone; targetAlive says so
  }
}

function tcpEndpoint(address: string): [string, number] {
  const match = /^\/ip4\/([\d.]+)\/tcp\/(\d+)/.exec(address)
  if (match === null) throw new Error(`not a TCP address: ${address}`)
  return [match[1]!, Number(match[2])]
}

/** The target's resident memory must stay under this through every flood (the issue asks for a stated bound). */
export const RSS_BOUND_MB = 512

export interface FloodVerdict {
  problems: string[]
  /** The problems of each phase (also in `problems`), by phase name. */
  phaseProblems: Record<string, string[]>
  rssPeakMb: number
  rssBoundMb: number
}

/** Of the well-behaved peer's pings, those that must be answered (within 5 s) in every phase. */
const PINGS_ANSWERED_MIN = 0.9
/**
 * Of the newcomers' dials, those that must be answered (within 5 s) in every phase: most
 * get in. Measured under 1,000 handshakes a second from 50 addresses: 56 of 56, and 21-31
 * of 36 with the cores busier (before handshake slots were shared out, 2 of 36).
 */
const NEWCOMERS_ANSWERED_MIN = 0.5

/** What a run must show: the target alive, every well-behaved fetch done, its pings and most newcomers' answered, no corrupt block, RSS under the bound. */
export function floodVerdict(report: FloodReport): FloodVerdict {
  const phaseProblems: Record<string, string[]> = {}
  for (const phase of report.phases) {
    const problems: string[] = phaseProblems[phase.name] = []
    if (!phase.targetAlive) problems.push('the target died')
    if (phase.fetchFailures.length > 0) problems.push(`a fetch failed (${phase.fetchFailures.join('; ')})`)
    if (phase.fetchesMs.length === 0) problems.push('no fetch completed')
    for (const [what, probe, answeredMin] of [['pings', phase.ping, PINGS_ANSWERED_MIN], ['newcomers\' dials', phase.newcomers, NEWCOMERS_ANSWERED_MIN]] as const) {
      const answered = probe.outcomes['answered'] ?? 0
      if (answered < answeredMin * probe.attempts) problems.push(`${answered} of ${probe.attempts} ${what} answered (${JSON.stringify(probe.outcomes)})`)
    }
  }
  const problems = Object.entries(phaseProblems).flatMap(([name, found]) => found.map((problem) => `${name}: ${problem}`))
  const rssPeakMb = Math.max(...report.phases.map((phase) => phase.rssPeakMb))
  if (report.targetVerify.corrupt > 0) problems.push(`${report.targetVerify.corrupt} corrupt blocks on the target`)
  if (rssPeakMb > RSS_BOUND_MB) problems.push(`RSS peaked at ${rssPeakMb.toFixed(0)} MB, over ${RSS_BOUND_MB} MB`)
  return { problems, phaseProblems, rssPeakMb, rssBoundMb: RSS_BOUND_MB }
}
