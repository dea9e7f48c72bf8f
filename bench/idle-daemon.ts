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
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'

const SHOAL_BIN = fileURLToPath(new URL('../src/cli/shoal.js', import.meta.url))
/** The Node flags of the executable's `#!/usr/bin/env -S node ...` line: the daemon runs as users run it. */
const NODE_FLAGS = readFileSync(SHOAL_BIN, 'utf8').split('\n')[0]!.split(/\s+/).slice(3)
const PEERS = 4
const WARMUP_MS = 10_000

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, seconds: { type: 'string', default: '30' } } })
const runCount = Number(values.runs)
const windowMs = Number(values.seconds) * 1000
const ticksPerSecond = 100 // USER_HZ on Linux

function startDaemon(repo: string, extra: string[]): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, [...NODE_FLAGS, SHOAL_BIN, '--repo', repo, 'daemon', '--init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', ...extra], { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    let output = ''
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const peer = /peer id: (\S+)/.exec(output)?.[1]
      const listening = /listening on (\S+)/.exec(output)?.[1]
      if (peer && listening && output.includes('daemon ready')) resolve({ child, address: `${listening}/p2p/${peer}` })
    })
    child.on('exit', () => reject(new Error(`daemon exited early: ${output}`)))
  })
}

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return Number(fields[11]) + Number(fields[12])
}

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(match![1]) * 1024
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

const runs: Array<{ rssBytes: number; cpuPercent: number }> = []
for (let run = 0; run < runCount; run++) {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-idle-'))
  const children: ChildProcess[] = []
  try {
    const peers = []
    for (let index = 0; index < PEERS; index++) {
      const peer = await startDaemon(join(dir, `peer${index}`), [])
      children.push(peer.child)
      peers.push(peer.address)
    }
    const measured = await startDaemon(join(dir, 'measured'), ['--bootstrap', ...peers])
    children.push(measured.child)
    await sleep(WARMUP_MS)
    const pid = measured.child.pid!
    const ticksBefore = cpuTicks(pid)
    const rssSamples: number[] = []
    const started = Date.now()
    while (Date.now() - started < windowMs) {
      rssSamples.push(rssBytes(pid))
      await sleep(1_000)
    }
    const elapsedMs = Date.now() - started
    const cpuPercent = ((cpuTicks(pid) - ticksBefore) / ticksPerSecond) / (elapsedMs / 1000) * 100
    runs.push({ rssBytes: median(rssSamples), cpuPercent })
    console.log(`run ${run + 1}: RSS ${(median(rssSamples) / 2 ** 20).toFixed(1)} MiB, CPU ${cpuPercent.toFixed(2)}% of one core over ${(elapsedMs / 1000).toFixed(0)} s`)
  } finally {
    for (const child of children) child.kill('SIGTERM')
    await sleep(1_000)
    await rm(dir, { recursive: true, force: true })
  }
}
const result = { runs: runCount, windowSeconds: windowMs / 1000, connectedPeers: PEERS, rssBytesMedian: median(runs.map((r) => r.rssBytes)), cpuPercentMedian: median(runs.map((r) => r.cpuPercent)) }
console.log(`idle daemon, ${PEERS} peers: RSS ${(result.rssBytesMedian / 2 ** 20).toFixed(1)} MiB, CPU ${result.cpuPercentMedian.toFixed(2)}% of one core (medians of ${runCount} runs; npm run bench:idle -- --runs ${runCount} --seconds ${windowMs / 1000})`)
console.log(`RESULT ${JSON.stringify(result)}`)
