/**
 * Benchmark of GossipSub delivery, Shoal (node/pubsub.ts) against @libp2p/gossipsub, in the
 * same run and with the same network. The issue's target: on real loopback with 30 nodes,
 * Shoal's delivery latency and CPU per message no worse than @libp2p/gossipsub's.
 *
 *   npm run bench:gossip -- --nodes 30 --runs 3 --messages 300 --bytes 1024 --rate 10
 *
 * Setup. Each system runs its N nodes in ONE child process of this script (`--child shoal|
 * reference`), a fresh process per system and run, so that CPU is measured for each alone;
 * the order of the two alternates from run to run. Both use the same libp2p stack and host
 * settings as the daemon (TCP and WebSockets, Noise, Yamux, identify, identify-push, ping;
 * connection limits raised as a single-IP testbed needs) and the same Node flags as the
 * `shoal` executable. Node i dials DIALS_PER_NODE random earlier nodes (the same choices
 * for both systems: one seed per run); every node subscribes to one topic before dialling.
 *   - Shoal: createHost (net/host.ts) and PubSub (node/pubsub.ts) with the config defaults
 *     (pubsub section of defaultConfig(): StrictSign with each node's Ed25519 key, D 6, Dlo
 *     4, Dhi 12, Dlazy 6, heartbeat 1 s, flood publish, IDONTWANT for data over 1 KiB,
 *     scoring on with core/gossip's defaults: topic score parameters for every topic, and
 *     private addresses, loopback included, exempt from the IP colocation penalty).
 *     Counters in memory instead of a Prometheus registry per node. Shoal always hands a
 *     node its own messages (there is no emitSelf switch): the listener skips them.
 *   - Reference: stock @libp2p/gossipsub with its defaults (StrictSign, flood publish,
 *     emitSelf off, D/Dlo/Dhi/Dlazy 6/4/12/6, heartbeat 1 s, IDONTWANT for data of 512 bytes
 *     or more, floodsub fallback, default peer scoring: no topic score parameters), except:
 *     D, Dlo, Dhi set from Shoal's config (the same values); allowPublishToZeroTopicPeers,
 *     so that a publish is counted, not thrown; 127.0.0.1 on the IP colocation whitelist,
 *     as Shoal exempts loopback: with every peer on one address, the stock penalty (-5 per
 *     squared peer over 10) would push well-connected nodes below the gossip, publish and
 *     graylist thresholds, which is a testbed artefact; and a metrics register that only
 *     counts RPC bytes (every other gossipsub metric is a no-op call).
 * Then the meshes settle: at least SETTLE_MS_MIN (a few heartbeats), until every node's mesh
 * holds at least min(Dlo, its subscribed peers), or SETTLE_MS_MAX (reported, with the nodes
 * short). A node can stay short for the 60 s PRUNE backoff, by the spec: a peer whose mesh is
 * at Dhi refuses GRAFTs from peers that dialled it, and a late node's peers all are such.
 * Mesh sizes and connections are reported.
 *
 * Measurement, per run: the idle CPU of the settled network over IDLE_MS, after a pause
 * (heartbeats, and libp2p's connection monitor pinging every connection every 10 s: the same
 * stack's cost in both, and most of the idle CPU); then M messages of --bytes each, each from
 * a random node (seeded), paced at --rate a second (a publish is started on its schedule, not
 * awaited, so a slow system falls behind the schedule rather than slowing it; the time taken
 * to publish is reported). The payload carries the message index, the publisher and
 * performance.now() at the publish call: every node is in the one process, so each receiving
 * node records its delivery latency on the same clock. Delivery ratio and latency p50/p99 are
 * over every (message, receiving node) pair; CPU per message is process.cpuUsage() (user +
 * system) over the publish phase, from the first publish until every copy was delivered or
 * DRAIN_MS_MAX after the last publish, divided by M; RPC bytes are the gossip RPCs sent by
 * all nodes over that phase (Shoal: frame bytes from the protocol driver, the reference:
 * encoded RPC bytes from its metrics; a length prefix apart, the same thing). The figures per
 * system are the medians of the runs' figures.
 *
 * The default rate is lower than 20-50 a second on purpose: at 30 nodes the reference spends
 * about 90-120 ms of CPU per message (every node decrypts, decodes and checks every copy) on
 * its one thread, so at 25 a second it would need 2-3 s of CPU a second: it falls behind, and
 * in a trial lost a quarter of the deliveries, with latencies of seconds, which measures
 * collapse, not delivery. At 10 a second neither system is saturated on this machine.
 *
 * Loopback latency is about zero, and all of a system's nodes share one event loop, so a
 * delivery's latency is the CPU work queued ahead of it on that thread (decryption,
 * decoding, signature checks, forwarding of every copy by every node), not network distance:
 * latency and CPU per message measure the same cost from two sides. Other work on the
 * machine skews both: the 1-minute load average is reported.
 *
 * --profile also records a CPU profile of each child's publish phase (node:inspector, the
 * same sampling profiler as --cpu-prof, limited to the phase) and prints the top functions
 * by self time with their source file:line (mapped through source maps). A profiled run
 * carries the profiler's overhead: use it to see where time goes, not for the comparison.
 *
 * Options: --nodes (30), --runs (3), --messages (300), --bytes (1024), --rate (10 a second),
 * --seed (1; run r uses `<seed>-<r>`), --only shoal|reference, --profile.
 *
 * The last line is `RESULT {json}`.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { findSourceMap } from 'node:module'
import { Session } from 'node:inspector/promises'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { reportToParent, runChildProcess } from '../src/testing/child-process.ts'
import { parseArgs } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import type { MetricsRegister } from '@libp2p/gossipsub/metrics'
import { identify, identifyPush } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { Prng } from '../src/core/prng.ts'
import { HOST_LIMITS, loopbackAddress, REFERENCE_CONNECTION_MANAGER, startBenchHost } from './loopback-host.ts'
import { CountingProtocolMetrics } from '../src/net/protocol-metrics.ts'
import { defaultConfig } from '../src/node/config.ts'
import { PubSub } from '../src/node/pubsub.ts'

type System = 'shoal' | 'reference'

const SYSTEMS: readonly System[] = ['shoal', 'reference']
const SYSTEM_NAMES: Record<System, string> = { shoal: 'Shoal', reference: '@libp2p/gossipsub' }
const SHOAL_BIN = fileURLToPath(new URL('../src/cli/shoal.js', import.meta.url))
/** The Node flags of the executable's `#!/usr/bin/env -S node ...` line, for both systems alike. */
const NODE_FLAGS = readFileSync(SHOAL_BIN, 'utf8').split('\n')[0]!.split(/\s+/).slice(3)
const TOPIC = 'bench-gossip'
const DIALS_PER_NODE = 4
const DIAL_MS_MAX = 10_000
/** Meshes get at least this long (heartbeats of 1 s)... */
const SETTLE_MS_MIN = 3_000
const SETTLE_POLL_MS = 250
/** ...and at most this long (reported). */
const SETTLE_MS_MAX = 15_000
/** The idle window starts this long after the meshes settled: setup's last work (identify, GC) is over by then. */
const IDLE_PAUSE_MS = 2_000
/** One whole period of libp2p's connection monitor (a ping on every connection each 10 s, a burst of CPU in both systems). */
const IDLE_MS = 10_000
/** After the last publish, copies still missing are given this long. */
const DRAIN_MS_MAX = 15_000
const DRAIN_POLL_MS = 20
const STOP_MS_MAX = 10_000
const CHILD_MS_MAX = 10 * 60_000
/** Message index (u32), publisher index (u32), performance.now() at publish (f64). */
const HEADER_BYTES = 16
const PROFILE_TOP_COUNT = 25

const { values: options } = parseArgs({
  options: {
    nodes: { type: 'string', default: '30' },
    runs: { type: 'string', default: '3' },
    messages: { type: 'string', default: '300' },
    bytes: { type: 'string', default: '1024' },
    rate: { type: 'string', default: '10' },
    seed: { type: 'string', default: '1' },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
    child: { type: 'string' },
  },
})
const nodeCount = positiveInteger('nodes', options.nodes)
const runCount = positiveInteger('runs', options.runs)
const messageCount = positiveInteger('messages', options.messages)
const messageBytes = positiveInteger('bytes', options.bytes)
const publishRate = positiveInteger('rate', options.rate)
if (nodeCount < 2) throw new Error('--nodes must be at least 2')
if (messageBytes < HEADER_BYTES) throw new Error(`--bytes must be at least ${HEADER_BYTES} (the timestamp header)`)
if (messageBytes > defaultConfig().pubsub.messageBytesMax) throw new Error(`--bytes must be at most ${defaultConfig().pubsub.messageBytesMax} (pubsub.messageBytesMax)`)
if (options.only !== undefined && !SYSTEMS.includes(options.only as System)) throw new Error(`--only must be one of ${SYSTEMS.join(', ')}`)
const systemsRun: readonly System[] = options.only === undefined ? SYSTEMS : [options.only as System]

/** One pub/sub node of either system, as the benchmark drives it. */
interface BenchNode {
  peerId: string
  /** A loopback TCP address, without /p2p. */
  address: string
  dial(to: BenchNode): Promise<boolean>
  /** Calls `onData` for every message of the topic, the node's own included where the system hands them back. */
  subscribe(onData: (data: Uint8Array) => void): void
  /** Resolves with the number of peers it was sent to. */
  publish(data: Uint8Array): Promise<number>
  meshSize(): number
  subscribedPeerCount(): number
  connectionCount(): number
  stop(): Promise<void>
}

/** A system's nodes, and what they share. */
interface BenchNetwork {
  nodes: BenchNode[]
  /** Gossip RPC bytes sent by all nodes so far. */
  bytesSent(): number
}

interface LatencySummary {
  count: number
  p50: number
  p90: number
  p99: number
  max: number
  mean: number
}

interface ProfileEntry {
  function: string
  location: string
  selfMs: number
  selfPercent: number
}

interface ChildResult {
  system: System
  nodes: number
  setupMs: number
  dialsFailed: number
  settled: boolean
  settleMs: number
  meshSizes: { mean: number; min: number; max: number }
  /** Nodes whose mesh held fewer than min(Dlo, subscribed peers) when the measurement began. */
  meshesShort: number
  subscribedPeers: { mean: number; min: number; max: number }
  connectionsMean: number
  idleCpuMsPerSecond: number
  publishMs: number
  /** From the first publish to the end of the measured phase. */
  phaseMs: number
  publishesFailed: number
  /** Publishes that reached no peer. */
  publishesUnsent: number
  recipientsMean: number
  deliveries: number
  deliveriesExpected: number
  messagesFullyDelivered: number
  latencyMs: LatencySummary
  cpuMsPerMessage: number
  cpuUserMsPerMessage: number
  rpcBytesPerMessage: number
  loadAverageMax: number
  profile?: { file: string; sampledMs: number; functions: ProfileEntry[]; files: ProfileEntry[] }
}

if (options.child !== undefined) {
  const system = options.child as System
  if (!SYSTEMS.includes(system)) throw new Error(`--child must be one of ${SYSTEMS.join(', ')}`)
  const result = await runChild(system, options.seed)
  reportToParent(result)
} else {
  await runParent()
}

// --- the parent: runs the children and reports --------------------------------------------

async function runParent(): Promise<void> {
  const command = ['npm run bench:gossip --', '--nodes', nodeCount, '--runs', runCount, '--messages', messageCount, '--bytes', messageBytes,
    '--rate', publishRate, '--seed', options.seed, ...(options.only === undefined ? [] : ['--only', options.only]), ...(options.profile ? ['--profile'] : [])].join(' ')
  console.log(`GossipSub delivery: Shoal vs @libp2p/gossipsub, ${nodeCount} nodes per system on loopback (each dials ${DIALS_PER_NODE} earlier ones), ${messageCount} messages of ${messageBytes} bytes at ${publishRate}/s, ${runCount} runs`)
  const results: Record<System, ChildResult[]> = { shoal: [], reference: [] }
  for (let run = 0; run < runCount; run++) {
    const order = run % 2 === 0 ? systemsRun : [...systemsRun].reverse()
    for (const system of order) {
      const seed = `${options.seed}-${run + 1}`
      const result = await spawnChild(system, seed)
      results[system].push(result)
      console.log(`run ${run + 1} (seed ${seed}) ${system.padEnd(9)}: delivered ${percent(result.deliveries / result.deliveriesExpected)}, p50 ${result.latencyMs.p50.toFixed(2)} ms, p99 ${result.latencyMs.p99.toFixed(2)} ms, CPU ${result.cpuMsPerMessage.toFixed(2)} ms/message, ${kib(result.rpcBytesPerMessage)} KiB RPC/message, mesh ${result.meshSizes.mean.toFixed(1)} (${result.meshSizes.min}–${result.meshSizes.max}, settled ${result.settled ? 'yes' : 'NO'} in ${(result.settleMs / 1000).toFixed(1)} s), published in ${(result.publishMs / 1000).toFixed(1)} s, load ≤ ${result.loadAverageMax.toFixed(1)}`)
      if (result.profile !== undefined) printProfile(system, result.profile)
    }
  }

  const report = Object.fromEntries(systemsRun.map((system) => [system, systemReport(results[system])])) as Partial<Record<System, ReturnType<typeof systemReport>>>
  const { shoal, reference } = report
  let comparison: { p50Ratio: number; p99Ratio: number; cpuRatio: number; latencyMet: boolean; cpuMet: boolean; deliveryMet: boolean; targetMet: boolean } | undefined
  if (shoal !== undefined && reference !== undefined) {
    console.log('')
    const row = (label: string, shoalText: string, referenceText: string, ratio = '') => console.log(`${label.padEnd(26)}${shoalText.padStart(20)}${referenceText.padStart(22)}${ratio.padStart(18)}`)
    row('', 'Shoal', '@libp2p/gossipsub', 'Shoal/reference')
    row('delivered', percent(shoal.deliveryRatio), percent(reference.deliveryRatio))
    row('latency p50 (ms)', shoal.latencyP50Ms.toFixed(2), reference.latencyP50Ms.toFixed(2), ratioText(shoal.latencyP50Ms, reference.latencyP50Ms))
    row('latency p99 (ms)', shoal.latencyP99Ms.toFixed(2), reference.latencyP99Ms.toFixed(2), ratioText(shoal.latencyP99Ms, reference.latencyP99Ms))
    row('CPU per message (ms)', shoal.cpuMsPerMessage.toFixed(2), reference.cpuMsPerMessage.toFixed(2), ratioText(shoal.cpuMsPerMessage, reference.cpuMsPerMessage))
    row('RPC KiB per message', kib(shoal.rpcBytesPerMessage), kib(reference.rpcBytesPerMessage), ratioText(shoal.rpcBytesPerMessage, reference.rpcBytesPerMessage))
    row('idle CPU (ms/s)', shoal.idleCpuMsPerSecond.toFixed(1), reference.idleCpuMsPerSecond.toFixed(1), ratioText(shoal.idleCpuMsPerSecond, reference.idleCpuMsPerSecond))
    row('per-run p50 (ms)', shoal.runs.p50.map((ms) => ms.toFixed(2)).join('/'), reference.runs.p50.map((ms) => ms.toFixed(2)).join('/'))
    row('per-run p99 (ms)', shoal.runs.p99.map((ms) => ms.toFixed(1)).join('/'), reference.runs.p99.map((ms) => ms.toFixed(1)).join('/'))
    row('per-run CPU (ms/msg)', shoal.runs.cpuMsPerMessage.map((ms) => ms.toFixed(2)).join('/'), reference.runs.cpuMsPerMessage.map((ms) => ms.toFixed(2)).join('/'))
    row('mesh size (mean)', shoal.meshSizeMean.toFixed(1), reference.meshSizeMean.toFixed(1))
    row('subscribed peers (mean)', shoal.subscribedPeersMean.toFixed(1), reference.subscribedPeersMean.toFixed(1))
    row('publish recipients (mean)', shoal.recipientsMean.toFixed(1), reference.recipientsMean.toFixed(1))
    row('runs with meshes settled', `${shoal.settledRuns}/${shoal.runs.p50.length}`, `${reference.settledRuns}/${reference.runs.p50.length}`)
    row('meshes short (per run)', shoal.runs.meshesShort.join('/'), reference.runs.meshesShort.join('/'))
    row('publish phase (s)', (shoal.phaseMs / 1000).toFixed(1), (reference.phaseMs / 1000).toFixed(1))
    console.log('')
    const p50Ratio = shoal.latencyP50Ms / reference.latencyP50Ms
    const p99Ratio = shoal.latencyP99Ms / reference.latencyP99Ms
    const cpuRatio = shoal.cpuMsPerMessage / reference.cpuMsPerMessage
    const latencyMet = p50Ratio <= 1 && p99Ratio <= 1
    const cpuMet = cpuRatio <= 1
    const deliveryMet = shoal.deliveryRatio >= reference.deliveryRatio
    comparison = { p50Ratio, p99Ratio, cpuRatio, latencyMet, cpuMet, deliveryMet, targetMet: latencyMet && cpuMet && deliveryMet }
    console.log(`target (Shoal no worse than @libp2p/gossipsub): latency ${latencyMet ? 'met' : 'NOT met'}, CPU per message ${cpuMet ? 'met' : 'NOT met'}, delivery ${deliveryMet ? 'met' : 'NOT met'}`)
  } else {
    for (const system of systemsRun) console.log(`${SYSTEM_NAMES[system]}: ${JSON.stringify(report[system])}`)
  }
  console.log('loopback, one process per system: latency is the work queued on the one thread ahead of a delivery, not distance')
  if (options.profile) console.log('profiled runs: the figures carry the profiler\'s overhead')
  const loadAverageMax = Math.max(...systemsRun.map((system) => report[system]!.loadAverageMax))
  if (loadAverageMax > availableParallelism()) console.log(`WARNING: the load average reached ${loadAverageMax.toFixed(1)} on ${availableParallelism()} cores: other work ran meanwhile and skews the figures`)
  console.log(`command: ${command}`)
  const result = { command, nodes: nodeCount, runs: runCount, messages: messageCount, bytes: messageBytes, rate: publishRate, seed: options.seed, ...comparison, ...report }
  console.log(`RESULT ${JSON.stringify(result)}`)
}

function spawnChild(system: System, seed: string): Promise<ChildResult> {
  const args = [...NODE_FLAGS, '--enable-source-maps', fileURLToPath(import.meta.url), '--child', system,
    '--nodes', String(nodeCount), '--messages', String(messageCount), '--bytes', String(messageBytes), '--rate', String(publishRate), '--seed', seed,
    ...(options.profile ? ['--profile'] : [])]
  return runChildProcess<ChildResult>(args, system, CHILD_MS_MAX)
}

function systemReport(runs: readonly ChildResult[]) {
  const medianOf = (pick: (run: ChildResult) => number) => median(runs.map(pick))
  return {
    deliveryRatio: medianOf((run) => run.deliveries / run.deliveriesExpected),
    latencyP50Ms: medianOf((run) => run.latencyMs.p50),
    latencyP99Ms: medianOf((run) => run.latencyMs.p99),
    cpuMsPerMessage: medianOf((run) => run.cpuMsPerMessage),
    cpuUserMsPerMessage: medianOf((run) => run.cpuUserMsPerMessage),
    rpcBytesPerMessage: medianOf((run) => run.rpcBytesPerMessage),
    idleCpuMsPerSecond: medianOf((run) => run.idleCpuMsPerSecond),
    meshSizeMean: medianOf((run) => run.meshSizes.mean),
    subscribedPeersMean: medianOf((run) => run.subscribedPeers.mean),
    connectionsMean: medianOf((run) => run.connectionsMean),
    recipientsMean: medianOf((run) => run.recipientsMean),
    phaseMs: medianOf((run) => run.phaseMs),
    settled: runs.every((run) => run.settled),
    settledRuns: runs.filter((run) => run.settled).length,
    loadAverageMax: Math.max(...runs.map((run) => run.loadAverageMax)),
    runs: {
      deliveries: runs.map((run) => run.deliveries),
      deliveriesExpected: runs.map((run) => run.deliveriesExpected),
      p50: runs.map((run) => run.latencyMs.p50),
      p99: runs.map((run) => run.latencyMs.p99),
      maxMs: runs.map((run) => run.latencyMs.max),
      cpuMsPerMessage: runs.map((run) => run.cpuMsPerMessage),
      settleMs: runs.map((run) => run.settleMs),
      meshSizes: runs.map((run) => run.meshSizes),
      meshesShort: runs.map((run) => run.meshesShort),
      dialsFailed: runs.map((run) => run.dialsFailed),
      publishesFailed: runs.map((run) => run.publishesFailed),
      publishesUnsent: runs.map((run) => run.publishesUnsent),
      messagesFullyDelivered: runs.map((run) => run.messagesFullyDelivered),
      profileFiles: runs.flatMap((run) => (run.profile === undefined ? [] : [run.profile.file])),
    },
  }
}

function printProfile(system: System, profile: NonNullable<ChildResult['profile']>): void {
  console.log(`  ${system} publish phase, ${(profile.sampledMs / 1000).toFixed(1)} s sampled (${profile.file}); top self time:`)
  for (const entry of profile.functions) console.log(`    ${entry.selfMs.toFixed(0).padStart(7)} ms ${entry.selfPercent.toFixed(1).padStart(5)}%  ${entry.function}  ${entry.location}`)
  console.log('  by file:')
  for (const entry of profile.files) console.log(`    ${entry.selfMs.toFixed(0).padStart(7)} ms ${entry.selfPercent.toFixed(1).padStart(5)}%  ${entry.location}`)
}

// --- a child: one system's network ------------------------------------------------------

async function runChild(system: System, seed: string): Promise<ChildResult> {
  const prng = Prng.fromSeed(`bench-gossip-${seed}`)
  let loadAverageMax = loadavg()[0]!
  const startedAt = performance.now()
  const network = system === 'shoal' ? await shoalNetwork() : await referenceNetwork()
  const { nodes } = network

  // Deliveries: one flag per (message, node), a latency per first delivery.
  const delivered = new Uint8Array(messageCount * nodeCount)
  const latenciesMs = new Float64Array(messageCount * nodeCount)
  let deliveries = 0
  for (const [receiver, node] of nodes.entries()) {
    node.subscribe((data) => {
      const receivedMs = performance.now()
      if (data.byteLength < HEADER_BYTES) return
      const header = new DataView(data.buffer, data.byteOffset, HEADER_BYTES)
      const index = header.getUint32(0)
      const publisher = header.getUint32(4)
      if (publisher === receiver || index >= messageCount) return
      const slot = index * nodeCount + receiver
      if (delivered[slot] === 1) return
      delivered[slot] = 1
      latenciesMs[deliveries++] = receivedMs - header.getFloat64(8)
    })
  }

  const dialPrng = prng.fork('dials')
  const dials: Array<Promise<boolean>> = []
  for (let index = 1; index < nodeCount; index++) {
    for (const to of dialPrng.sample(nodes.slice(0, index), DIALS_PER_NODE)) dials.push(nodes[index]!.dial(to))
  }
  const dialsFailed = (await Promise.all(dials)).filter((ok) => !ok).length
  const setupMs = performance.now() - startedAt

  const settleStartedAt = performance.now()
  const settled = await settle(nodes)
  const settleMs = performance.now() - settleStartedAt
  const meshSizes = nodes.map((node) => node.meshSize())
  const subscribedPeers = nodes.map((node) => node.subscribedPeerCount())
  const connectionsMean = mean(nodes.map((node) => node.connectionCount()))
  const meshesShort = nodes.flatMap((node, index) => (isMeshShort(node) ? [`node ${index}: mesh ${node.meshSize()} of ${node.subscribedPeerCount()} subscribed peers`] : []))
  log(system, `${nodeCount} nodes up in ${(setupMs / 1000).toFixed(1)} s (${dialsFailed} dials failed), meshes ${settled ? 'settled' : 'NOT settled'} after ${(settleMs / 1000).toFixed(1)} s: mean ${mean(meshSizes).toFixed(1)}, min ${Math.min(...meshSizes)}, max ${Math.max(...meshSizes)}${meshesShort.length === 0 ? '' : `; under min(Dlo, subscribed peers): ${meshesShort.join(', ')}`}`)

  await sleep(IDLE_PAUSE_MS)
  const idleCpu = process.cpuUsage()
  const idleStartedAt = performance.now()
  await sleep(IDLE_MS)
  const idleCpuMsPerSecond = cpuMs(process.cpuUsage(idleCpu)) / ((performance.now() - idleStartedAt) / 1000)
  loadAverageMax = Math.max(loadAverageMax, loadavg()[0]!)

  const profiler = options.profile ? await startProfiler() : undefined
  const publishPrng = prng.fork('publishers')
  const publishers = Array.from({ length: messageCount }, () => publishPrng.int(nodeCount))
  const expected = publishers.length * (nodeCount - 1)
  const intervalMs = 1000 / publishRate
  const publishes: Array<Promise<number | undefined>> = []
  const bytesBefore = network.bytesSent()
  const cpuBefore = process.cpuUsage()
  const phaseStartedAt = performance.now()
  for (const [index, publisher] of publishers.entries()) {
    const dueMs = phaseStartedAt + index * intervalMs
    const waitMs = dueMs - performance.now()
    if (waitMs > 0) await sleep(waitMs)
    const data = new Uint8Array(messageBytes)
    const header = new DataView(data.buffer, 0, HEADER_BYTES)
    header.setUint32(0, index)
    header.setUint32(4, publisher)
    header.setFloat64(8, performance.now())
    publishes.push(nodes[publisher]!.publish(data).catch(() => undefined))
  }
  const publishMs = performance.now() - phaseStartedAt
  const drainDeadline = performance.now() + DRAIN_MS_MAX
  while (deliveries < expected && performance.now() < drainDeadline) await sleep(DRAIN_POLL_MS)
  const cpu = process.cpuUsage(cpuBefore)
  const phaseMs = performance.now() - phaseStartedAt
  const bytesSent = network.bytesSent() - bytesBefore
  const profile = profiler === undefined ? undefined : await stopProfiler(profiler, system, seed)
  loadAverageMax = Math.max(loadAverageMax, loadavg()[0]!)

  const outcomes = await Promise.all(publishes)
  const recipients = outcomes.filter((count): count is number => count !== undefined)
  let messagesFullyDelivered = 0
  for (const [index, publisher] of publishers.entries()) {
    let count = 0
    for (let node = 0; node < nodeCount; node++) count += delivered[index * nodeCount + node]!
    if (count === nodeCount - 1 && delivered[index * nodeCount + publisher] === 0) messagesFullyDelivered++
  }
  const latencyMs = summarizeLatencies(latenciesMs.subarray(0, deliveries))
  log(system, `${deliveries}/${expected} delivered in ${(phaseMs / 1000).toFixed(1)} s; p50 ${latencyMs.p50.toFixed(2)} ms, p99 ${latencyMs.p99.toFixed(2)} ms`)

  await Promise.race([Promise.all(nodes.map((node) => node.stop().catch(() => {}))), sleep(STOP_MS_MAX)])
  return {
    system, nodes: nodeCount, setupMs, dialsFailed, settled, settleMs,
    meshSizes: { mean: mean(meshSizes), min: Math.min(...meshSizes), max: Math.max(...meshSizes) },
    meshesShort: meshesShort.length,
    subscribedPeers: { mean: mean(subscribedPeers), min: Math.min(...subscribedPeers), max: Math.max(...subscribedPeers) },
    connectionsMean, idleCpuMsPerSecond, publishMs, phaseMs,
    publishesFailed: outcomes.length - recipients.length,
    publishesUnsent: recipients.filter((count) => count === 0).length,
    recipientsMean: mean(recipients),
    deliveries, deliveriesExpected: expected, messagesFullyDelivered, latencyMs,
    cpuMsPerMessage: cpuMs(cpu) / messageCount,
    cpuUserMsPerMessage: cpu.user / 1000 / messageCount,
    rpcBytesPerMessage: bytesSent / messageCount,
    loadAverageMax,
    ...(profile === undefined ? {} : { profile }),
  }
}

/** Waits SETTLE_MS_MIN, then until every mesh holds min(Dlo, subscribed peers), or SETTLE_MS_MAX; true if settled. */
async function settle(nodes: readonly BenchNode[]): Promise<boolean> {
  const startedAt = performance.now()
  await sleep(SETTLE_MS_MIN)
  for (;;) {
    if (!nodes.some(isMeshShort)) return true
    if (performance.now() - startedAt >= SETTLE_MS_MAX) return false
    await sleep(SETTLE_POLL_MS)
  }
}

function isMeshShort(node: BenchNode): boolean {
  return node.subscribedPeerCount() === 0 || node.meshSize() < Math.min(defaultConfig().pubsub.Dlo, node.subscribedPeerCount())
}

async function shoalNetwork(): Promise<BenchNetwork> {
  // One set of counters for all nodes: only the bytes sent are read.
  const metrics = Object.assign(new CountingProtocolMetrics(), { registerCoreCounters: () => {} })
  const settings = defaultConfig().pubsub
  const nodes: BenchNode[] = []
  for (let index = 0; index < nodeCount; index++) {
    const privateKey = await generateKeyPair('Ed25519')
    const host = await startBenchHost(privateKey)
    const pubsub = await PubSub.start(host, privateKey, settings, metrics)
    nodes.push({
      peerId: host.peerId.toString(),
      address: loopbackAddress(host.getMultiaddrs().map(String)),
      dial: (to) => dialled(host, to),
      subscribe: (onData) => { pubsub.subscribe(TOPIC, (message) => onData(message.data)) },
      publish: async (data) => (await pubsub.publish(TOPIC, data)).recipients,
      meshSize: () => pubsub.core.meshOf(TOPIC).length,
      subscribedPeerCount: () => pubsub.peers(TOPIC).length,
      connectionCount: () => host.getConnections().length,
      async stop() {
        await pubsub.stop()
        await host.stop()
      },
    })
  }
  return { nodes, bytesSent: () => metrics.count('bytesSent') }
}

async function referenceNetwork(): Promise<BenchNetwork> {
  const counter = rpcByteCounter()
  const settings = defaultConfig().pubsub
  const nodes: BenchNode[] = []
  for (let index = 0; index < nodeCount; index++) {
    const node = await createLibp2p({
      privateKey: await generateKeyPair('Ed25519'),
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp(), webSockets()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux({ maxInboundStreams: HOST_LIMITS.streamsPerConnectionMax })],
      connectionManager: REFERENCE_CONNECTION_MANAGER,
      services: {
        identify: identify(),
        identifyPush: identifyPush(),
        ping: ping(),
        pubsub: gossipsub({
          D: settings.D,
          Dlo: settings.Dlo,
          Dhi: settings.Dhi,
          allowPublishToZeroTopicPeers: true,
          scoreParams: { IPColocationFactorWhitelist: new Set(['127.0.0.1']) },
          metricsRegister: counter.register,
          metricsTopicStrToLabel: new Map([[TOPIC, TOPIC]]),
        }),
      },
    })
    // The service's class has getMeshPeers; its exported interface does not list it.
    const pubsub = node.services.pubsub as GossipSub & { getMeshPeers(topic: string): string[] }
    nodes.push({
      peerId: node.peerId.toString(),
      address: loopbackAddress(node.getMultiaddrs().map(String)),
      dial: (to) => dialled(node, to),
      subscribe(onData) {
        pubsub.addEventListener('message', (event) => { if (event.detail.topic === TOPIC) onData(event.detail.data) })
        pubsub.subscribe(TOPIC)
      },
      publish: async (data) => (await pubsub.publish(TOPIC, data)).recipients.length,
      meshSize: () => pubsub.getMeshPeers(TOPIC).length,
      subscribedPeerCount: () => pubsub.getSubscribers(TOPIC).length,
      connectionCount: () => node.getConnections().length,
      stop: async () => {
        await node.stop()
      },
    })
  }
  return { nodes, bytesSent: counter.sentBytes }
}

async function dialled(from: Libp2p, to: BenchNode): Promise<boolean> {
  try {
    await from.dial(multiaddr(`${to.address}/p2p/${to.peerId}`), { signal: AbortSignal.timeout(DIAL_MS_MAX) })
    return true
  } catch {
    return false
  }
}

/**
 * A gossipsub metrics register that counts the bytes of RPCs sent, shared by all nodes;
 * every other metric is a no-op, so the reference does next to no metrics work.
 */
function rpcByteCounter(): { register: MetricsRegister; sentBytes(): number } {
  let sentBytes = 0
  const ignore = (): void => {}
  const noop = { inc: ignore, set: ignore, addCollect: ignore, observe: ignore, reset: ignore, startTimer: () => ignore }
  const sent = { ...noop, inc: (value = 1) => { sentBytes += value } }
  return {
    register: {
      gauge: (config: { name: string }) => (config.name === 'gossipsub_rpc_sent_bytes_total' ? sent : noop) as never,
      histogram: () => noop as never,
      avgMinMax: () => noop as never,
    },
    sentBytes: () => sentBytes,
  }
}

// --- profiling ------------------------------------------------------------------------------

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
}

interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

async function startProfiler(): Promise<Session> {
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.start')
  return session
}

/** Stops the profiler, writes the profile (loadable in Chrome DevTools) and ranks functions and files by self time. */
async function stopProfiler(session: Session, system: System, seed: string): Promise<NonNullable<ChildResult['profile']>> {
  const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: CpuProfile }
  session.disconnect()
  const file = join(tmpdir(), `bench-gossip-${system}-${seed}-${process.pid}.cpuprofile`)
  writeFileSync(file, JSON.stringify(profile))
  const nodesById = new Map(profile.nodes.map((node) => [node.id, node]))
  const selfUs = new Map<number, number>()
  // timeDeltas[i] is the time before sample i: the time spent in sample i is the next delta.
  for (let index = 0; index < profile.samples.length; index++) {
    const deltaUs = profile.timeDeltas[index + 1] ?? 0
    selfUs.set(profile.samples[index]!, (selfUs.get(profile.samples[index]!) ?? 0) + deltaUs)
  }
  const byFunction = new Map<string, { function: string; location: string; us: number }>()
  const byFile = new Map<string, number>()
  let totalUs = 0
  for (const [id, us] of selfUs) {
    const { callFrame } = nodesById.get(id)!
    if (callFrame.functionName === '(idle)') continue
    totalUs += us
    const location = sourceLocation(callFrame)
    const name = callFrame.functionName || '(anonymous)'
    const key = `${name} ${location}`
    const entry = byFunction.get(key) ?? { function: name, location, us: 0 }
    entry.us += us
    byFunction.set(key, entry)
    const fileKey = location.replace(/:\d+$/, '') || name
    byFile.set(fileKey, (byFile.get(fileKey) ?? 0) + us)
  }
  const rank = (entries: Array<{ function: string; location: string; us: number }>) => entries
    .sort((a, b) => b.us - a.us).slice(0, PROFILE_TOP_COUNT)
    .map((entry) => ({ function: entry.function, location: entry.location, selfMs: entry.us / 1000, selfPercent: (100 * entry.us) / totalUs }))
  return {
    file,
    sampledMs: totalUs / 1000,
    functions: rank([...byFunction.values()]),
    files: rank([...byFile].map(([location, us]) => ({ function: '', location, us }))),
  }
}

/** file:line of a profiled frame, the TypeScript source's where a source map says, relative to the working directory. */
function sourceLocation(callFrame: ProfileNode['callFrame']): string {
  if (callFrame.url === '') return ''
  const entry = findSourceMap(callFrame.url)?.findEntry(callFrame.lineNumber, callFrame.columnNumber)
  const mapped = entry !== undefined && 'originalSource' in entry
    ? { url: entry.originalSource, line: entry.originalLine + 1 }
    : { url: callFrame.url, line: callFrame.lineNumber + 1 }
  let path = mapped.url.startsWith('file://') ? relative(process.cwd(), fileURLToPath(mapped.url)) : mapped.url
  // node_modules may be a symbolic link: name a dependency's file from its package.
  const packaged = path.lastIndexOf('node_modules/')
  if (packaged > 0) path = path.slice(packaged)
  return `${path}:${mapped.line}`
}

// --- helpers -------------------------------------------------------------------------------

function summarizeLatencies(values: Float64Array): LatencySummary {
  if (values.length === 0) return { count: 0, p50: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN }
  const sorted = Float64Array.from(values).sort()
  return {
    count: sorted.length,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    max: sorted[sorted.length - 1]!,
    mean: sorted.reduce((sum, value) => sum + value, 0) / sorted.length,
  }
}

/** Linear interpolation between the closest ranks. */
function quantile(sorted: ArrayLike<number>, q: number): number {
  const position = (sorted.length - 1) * q
  const low = Math.floor(position)
  const high = Math.ceil(position)
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low)
}

function median(values: readonly number[]): number {
  if (values.length === 0) return NaN
  return quantile([...values].sort((a, b) => a - b), 0.5)
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((sum, value) => sum + value, 0) / values.length
}

function cpuMs(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1000
}

function percent(ratio: number): string {
  return `${(100 * ratio).toFixed(2)}%`
}

function kib(bytes: number): string {
  return (bytes / 1024).toFixed(1)
}

function ratioText(shoal: number, reference: number): string {
  return `${(shoal / reference).toFixed(2)}×`
}

function positiveInteger(name: string, text: string | undefined): number {
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer`)
  return value
}

function log(system: System, line: string): void {
  process.stderr.write(`  [${system}] ${line}\n`)
}
