/**
 * Benchmark of an idle daemon: its resident memory and CPU while it sits connected to a
 * few peers with nothing to do but membership pings. Starts PEERS + 1 daemons on loopback
 * (the measured one bootstraps to the others), waits for the connections, then samples
 * the measured daemon's VmRSS and CPU time (utime + stime from /proc/<pid>/stat) over the
 * measuring window. Reports medians over --runs runs.
 *
 *   npm run bench:idle -- --runs 3 --seconds 30
 *
 * The last line of output is `RESULT {json}`.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { startDaemon } from '../src/testing/cli.ts'
import { cpuSeconds, residentBytes } from '../src/testing/proc-stats.ts'
import { cleanupScope } from '../src/testing/temp.ts'

const PEERS = 4
const WARMUP_MS = 10_000

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, seconds: { type: 'string', default: '30' } } })
const runCount = Number(values.runs)
const windowMs = Number(values.seconds) * 1000

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

const runs: Array<{ rssBytes: number; cpuPercent: number }> = []
for (let run = 0; run < runCount; run++) {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-idle-'))
  const daemons = cleanupScope()
  try {
    const peers = []
    for (let index = 0; index < PEERS; index++) peers.push((await startDaemon(daemons, join(dir, `peer${index}`))).address)
    const measured = await startDaemon(daemons, join(dir, 'measured'), { bootstrap: peers })
    await sleep(WARMUP_MS)
    const pid = measured.process.pid!
    const cpuBefore = cpuSeconds(pid)
    const rssSamples: number[] = []
    const started = Date.now()
    while (Date.now() - started < windowMs) {
      rssSamples.push(residentBytes(pid))
      await sleep(1_000)
    }
    const elapsedMs = Date.now() - started
    const cpuPercent = (cpuSeconds(pid) - cpuBefore) / (elapsedMs / 1000) * 100
    runs.push({ rssBytes: median(rssSamples), cpuPercent })
    console.log(`run ${run + 1}: RSS ${(median(rssSamples) / 2 ** 20).toFixed(1)} MiB, CPU ${cpuPercent.toFixed(2)}% of one core over ${(elapsedMs / 1000).toFixed(0)} s`)
  } finally {
    await daemons.close()
    await rm(dir, { recursive: true, force: true })
  }
}
const result = { runs: runCount, windowSeconds: windowMs / 1000, connectedPeers: PEERS, rssBytesMedian: median(runs.map((r) => r.rssBytes)), cpuPercentMedian: median(runs.map((r) => r.cpuPercent)) }
console.log(`idle daemon, ${PEERS} peers: RSS ${(result.rssBytesMedian / 2 ** 20).toFixed(1)} MiB, CPU ${result.cpuPercentMedian.toFixed(2)}% of one core (medians of ${runCount} runs; npm run bench:idle -- --runs ${runCount} --seconds ${windowMs / 1000})`)
console.log(`RESULT ${JSON.stringify(result)}`)
