/**
 * Benchmark of DHT provider lookups, Shoal against @libp2p/kad-dht, in the same run and
 * with the same network size. The issue's target: Shoal's median find-providers latency at
 * least 2× lower than @libp2p/kad-dht's, with memory per node reported for both.
 *
 *   npm run bench:dht -- --nodes 50 --runs 3 --providers 20 --queries 100
 *
 * Setup. Fifty daemons (about 100 MB each) do not fit a 2-core machine, so each system runs
 * its N nodes in ONE child process of this script (`--child shoal|reference`), a fresh
 * process per system and run, so that the two never share a heap and memory is measured for
 * each alone; the order of the two alternates from run to run. Both use the same libp2p
 * stack and host settings as the daemon (TCP and WebSockets, Noise, Yamux, identify,
 * identify-push, ping; connection limits raised as a single-IP testbed needs, since every
 * node is on 127.0.0.1) and the same Node flags as the `shoal` executable.
 *   - Shoal: createHost (net/host.ts) and Dht (node/dht.ts), as node/network.ts builds
 *     them, with the config defaults and dht.mode server; records in memory
 *     (MemoryDhtRecords) and counters in memory instead of a Prometheus registry per node.
 *   - Reference: stock @libp2p/kad-dht with its defaults, as a server (clientMode false),
 *     keeping loopback addresses (passthroughMapper); libp2p's in-memory datastore.
 * Both speak /ipfs/kad/1.0.0. Each node bootstraps to BOOTSTRAP_PEERS random earlier nodes
 * (the same choices for both systems: one seed per run): Shoal as `--bootstrap` does
 * (Dht.discovered), the reference by dialling them. Then the routing tables settle (no
 * table changes size for SETTLED_MS). Shoal's take a minute or more: a node whose table
 * holds fewer than 2k contacts looks itself up again after selfLookupIntervalMs (60 s).
 * Table sizes and open connections are reported, as memory per node follows them.
 *
 * Measurement, per run: memory after setup (RSS and heap used after a full GC, divided by
 * the node count; and the same less the process before any node existed); P providers
 * (distinct random nodes) each announce a CID of their own; then Q queries, each for a
 * random one of those CIDs from a random node other than its provider, one at a time,
 * timed from the call to the first provider (Shoal: countMax 1; the reference: the first
 * PROVIDER event, then the iteration is stopped). A query that the querier answered from
 * its own store (it is among the record's holders) measures no lookup: it is drawn again
 * and counted apart as `local`. Medians and p95 are over every timed query of every run.
 *
 * Loopback latency is about zero, so the comparison measures protocol efficiency (rounds,
 * requests, waits, per-request overhead), not network distance. And as a system's nodes share
 * one event loop, the answering nodes' work runs on the asking node's thread: a lookup that
 * sends many requests at once (kad-dht's defaults: α = 10 on d = 10 disjoint paths) pays
 * for all of them here, where on a real network they would be answered in parallel by other
 * machines. The requests sent up to the first provider are reported for that reason.
 *
 * Options: --nodes (50), --runs (3), --providers (20), --queries (100), --seed (1; run r uses
 * `<seed>-<r>`, printed with each run), and --reference-alpha / --reference-paths to run the
 * reference with other α and disjoint paths than its defaults (10 and 10), e.g. Shoal's 3
 * and 1, to tell the parameters' share of the difference from the implementations'.
 *
 * The last line is `RESULT {json}`.
 */
import { readFileSync } from 'node:fs'
import { availableParallelism, loadavg } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { reportToParent, runChildProcess } from '../src/testing/child-process.ts'
import { parseArgs } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify, identifyPush } from '@libp2p/identify'
import { kadDHT, passthroughMapper, type KadDHTComponents, type SingleKadDHT } from '@libp2p/kad-dht'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { Prng } from '../src/core/prng.ts'
import { HOST_LIMITS, loopbackAddress, REFERENCE_CONNECTION_MANAGER, startBenchHost } from './loopback-host.ts'
import { CountingProtocolMetrics } from '../src/net/protocol-metrics.ts'
import { defaultConfig } from '../src/node/config.ts'
import { Dht } from '../src/node/dht.ts'
import { MemoryDhtRecords } from '../src/store/memory-dht-records.ts'
import { garbageCollector } from '../src/node/heap-trimmer.ts'
import { KAD_PROTOCOL_PUBLIC } from '../src/wire/kad.ts'

type System = 'shoal' | 'reference'

const SYSTEMS: readonly System[] = ['shoal', 'reference']
const SHOAL_BIN = fileURLToPath(new URL('../src/cli/shoal.js', import.meta.url))
/** The Node flags of the executable's `#!/usr/bin/env -S node ...` line, for both systems alike. */
const NODE_FLAGS = readFileSync(SHOAL_BIN, 'utf8').split('\n')[0]!.split(/\s+/).slice(3)
const BOOTSTRAP_PEERS = 3
/** Tables are settled when no size changed for this long... */
const SETTLED_MS = 3_000
const SETTLE_POLL_MS = 250
/** ...or when this much time has passed (reported). */
const SETTLE_MS_MAX = 120_000
const QUERY_MS_MAX = 30_000
const PROVIDE_MS_MAX = 60_000
/** Draws of a querier per query before it is counted failed: each extra draw found a local holder. */
const QUERIER_DRAWS_MAX = 25
const STOP_MS_MAX = 10_000
const CHILD_MS_MAX = 15 * 60_000

const { values: options } = parseArgs({
  options: {
    nodes: { type: 'string', default: '50' },
    runs: { type: 'string', default: '3' },
    providers: { type: 'string', default: '20' },
    queries: { type: 'string', default: '100' },
    child: { type: 'string' },
    seed: { type: 'string', default: '1' },
    'reference-alpha': { type: 'string' },
    'reference-paths': { type: 'string' },
  },
})
const nodeCount = positiveInteger('nodes', options.nodes)
const runCount = positiveInteger('runs', options.runs)
const providerCount = positiveInteger('providers', options.providers)
const queryCount = positiveInteger('queries', options.queries)
if (nodeCount < 2 || providerCount > nodeCount) throw new Error('--nodes must be at least 2 and at least --providers')
const referenceAlpha = options['reference-alpha'] === undefined ? undefined : positiveInteger('reference-alpha', options['reference-alpha'])
const referencePaths = options['reference-paths'] === undefined ? undefined : positiveInteger('reference-paths', options['reference-paths'])
/** The reference's query parameters where they are not its defaults. */
const referenceQuery = { ...(referenceAlpha === undefined ? {} : { alpha: referenceAlpha }), ...(referencePaths === undefined ? {} : { disjointPaths: referencePaths }) }
/** The same, as flags for a child and for the printed command. */
const referenceFlags = [...(referenceAlpha === undefined ? [] : ['--reference-alpha', String(referenceAlpha)]), ...(referencePaths === undefined ? [] : ['--reference-paths', String(referencePaths)])]

/** One DHT node of either system, as the benchmark drives it. */
interface BenchNode {
  peerId: string
  /** A loopback TCP address, without /p2p. */
  address: string
  bootstrap(to: BenchNode): Promise<void>
  tableSize(): number
  connectionCount(): number
  provide(cid: CID): Promise<boolean>
  /** The first provider found, and whether the node answered from its own store. */
  findFirstProvider(cid: CID, signal: AbortSignal): Promise<FirstProvider>
  stop(): Promise<void>
}

interface FirstProvider {
  provider: string | undefined
  /** Answered from the node's own store, with no request. */
  local: boolean
  /** performance.now() when the first provider arrived. */
  firstMs: number | undefined
  /** Requests sent by then. */
  requests: number
}

interface ChildResult {
  system: System
  nodes: number
  setupMs: number
  settled: boolean
  settleMs: number
  tableSizes: { mean: number; min: number; max: number }
  /** Open connections per node, after setup. */
  connectionsMean: number
  memory: Memory & { baseline: Memory }
  provideMs: number[]
  providesFailed: number
  latenciesMs: number[]
  requestsPerQuery: number[]
  /** Timed queries that found no provider, or another one. */
  queriesFailed: number
  /** Queries with no querier left to time: every node but the provider held the record. */
  queriesUnmeasured: number
  localAnswers: number
  /** The machine's 1-minute load average, highest seen at the phase boundaries: other work skews the figures. */
  loadAverageMax: number
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
  const command = ['npm run bench:dht --', '--nodes', nodeCount, '--runs', runCount, '--providers', providerCount, '--queries', queryCount, '--seed', options.seed, ...referenceFlags].join(' ')
  const referenceSettings = `α ${referenceAlpha ?? '10 (default)'}, disjoint paths ${referencePaths ?? 'α (default)'}`
  console.log(`DHT find-providers: Shoal vs @libp2p/kad-dht (${referenceSettings}), ${nodeCount} nodes per system on loopback, ${providerCount} providers, ${queryCount} queries, ${runCount} runs`)
  const results: Record<System, ChildResult[]> = { shoal: [], reference: [] }
  for (let run = 0; run < runCount; run++) {
    const order = run % 2 === 0 ? SYSTEMS : [...SYSTEMS].reverse()
    for (const system of order) {
      const seed = `${options.seed}-${run + 1}`
      const result = await spawnChild(system, seed)
      results[system].push(result)
      const latencies = summarize(result.latenciesMs)
      console.log(`run ${run + 1} (seed ${seed}) ${system.padEnd(9)}: median ${latencies.median.toFixed(1)} ms, p95 ${latencies.p95.toFixed(1)} ms, ${result.latenciesMs.length}/${queryCount} found (${result.localAnswers} local answers redrawn), tables ${result.tableSizes.mean.toFixed(1)} contacts (settled ${result.settled ? 'yes' : 'NO'} in ${(result.settleMs / 1000).toFixed(1)} s), RSS ${mib(result.memory.rssBytes / result.nodes)} MiB/node, load ≤ ${result.loadAverageMax.toFixed(1)}`)
    }
  }

  const report = Object.fromEntries(SYSTEMS.map((system) => [system, systemReport(results[system])])) as Record<System, ReturnType<typeof systemReport>>
  const ratio = report.reference.latencyMs.median / report.shoal.latencyMs.median
  console.log('')
  console.log('                          Shoal    @libp2p/kad-dht')
  const row = (label: string, shoal: string, reference: string) => console.log(`${label.padEnd(24)}${shoal.padStart(8)}${reference.padStart(19)}`)
  row('median latency (ms)', report.shoal.latencyMs.median.toFixed(1), report.reference.latencyMs.median.toFixed(1))
  row('p95 latency (ms)', report.shoal.latencyMs.p95.toFixed(1), report.reference.latencyMs.p95.toFixed(1))
  row('per-run medians (ms)', report.shoal.runMediansMs.map((ms) => ms.toFixed(1)).join('/'), report.reference.runMediansMs.map((ms) => ms.toFixed(1)).join('/'))
  row('requests to 1st (median)', report.shoal.requestsPerQuery.median.toFixed(0), report.reference.requestsPerQuery.median.toFixed(0))
  row('found / timed queries', `${report.shoal.found}/${report.shoal.queries}`, `${report.reference.found}/${report.reference.queries}`)
  row('local answers redrawn', String(report.shoal.localAnswers), String(report.reference.localAnswers))
  if (report.shoal.unmeasured + report.reference.unmeasured > 0) row('unmeasured (all hold it)', String(report.shoal.unmeasured), String(report.reference.unmeasured))
  row('median provide (ms)', report.shoal.provideMs.median.toFixed(0), report.reference.provideMs.median.toFixed(0))
  row('routing table (mean)', report.shoal.tableSizeMean.toFixed(1), report.reference.tableSizeMean.toFixed(1))
  row('connections (mean)', report.shoal.connectionsMean.toFixed(1), report.reference.connectionsMean.toFixed(1))
  row('RSS / node (MiB)', mib(report.shoal.memory.rssBytesPerNode), mib(report.reference.memory.rssBytesPerNode))
  row('heap used / node (MiB)', mib(report.shoal.memory.heapUsedBytesPerNode), mib(report.reference.memory.heapUsedBytesPerNode))
  row('external / node (MiB)', mib(report.shoal.memory.externalBytesPerNode), mib(report.reference.memory.externalBytesPerNode))
  row('RSS / node less empty', mib(report.shoal.memory.rssBytesPerNodeAboveBaseline), mib(report.reference.memory.rssBytesPerNodeAboveBaseline))
  row('heap / node less empty', mib(report.shoal.memory.heapUsedBytesPerNodeAboveBaseline), mib(report.reference.memory.heapUsedBytesPerNodeAboveBaseline))
  console.log('')
  console.log(`median ratio (kad-dht / Shoal): ${ratio.toFixed(2)}× — target ≥ 2×: ${ratio >= 2 ? 'met' : 'NOT met'}`)
  console.log('loopback, one process per system: latency is protocol efficiency (rounds, requests, waits, per-request cost),')
  console.log('not distance; every answer is computed on the same thread, so wide fan-out is charged in full')
  const loadAverageMax = Math.max(report.shoal.loadAverageMax, report.reference.loadAverageMax)
  if (loadAverageMax > availableParallelism()) console.log(`WARNING: the load average reached ${loadAverageMax.toFixed(1)} on ${availableParallelism()} cores: other work ran meanwhile and skews the figures`)
  console.log(`command: ${command}`)
  const result = { command, nodes: nodeCount, runs: runCount, providers: providerCount, queries: queryCount, seed: options.seed, referenceQuery, ratio, targetMet: ratio >= 2, ...report }
  console.log(`RESULT ${JSON.stringify(result)}`)
}

function spawnChild(system: System, seed: string): Promise<ChildResult> {
  const args = [...NODE_FLAGS, '--expose-gc', '--enable-source-maps', fileURLToPath(import.meta.url), '--child', system,
    '--nodes', String(nodeCount), '--providers', String(providerCount), '--queries', String(queryCount), '--seed', seed,
    ...referenceFlags]
  return runChildProcess<ChildResult>(args, system, CHILD_MS_MAX)
}

function systemReport(runs: readonly ChildResult[]) {
  const latencies = runs.flatMap((run) => run.latenciesMs)
  const perNode = (pick: (run: ChildResult) => number) => median(runs.map((run) => pick(run) / run.nodes))
  return {
    latencyMs: summarize(latencies),
    requestsPerQuery: summarize(runs.flatMap((run) => run.requestsPerQuery)),
    runMediansMs: runs.map((run) => summarize(run.latenciesMs).median),
    queries: runs.length * queryCount,
    found: latencies.length,
    failed: runs.reduce((sum, run) => sum + run.queriesFailed, 0),
    unmeasured: runs.reduce((sum, run) => sum + run.queriesUnmeasured, 0),
    localAnswers: runs.reduce((sum, run) => sum + run.localAnswers, 0),
    provideMs: summarize(runs.flatMap((run) => run.provideMs)),
    providesFailed: runs.reduce((sum, run) => sum + run.providesFailed, 0),
    tableSizeMean: median(runs.map((run) => run.tableSizes.mean)),
    connectionsMean: median(runs.map((run) => run.connectionsMean)),
    settled: runs.every((run) => run.settled),
    loadAverageMax: Math.max(...runs.map((run) => run.loadAverageMax)),
    settleMs: runs.map((run) => run.settleMs),
    memory: {
      rssBytesPerNode: perNode((run) => run.memory.rssBytes),
      heapUsedBytesPerNode: perNode((run) => run.memory.heapUsedBytes),
      externalBytesPerNode: perNode((run) => run.memory.externalBytes),
      rssBytesPerNodeAboveBaseline: perNode((run) => run.memory.rssBytes - run.memory.baseline.rssBytes),
      heapUsedBytesPerNodeAboveBaseline: perNode((run) => run.memory.heapUsedBytes - run.memory.baseline.heapUsedBytes),
    },
  }
}

// --- a child: one system's network ------------------------------------------------------

async function runChild(system: System, seed: string): Promise<ChildResult> {
  const prng = Prng.fromSeed(`bench-dht-${seed}`)
  let loadAverageMax = loadavg()[0]!
  const gc = garbageCollector()
  const baseline = measureMemory(gc)
  const startedAt = performance.now()
  const nodes: BenchNode[] = []
  for (let index = 0; index < nodeCount; index++) nodes.push(system === 'shoal' ? await shoalNode() : await referenceNode())
  const bootstrapPrng = prng.fork('bootstrap')
  const dials: Array<Promise<void>> = []
  for (let index = 1; index < nodeCount; index++) {
    for (const to of bootstrapPrng.sample(nodes.slice(0, index), BOOTSTRAP_PEERS)) dials.push(nodes[index]!.bootstrap(to))
  }
  await Promise.all(dials)
  const setupMs = performance.now() - startedAt
  const settleStartedAt = performance.now()
  const settled = await settle(nodes)
  const settleMs = performance.now() - settleStartedAt
  const sizes = nodes.map((node) => node.tableSize())
  const connectionsMean = mean(nodes.map((node) => node.connectionCount()))
  const memory = measureMemory(gc)
  loadAverageMax = Math.max(loadAverageMax, loadavg()[0]!)
  log(system, `${nodeCount} nodes up in ${(setupMs / 1000).toFixed(1)} s, tables ${settled ? 'settled' : 'NOT settled'} after ${(settleMs / 1000).toFixed(1)} s (mean ${mean(sizes).toFixed(1)} contacts)`)

  // Providers: distinct nodes, each with a CID of its own.
  const providers = prng.fork('providers').sample(nodes.map((_, index) => index), providerCount)
  const cids = await Promise.all(providers.map(async (_, index) => CID.create(1, raw.code, await sha256.digest(new TextEncoder().encode(`bench-dht seed ${seed} content ${index}`)))))
  const provideMs: number[] = []
  let providesFailed = 0
  for (const [index, provider] of providers.entries()) {
    const started = performance.now()
    if (await nodes[provider]!.provide(cids[index]!)) provideMs.push(performance.now() - started)
    else providesFailed++
  }

  const queryPrng = prng.fork('queries')
  const latenciesMs: number[] = []
  const requestsPerQuery: number[] = []
  let queriesFailed = 0
  let queriesUnmeasured = 0
  let localAnswers = 0
  // Per CID, the nodes found to hold its record: they are not drawn again for it.
  const holders = cids.map(() => new Set<BenchNode>())
  for (let query = 0; query < queryCount; query++) {
    const target = queryPrng.int(providers.length)
    const provider = nodes[providers[target]!]!
    let timed = false
    for (let draw = 0; draw < QUERIER_DRAWS_MAX && !timed; draw++) {
      const querier = queryPrng.pick(nodes.filter((node) => node !== provider && !holders[target]!.has(node)))
      // Every other node holds the record (a network of k + 1 nodes or fewer): no lookup to time.
      if (querier === undefined) {
        queriesUnmeasured++
        timed = true
        break
      }
      const started = performance.now()
      const found = await querier.findFirstProvider(cids[target]!, AbortSignal.timeout(QUERY_MS_MAX)).catch(() => undefined)
      if (found?.local === true) {
        localAnswers++
        holders[target]!.add(querier)
        continue
      }
      timed = true
      if (found?.provider === provider.peerId && found.firstMs !== undefined) {
        latenciesMs.push(found.firstMs - started)
        requestsPerQuery.push(found.requests)
      } else {
        queriesFailed++
      }
    }
    if (!timed) queriesFailed++
  }
  log(system, `${latenciesMs.length}/${queryCount} queries found the provider; median ${summarize(latenciesMs).median.toFixed(1)} ms`)
  loadAverageMax = Math.max(loadAverageMax, loadavg()[0]!)

  await Promise.race([Promise.all(nodes.map((node) => node.stop().catch(() => {}))), sleep(STOP_MS_MAX)])
  return {
    system, nodes: nodeCount, setupMs, settled, settleMs,
    tableSizes: { mean: mean(sizes), min: Math.min(...sizes), max: Math.max(...sizes) },
    connectionsMean,
    memory: { ...memory, baseline },
    provideMs, providesFailed, latenciesMs, requestsPerQuery, queriesFailed, queriesUnmeasured, localAnswers, loadAverageMax,
  }
}

/** Waits until no routing table changed size for SETTLED_MS, or SETTLE_MS_MAX; true if settled. */
async function settle(nodes: readonly BenchNode[]): Promise<boolean> {
  const deadline = performance.now() + SETTLE_MS_MAX
  let sizes = nodes.map((node) => node.tableSize()).join()
  let stableSince = performance.now()
  while (performance.now() < deadline) {
    await sleep(SETTLE_POLL_MS)
    const now = nodes.map((node) => node.tableSize()).join()
    if (now !== sizes) {
      sizes = now
      stableSince = performance.now()
    } else if (performance.now() - stableSince >= SETTLED_MS) {
      return true
    }
  }
  return false
}

async function shoalNode(): Promise<BenchNode> {
  const host = await startBenchHost()
  const metrics = Object.assign(new CountingProtocolMetrics(), { registerCoreCounters: () => {} })
  const dht = await Dht.start(host, { ...defaultConfig().dht, mode: 'server', protocol: KAD_PROTOCOL_PUBLIC }, metrics, new MemoryDhtRecords())
  const peerId = host.peerId.toString()
  // As node/network.ts does: what identify reports is a discovery for the DHT.
  host.addEventListener('peer:identify', (event) => dht.discovered(event.detail.peerId.toString(), event.detail.listenAddrs.map(String), 'identify'))
  return {
    peerId,
    address: loopbackAddress(host.getMultiaddrs().map(String)),
    bootstrap: async (to) => dht.discovered(to.peerId, [to.address], 'bootstrap'),
    tableSize: () => dht.core.tableSize,
    connectionCount: () => host.getConnections().length,
    provide: async (cid) => (await dht.provide(cid.multihash.bytes, AbortSignal.timeout(PROVIDE_MS_MAX))).storedCount > 0,
    async findFirstProvider(cid, signal) {
      let firstMs: number | undefined
      const result = await dht.findProviders(cid.multihash.bytes, 1, () => { firstMs ??= performance.now() }, signal)
      // The query ends at its first provider (countMax 1): its request count is the count by then.
      return { provider: result.providers[0]?.peerId, local: result.stats.requests === 0 && result.providers.length > 0, firstMs, requests: result.stats.requests }
    },
    async stop() {
      await dht.stop()
      await host.stop()
    },
  }
}

async function referenceNode(): Promise<BenchNode> {
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
      dht: kadDHT({ protocol: KAD_PROTOCOL_PUBLIC, clientMode: false, peerInfoMapper: passthroughMapper, ...referenceQuery }) as (components: KadDHTComponents) => SingleKadDHT,
    },
  })
  const dht = node.services.dht
  const peerId = node.peerId.toString()
  return {
    peerId,
    address: loopbackAddress(node.getMultiaddrs().map(String)),
    bootstrap: async (to) => {
      await node.dial(multiaddr(`${to.address}/p2p/${to.peerId}`), { signal: AbortSignal.timeout(10_000) }).catch(() => {})
    },
    tableSize: () => dht.routingTable.size,
    connectionCount: () => node.getConnections().length,
    async provide(cid) {
      let stored = 0
      for await (const event of dht.provide(cid, { signal: AbortSignal.timeout(PROVIDE_MS_MAX) })) {
        if (event.name === 'PEER_RESPONSE' && event.messageName === 'ADD_PROVIDER') stored++
      }
      return stored > 0
    },
    async findFirstProvider(cid, signal) {
      let requests = 0
      for await (const event of dht.findProviders(cid, { signal })) {
        if (event.name === 'SEND_QUERY') requests++
        if (event.name !== 'PROVIDER' || event.providers.length === 0) continue
        const firstMs = performance.now()
        // Breaking off ends the query: this is the first provider, as countMax 1 is for Shoal.
        return { provider: event.providers[0]!.id.toString(), local: event.from.toString() === peerId, firstMs, requests }
      }
      return { provider: undefined, local: false, firstMs: undefined, requests }
    },
    stop: async () => {
      await node.stop()
    },
  }
}

// --- helpers -------------------------------------------------------------------------------

interface Memory {
  rssBytes: number
  heapUsedBytes: number
  /** Outside the JS heap: buffers (array buffers included) and native objects V8 tracks. */
  externalBytes: number
}

function measureMemory(gc: () => void): Memory {
  gc()
  gc()
  const usage = process.memoryUsage()
  return { rssBytes: usage.rss, heapUsedBytes: usage.heapUsed, externalBytes: usage.external }
}

function summarize(values: readonly number[]): { median: number; p95: number; count: number } {
  if (values.length === 0) return { median: NaN, p95: NaN, count: 0 }
  const sorted = [...values].sort((a, b) => a - b)
  return { median: quantile(sorted, 0.5), p95: quantile(sorted, 0.95), count: sorted.length }
}

/** Linear interpolation between the closest ranks. */
function quantile(sorted: readonly number[], q: number): number {
  const position = (sorted.length - 1) * q
  const low = Math.floor(position)
  const high = Math.ceil(position)
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low)
}

function median(values: readonly number[]): number {
  return summarize(values).median
}

function mean(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length
}

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(2)
}

function positiveInteger(name: string, text: string | undefined): number {
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer`)
  return value
}

function log(system: System, line: string): void {
  process.stderr.write(`  [${system}] ${line}\n`)
}
