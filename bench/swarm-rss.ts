/**
 * Memory of a large transfer: two daemons on loopback, one seeding a file of --gib GiB
 * (default 10; pseudo-random bytes streamed into `shoal add -`, so no source file is
 * written), the other fetching it through the HTTP API's fetch (blocks go to its store, not
 * to an output file). The figures, for the targets:
 *   - peak RSS of each daemon while it seeds or fetches (the kernel's VmHWM at the end, and
 *     the highest VmRSS sampled every 250 ms during the transfer; target ≤ 256 MB);
 *   - the longest gap between two progress events of the fetch (target ≤ 250 ms);
 *   - wall time and MB/s.
 *
 *   npm run bench:swarm-rss -- --gib 10
 *
 * Both daemons run with the same flags as `shoal` itself. Needs about 2 × the size in free
 * disk space under the system's temp folder; both repositories are removed at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { HttpClient } from '../src/api/http-client.ts'
import { SHOAL_BIN, SHOAL_NODE_FLAGS, startShoal, waitForLine } from '../src/testing/cli.ts'

const { values } = parseArgs({ options: { gib: { type: 'string', default: '10' } } })
const gib = Number(values.gib)
if (!(gib > 0)) throw new Error('--gib must be a positive number')
const totalBytes = Math.round(gib * 1024 ** 3)
const CHUNK_BYTES = 1024 * 1024

const dir = await mkdtemp(join(tmpdir(), 'shoal-rss-'))
const children: ChildProcess[] = []
try {
  const seed = await daemon(join(dir, 'seed'), [])
  const cid = await addPseudoRandom(join(dir, 'seed'), totalBytes)
  const leecher = await daemon(join(dir, 'leecher'), ['--bootstrap', seed.address])
  const api = new HttpClient((await readFile(join(dir, 'leecher', 'api'), 'utf8')).trim())
  const sampled = { seed: 0, leecher: 0 }
  const sampler = setInterval(() => {
    void Promise.all([rssOf(seed.process.pid!, 'VmRSS'), rssOf(leecher.process.pid!, 'VmRSS')]).then(([seedRss, leecherRss]) => {
      sampled.seed = Math.max(sampled.seed, seedRss)
      sampled.leecher = Math.max(sampled.leecher, leecherRss)
    })
  }, 250)
  let lastProgressMs = performance.now()
  let longestGapMs = 0
  let longestGapEndedAtMs = 0
  let progressCount = 0
  const startedMs = performance.now()
  const result = await api.fetch(cid, {
    pin: false,
    onProgress: () => {
      const nowMs = performance.now()
      if (nowMs - lastProgressMs > longestGapMs) {
        longestGapMs = nowMs - lastProgressMs
        longestGapEndedAtMs = nowMs - startedMs
      }
      lastProgressMs = nowMs
      progressCount++
    },
  })
  const seconds = (performance.now() - startedMs) / 1000
  clearInterval(sampler)
  const [seedPeak, leecherPeak] = await Promise.all([rssOf(seed.process.pid!, 'VmHWM'), rssOf(leecher.process.pid!, 'VmHWM')])
  const mb = (bytes: number) => (bytes / 1e6).toFixed(0)
  console.log(`npm run bench:swarm-rss -- --gib ${gib}   (load average ${(await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ')})`)
  console.log(`content ${cid}: ${result.leafCount} leaves, ${mb(totalBytes)} MB, fetched in ${seconds.toFixed(1)} s (${mb(totalBytes / seconds)} MB/s)`)
  console.log('| daemon | peak RSS (VmHWM) | highest RSS sampled | target |')
  console.log('|---|---|---|---|')
  console.log(`| seed | ${mb(seedPeak)} MB | ${mb(sampled.seed)} MB | ≤ 256 MB: ${seedPeak <= 256e6 ? 'met' : 'MISSED'} |`)
  console.log(`| leecher | ${mb(leecherPeak)} MB | ${mb(sampled.leecher)} MB | ≤ 256 MB: ${leecherPeak <= 256e6 ? 'met' : 'MISSED'} |`)
  console.log(`progress events: ${progressCount}, longest gap ${longestGapMs.toFixed(0)} ms, ending ${(longestGapEndedAtMs / 1000).toFixed(1)} s into the fetch (target ≤ 250 ms: ${longestGapMs <= 250 ? 'met' : 'MISSED'})`)
} finally {
  // SIGTERM first: a daemon stops cleanly (and writes a --cpu-prof profile, if asked for one).
  await Promise.all(children.map((child) => stop(child)))
  await rm(dir, { recursive: true, force: true })
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}

async function daemon(repo: string, extra: string[]): Promise<{ process: ChildProcess; address: string }> {
  const child = startShoal(['--repo', repo, 'daemon', '--init', '--api', '127.0.0.1:0', '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', ...extra])
  children.push(child)
  const [, peerId] = await waitForLine(child, /peer id: (\S+)/)
  const [, listening] = await waitForLine(child, /listening on (\/ip4\/127\.0\.0\.1\/tcp\/\d+)/)
  await waitForLine(child, /daemon ready/, 60_000)
  return { process: child, address: `${listening}/p2p/${peerId}` }
}

/** `shoal add -` fed `bytes` of a cheap pseudo-random stream (xorshift), through the seed's daemon. */
async function addPseudoRandom(repo: string, bytes: number): Promise<string> {
  const child = spawn(process.execPath, [...SHOAL_NODE_FLAGS, SHOAL_BIN, '--repo', repo, 'add', '-q', '-'], { stdio: ['pipe', 'pipe', 'inherit'] })
  children.push(child)
  const output: Buffer[] = []
  child.stdout!.on('data', (chunk: Buffer) => output.push(chunk))
  let state = 0x9e3779b9
  for (let written = 0; written < bytes; written += CHUNK_BYTES) {
    const chunk = new Uint32Array(Math.min(CHUNK_BYTES, bytes - written) / 4)
    for (let index = 0; index < chunk.length; index++) {
      state ^= state << 13
      state ^= state >>> 17
      state ^= state << 5
      chunk[index] = state >>> 0
    }
    if (!child.stdin!.write(new Uint8Array(chunk.buffer))) await new Promise((resolve) => child.stdin!.once('drain', resolve))
  }
  child.stdin!.end()
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  if (code !== 0) throw new Error(`shoal add exited with ${code}`)
  return Buffer.concat(output).toString('utf8').trim()
}

async function rssOf(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)
  return match === null ? 0 : Number(match[1]) * 1024
}
