/**
 * Benchmark of the simulator itself (src/sim), against its budgets:
 *   - events per second: median of 3 runs of `membership` (1,000 peers, 180 s simulated,
 *     seed 1), real protocol code included; budget >= 200,000/s on a 2-core machine;
 *   - time to set up 10,000 simulated peers running Membership (build the simulator, bring
 *     every peer online with its core and bootstrap peers); budget < 10 s;
 *   - heap per idle simulated peer beyond the protocol's own state: 10,000 peers running a
 *     no-op core, against nothing (heapUsed after full GCs); budget <= 2 KB;
 *   - request/response throughput: 10,000 peers each sending 30 requests to random peers
 *     (300,000 in all, nearly every one needing a dial) and answering theirs, with
 *     connectionsPerPeerMax 64 and the default network; requests completed per wall second
 *     (budget >= 50,000: a DHT run of 100,000 lookups of ~45 requests each must fit in
 *     5 minutes with the DHT's own work on top), events per second and heap. Then the
 *     same with 100 requests per peer (1,000,000), where connection tables are full and
 *     nearly every new connection evicts one at each end, as in a long DHT run.
 *
 *   npm run bench:sim          (node --expose-gc dist/bench/sim.js)
 *
 * The last line is `RESULT {json}` with every figure.
 */
import { Membership, DEFAULT_MEMBERSHIP_CONFIG, type MembershipMessage } from '../src/core/membership/membership.ts'
import { membershipCodec } from '../src/wire/membership.ts'
import { runMembership } from '../src/sim/scenarios/membership.ts'
import { scenario } from '../src/sim/scenario.ts'
import { Simulator } from '../src/sim/simulator.ts'
import { asPeerId } from '../src/core/sans-io.ts'
import { NoopCore, RequestLoadCore, type BlobMessage } from '../src/sim/test-cores.ts'
import { garbageCollector } from '../src/node/heap-trimmer.ts'

const RUN_COUNT = 3
const THROUGHPUT_PEERS = 1_000
const THROUGHPUT_MS = 180_000
const SETUP_PEERS = 10_000
const MEMORY_PEERS = 10_000
const EVENTS_PER_SECOND_MIN = 200_000
const SETUP_MS_MAX = 10_000
const IDLE_PEER_BYTES_MAX = 2 * 1024
const REQUEST_PEERS = 10_000
const REQUESTS_PER_PEER = [30, 100]
const REQUEST_INTERVAL_MS = 1_000
const REQUEST_CONNECTIONS_PER_PEER_MAX = 64
const REQUESTS_PER_SECOND_MIN = 50_000
const COMMAND = 'npm run bench:sim'

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

function measureThroughput(): { eventsPerSecond: number; events: number; wallMs: number[]; traceHash: string } {
  const rates: number[] = []
  const wallMs: number[] = []
  let events = 0
  let traceHash = ''
  for (let run = 0; run < RUN_COUNT; run++) {
    const startedAt = performance.now()
    const report = runMembership({ peers: THROUGHPUT_PEERS, seed: 1n, ms: THROUGHPUT_MS })
    const elapsedMs = performance.now() - startedAt
    wallMs.push(Math.round(elapsedMs))
    rates.push(report.events / (elapsedMs / 1000))
    if (traceHash !== '' && traceHash !== report.traceHash) throw new Error('the same seed gave two trace hashes: the simulator is not deterministic')
    events = report.events
    traceHash = report.traceHash
  }
  return { eventsPerSecond: Math.round(median(rates)), events, wallMs, traceHash }
}

function measureSetup(): number {
  const startedAt = performance.now()
  const t = scenario<MembershipMessage>({
    peerCount: SETUP_PEERS,
    seed: 1n,
    codec: membershipCodec,
    bootstrapPeers: [0, 1, 2, 3],
    createCore: (context) => new Membership({ ...DEFAULT_MEMBERSHIP_CONFIG, self: context.id }, context.prng),
  })
  // Every join happens at time 0: this brings all peers online and hands out bootstrap peers.
  t.sim.run(0)
  if (t.sim.onlineCount !== SETUP_PEERS) throw new Error(`only ${t.sim.onlineCount} peers online`)
  return Math.round(performance.now() - startedAt)
}

function measureIdlePeerBytes(): number {
  const gc = garbageCollector()
  const heapUsed = () => {
    for (let round = 0; round < 4; round++) gc()
    return process.memoryUsage().heapUsed
  }
  const before = heapUsed()
  const sim = new Simulator<MembershipMessage>({ peerCount: MEMORY_PEERS, seed: 1n, codec: membershipCodec, createCore: () => new NoopCore() })
  for (let index = 0; index < MEMORY_PEERS; index++) sim.join(index)
  sim.run(0)
  const after = heapUsed()
  if (sim.onlineCount !== MEMORY_PEERS) throw new Error('not every peer came online')
  return Math.round((after - before) / MEMORY_PEERS)
}

interface RequestFigures {
  requests: number
  responses: number
  failures: number
  events: number
  simulatedMs: number
  wallMs: number
  requestsPerSecond: number
  eventsPerSecond: number
  peakHeapMb: number
  /** After a full GC at the end, with every peer still holding its connections. */
  liveHeapMb: number
  connectionsEvicted: number
  traceHash: string
}

function measureRequests(requestsPerPeer: number): RequestFigures {
  const gc = garbageCollector()
  gc()
  const ids = Array.from({ length: REQUEST_PEERS }, (_, index) => asPeerId(`p${index}`))
  const request: BlobMessage = { type: 'blob', bytes: 60, label: 'find-node' }
  const response: BlobMessage = { type: 'blob', bytes: 900, label: 'closer-peers' }
  const cores: RequestLoadCore[] = []
  const startedAt = performance.now()
  const sim = new Simulator<BlobMessage>({
    peerCount: REQUEST_PEERS,
    seed: 1n,
    // As the DHT will: its messages carry synthetic peer ids that no codec encodes.
    sizeOf: (message) => message.bytes,
    network: { connectionsPerPeerMax: REQUEST_CONNECTIONS_PER_PEER_MAX },
    createCore: (context) =>
      (cores[context.index] = new RequestLoadCore({ ids, self: context.index, requestCount: requestsPerPeer, intervalMs: REQUEST_INTERVAL_MS, request, response }, context.prng, 0)),
  })
  for (let index = 0; index < REQUEST_PEERS; index++) sim.join(index)
  let peakHeapBytes = 0
  // Sampled every simulated second: the heap's high-water mark, not a GC'd floor.
  for (let untilMs = 0; sim.pendingEventCount > 0; untilMs += 1_000) {
    sim.run(untilMs)
    peakHeapBytes = Math.max(peakHeapBytes, process.memoryUsage().heapUsed)
  }
  const wallMs = performance.now() - startedAt
  gc()
  const liveHeapBytes = process.memoryUsage().heapUsed
  const responses = cores.reduce((sum, core) => sum + core.responseCount, 0)
  const failures = cores.reduce((sum, core) => sum + core.failureCount, 0)
  if (responses + failures !== sim.counters.requestsSent) throw new Error(`${sim.counters.requestsSent} requests sent, but ${responses + failures} ended`)
  return {
    requests: sim.counters.requestsSent,
    responses,
    failures,
    events: sim.eventCount,
    simulatedMs: Math.round(sim.now),
    wallMs: Math.round(wallMs),
    requestsPerSecond: Math.round(sim.counters.requestsSent / (wallMs / 1000)),
    eventsPerSecond: Math.round(sim.eventCount / (wallMs / 1000)),
    peakHeapMb: Math.round(peakHeapBytes / 1e5) / 10,
    liveHeapMb: Math.round(liveHeapBytes / 1e5) / 10,
    connectionsEvicted: sim.counters.connectionsEvicted,
    traceHash: sim.traceHash,
  }
}

const throughput = measureThroughput()
const setupMs = measureSetup()
const idlePeerBytes = measureIdlePeerBytes()
const requestRuns = REQUESTS_PER_PEER.map(measureRequests)
const verdict = (ok: boolean) => (ok ? 'ok' : 'OVER BUDGET')
console.log(`simulator benchmark (reproduce: ${COMMAND}), node ${process.version}`)
console.log(`events/s, median of ${RUN_COUNT} runs of membership (${THROUGHPUT_PEERS} peers, ${THROUGHPUT_MS / 1000} s simulated, ${throughput.events} events, wall ${throughput.wallMs.join('/')} ms): ${throughput.eventsPerSecond} [budget >= ${EVENTS_PER_SECOND_MIN}: ${verdict(throughput.eventsPerSecond >= EVENTS_PER_SECOND_MIN)}]`)
console.log(`set-up of ${SETUP_PEERS} peers running Membership: ${setupMs} ms [budget < ${SETUP_MS_MAX}: ${verdict(setupMs < SETUP_MS_MAX)}]`)
console.log(`heap per idle simulated peer (no-op core, ${MEMORY_PEERS} peers): ${idlePeerBytes} bytes [budget <= ${IDLE_PEER_BYTES_MAX}: ${verdict(idlePeerBytes <= IDLE_PEER_BYTES_MAX)}]`)
for (const requests of requestRuns) {
  console.log(`requests/s, ${requests.requests} requests among ${REQUEST_PEERS} peers (connectionsPerPeerMax ${REQUEST_CONNECTIONS_PER_PEER_MAX}, ${requests.responses} answered, ${requests.failures} failed, ${requests.connectionsEvicted} connections evicted, ${requests.events} events, ${requests.simulatedMs / 1000} s simulated, wall ${requests.wallMs} ms): ${requests.requestsPerSecond} [budget >= ${REQUESTS_PER_SECOND_MIN}: ${verdict(requests.requestsPerSecond >= REQUESTS_PER_SECOND_MIN)}]; ${requests.eventsPerSecond} events/s; heap: peak ${requests.peakHeapMb} MB (sampled each simulated second), live at the end ${requests.liveHeapMb} MB`)
}
console.log(`RESULT ${JSON.stringify({ command: COMMAND, eventsPerSecond: throughput.eventsPerSecond, throughputRunsWallMs: throughput.wallMs, throughputEvents: throughput.events, traceHash: throughput.traceHash, setupMs, idlePeerBytes, requests: requestRuns })}`)
