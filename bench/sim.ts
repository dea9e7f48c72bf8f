/**
 * Benchmark of the simulator itself (src/sim), against its budgets:
 *   - events per second: median of 3 runs of `membership` (1,000 peers, 180 s simulated,
 *     seed 1), real protocol code included; budget >= 200,000/s on a 2-core machine;
 *   - time to set up 10,000 simulated peers running Membership (build the simulator, bring
 *     every peer online with its core and bootstrap peers); budget < 10 s;
 *   - heap per idle simulated peer beyond the protocol's own state: 10,000 peers running a
 *     no-op core, against nothing (heapUsed after full GCs); budget <= 2 KB.
 *
 *   npm run bench:sim          (node --expose-gc dist/bench/sim.js)
 *
 * The last line is `RESULT {json}` with every figure.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Membership, DEFAULT_MEMBERSHIP_CONFIG, type MembershipMessage } from '../src/core/membership/membership.ts'
import { membershipCodec } from '../src/wire/membership.ts'
import { runMembership } from '../src/sim/scenarios/membership.ts'
import { scenario } from '../src/sim/scenario.ts'
import { Simulator } from '../src/sim/simulator.ts'
import { NoopCore } from '../src/sim/test-cores.ts'

const RUN_COUNT = 3
const THROUGHPUT_PEERS = 1_000
const THROUGHPUT_MS = 180_000
const SETUP_PEERS = 10_000
const MEMORY_PEERS = 10_000
const EVENTS_PER_SECOND_MIN = 200_000
const SETUP_MS_MAX = 10_000
const IDLE_PEER_BYTES_MAX = 2 * 1024
const COMMAND = 'npm run bench:sim'

function collectGarbage(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc
  if (exposed !== undefined) return exposed
  // Started without --expose-gc: V8 still lets a context obtain gc after this flag.
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}

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
  const gc = collectGarbage()
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

const throughput = measureThroughput()
const setupMs = measureSetup()
const idlePeerBytes = measureIdlePeerBytes()
const verdict = (ok: boolean) => (ok ? 'ok' : 'OVER BUDGET')
console.log(`simulator benchmark (reproduce: ${COMMAND}), node ${process.version}`)
console.log(`events/s, median of ${RUN_COUNT} runs of membership (${THROUGHPUT_PEERS} peers, ${THROUGHPUT_MS / 1000} s simulated, ${throughput.events} events, wall ${throughput.wallMs.join('/')} ms): ${throughput.eventsPerSecond} [budget >= ${EVENTS_PER_SECOND_MIN}: ${verdict(throughput.eventsPerSecond >= EVENTS_PER_SECOND_MIN)}]`)
console.log(`set-up of ${SETUP_PEERS} peers running Membership: ${setupMs} ms [budget < ${SETUP_MS_MAX}: ${verdict(setupMs < SETUP_MS_MAX)}]`)
console.log(`heap per idle simulated peer (no-op core, ${MEMORY_PEERS} peers): ${idlePeerBytes} bytes [budget <= ${IDLE_PEER_BYTES_MAX}: ${verdict(idlePeerBytes <= IDLE_PEER_BYTES_MAX)}]`)
console.log(`RESULT ${JSON.stringify({ command: COMMAND, eventsPerSecond: throughput.eventsPerSecond, throughputRunsWallMs: throughput.wallMs, throughputEvents: throughput.events, traceHash: throughput.traceHash, setupMs, idlePeerBytes })}`)
