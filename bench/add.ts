/**
 * Benchmark of `shoal add` and `shoal cat` on one large file of pseudo-random bytes
 * (1 GiB by default), measured against `sha256sum` of the same file as a ceiling: add has
 * to read and hash every byte too, so sha256sum's throughput is what add could reach if
 * chunking, DAG building and block writes cost nothing.
 *
 * Everything runs as child processes, exactly as a user runs the CLI (process start-up,
 * repository open and final flush included), on the real disk under os.tmpdir(): /dev/shm
 * would hide the cost of the block store's fsyncs, which is part of what is measured.
 * Peak RSS comes from GNU time (`/usr/bin/time -f %M`) when it is installed, otherwise from
 * polling VmHWM in /proc/<pid>/status. The source file stays in the page cache (it was
 * just written), so sha256sum, add and cat all read it from memory alike.
 *
 *   npm run bench:add -- --size-mib 1024 --runs 3
 *
 * `openssl dgst -sha256` is timed too when openssl is installed, as a second reference:
 * coreutils' sha256sum may not use the CPU's SHA instructions while OpenSSL (and so Node's
 * crypto, which add uses) does, in which case sha256sum is a low ceiling.
 *
 * Options: --size-mib N (default 1024), --runs N (default 3), --proc-status (poll /proc for
 * peak RSS even when GNU time is there), --cpu-prof-dir DIR (run the shoal children under
 * --cpu-prof, writing their profiles to DIR; this slows them down, so the figures are then
 * not comparable). The last line of output is `RESULT {json}` with every figure.
 */
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process'
import { createHash, randomFillSync } from 'node:crypto'
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs'
import { mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const MIB_BYTES = 1024 * 1024
const GENERATOR_CHUNK_BYTES = MIB_BYTES
const GNU_TIME_PATH = '/usr/bin/time'
/** VmHWM is a high-water mark, so a coarse poll only risks missing growth in the last interval before exit. */
const PROC_POLL_INTERVAL_MS = 20
const STDERR_TAIL_BYTES = 16 * 1024
/** Generous per-child bound (about 1.7 MB/s): it only exists so a hung child cannot hang the benchmark. */
const CHILD_TIMEOUT_BASE_MS = 60_000
const CHILD_TIMEOUT_PER_MIB_MS = 600
const SHOAL_SCRIPT_PATH = fileURLToPath(new URL('../src/cli/shoal.js', import.meta.url))

type PeakRssSource = 'gnu-time' | 'proc-status' | 'none'

interface Settings {
  sizeMib: number
  runs: number
  forceProcStatus: boolean
  cpuProfileFolder: string | undefined
}

type StdoutTarget =
  | { kind: 'text' }
  | { kind: 'file-descriptor'; fileDescriptor: number }
  | { kind: 'stream'; onChunk(chunk: Buffer): void }

interface ChildRequest {
  label: string
  command: string
  arguments: string[]
  stdout: StdoutTarget
  peakRssSource: PeakRssSource
  timeoutMs: number
}

interface ChildOutcome {
  elapsedSeconds: number
  peakRssBytes: number | null
  /** User plus system CPU time; only GNU time reports it. */
  cpuSeconds: number | null
  stdoutText: string
}

interface RunFigures {
  sha256sum: ChildOutcome
  opensslSha256: ChildOutcome | undefined
  add: ChildOutcome
  cat: ChildOutcome
}

interface StepSummary {
  medianThroughputMbPerSecond: number
  medianSeconds: number
  maximumPeakRssBytes: number | null
  medianCpuSeconds: number | null
  throughputsMbPerSecond: number[]
  secondsPerRun: number[]
}

/** Aborted on Ctrl-C, SIGTERM or the overall deadline: every child is killed and the temp folder removed. */
const stop = new AbortController()
const liveChildren = new Set<ChildProcess>()
let childReportCount = 0
let signalCount = 0

function parseSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      'size-mib': { type: 'string', default: '1024' },
      runs: { type: 'string', default: '3' },
      'proc-status': { type: 'boolean', default: false },
      'cpu-prof-dir': { type: 'string' },
    },
    strict: true,
  })
  const sizeMib = positiveInteger(values['size-mib'], '--size-mib')
  const runs = positiveInteger(values.runs, '--runs')
  const cpuProfileFolder = values['cpu-prof-dir'] === undefined ? undefined : resolve(values['cpu-prof-dir'])
  return { sizeMib, runs, forceProcStatus: values['proc-status'], cpuProfileFolder }
}

function positiveInteger(text: string, name: string): number {
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, not '${text}'`)
  return value
}

/** Writes the file through one reused buffer, so generating 1 GiB costs 1 MiB of memory. */
async function writePseudoRandomFile(path: string, sizeBytes: number): Promise<void> {
  const buffer = Buffer.allocUnsafe(GENERATOR_CHUNK_BYTES)
  const handle = await open(path, 'wx')
  try {
    for (let writtenBytes = 0; writtenBytes < sizeBytes;) {
      stop.signal.throwIfAborted()
      const chunkBytes = Math.min(GENERATOR_CHUNK_BYTES, sizeBytes - writtenBytes)
      randomFillSync(buffer, 0, chunkBytes)
      await handle.write(buffer, 0, chunkBytes)
      writtenBytes += chunkBytes
    }
    // Otherwise writeback of the fresh file would compete for the disk with the first timed runs.
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** GNU time is usable only if it runs and writes a number where we ask it to (BusyBox's lacks -o). */
function detectGnuTime(workFolder: string): boolean {
  const reportPath = join(workFolder, 'gnu-time-probe.txt')
  const probe = spawnSync(GNU_TIME_PATH, ['-f', '%M', '-o', reportPath, 'true'], { stdio: 'ignore', timeout: 10_000 })
  if (probe.error !== undefined || probe.status !== 0) return false
  try {
    return Number.isFinite(parseGnuTimeReport(readFileSync(reportPath, 'utf8')).peakRssKib)
  } catch {
    return false
  } finally {
    rmSync(reportPath, { force: true })
  }
}

function detectOpenssl(): boolean {
  const probe = spawnSync('openssl', ['version'], { stdio: 'ignore', timeout: 10_000 })
  return probe.error === undefined && probe.status === 0
}

/** The format is '%M %U %S'; GNU time puts a "Command exited with non-zero status" line first when that happens. */
function parseGnuTimeReport(text: string): { peakRssKib: number; cpuSeconds: number | null } {
  const lastLine = text.trim().split('\n').at(-1) ?? ''
  const [peakRssText, userText, systemText] = lastLine.trim().split(/\s+/)
  const peakRssKib = Number(peakRssText)
  if (!Number.isFinite(peakRssKib)) throw new Error(`unexpected GNU time report: ${JSON.stringify(text)}`)
  const cpuSeconds = userText === undefined || systemText === undefined ? null : Number(userText) + Number(systemText)
  return { peakRssKib, cpuSeconds: cpuSeconds !== null && Number.isFinite(cpuSeconds) ? cpuSeconds : null }
}

function readVmHighWaterMarkBytes(pid: number): number | null {
  try {
    const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match?.[1] === undefined ? null : Number(match[1]) * 1024
  } catch {
    // Gone between polls, or a zombie without memory lines: the previous read stands.
    return null
  }
}

/** Kills the child's whole process group: under GNU time, killing only `time` would orphan the node process. */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(-child.pid, 'SIGKILL')
  } catch {
    // Already exited.
  }
}

async function runChild(request: ChildRequest, workFolder: string): Promise<ChildOutcome> {
  stop.signal.throwIfAborted()
  childReportCount += 1
  const reportPath = join(workFolder, `gnu-time-${childReportCount}.txt`)
  const [file, argv] = request.peakRssSource === 'gnu-time'
    ? [GNU_TIME_PATH, ['-f', '%M %U %S', '-o', reportPath, request.command, ...request.arguments]]
    : [request.command, request.arguments]
  const stdoutOption = request.stdout.kind === 'file-descriptor' ? request.stdout.fileDescriptor : 'pipe'
  const stdio: StdioOptions = ['ignore', stdoutOption, 'pipe']

  const startedMs = performance.now()
  const child = spawn(file, argv, { stdio, detached: true })
  liveChildren.add(child)
  const stdoutChunks: Buffer[] = []
  const stdoutTarget = request.stdout
  if (stdoutTarget.kind === 'stream') child.stdout?.on('data', (chunk: Buffer) => stdoutTarget.onChunk(chunk))
  else if (stdoutTarget.kind === 'text') child.stdout?.on('data', (chunk: Buffer) => stdoutChunks.push(chunk))
  let stderrTail = ''
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderrTail = (stderrTail + text).slice(-STDERR_TAIL_BYTES)
  })

  let polledPeakRssBytes: number | null = null
  const poller = request.peakRssSource === 'proc-status' && child.pid !== undefined
    ? setInterval((pid: number) => {
      const bytes = readVmHighWaterMarkBytes(pid)
      if (bytes !== null) polledPeakRssBytes = Math.max(polledPeakRssBytes ?? 0, bytes)
    }, PROC_POLL_INTERVAL_MS, child.pid)
    : undefined
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    killGroup(child)
  }, request.timeoutMs)
  const onStop = () => killGroup(child)
  stop.signal.addEventListener('abort', onStop)

  let elapsedSeconds = Number.NaN
  try {
    // 'exit' marks the end of the timed work; 'close' comes once its output is fully read.
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolvePromise, rejectPromise) => {
      child.once('error', rejectPromise)
      child.once('exit', () => {
        elapsedSeconds = (performance.now() - startedMs) / 1000
      })
      child.once('close', (code, signal) => resolvePromise({ code, signal }))
    })
    if (timedOut) throw new Error(`${request.label} timed out after ${request.timeoutMs / 1000} s`)
    stop.signal.throwIfAborted()
    if (code !== 0) {
      throw new Error(`${request.label} failed (${signal ?? `exit status ${code}`}): ${stderrTail.trim() || 'no error output'}`)
    }
  } finally {
    clearTimeout(timer)
    if (poller !== undefined) clearInterval(poller)
    stop.signal.removeEventListener('abort', onStop)
    liveChildren.delete(child)
  }

  let peakRssBytes: number | null = polledPeakRssBytes
  let cpuSeconds: number | null = null
  if (request.peakRssSource === 'gnu-time') {
    const report = parseGnuTimeReport(await readFile(reportPath, 'utf8'))
    await rm(reportPath, { force: true })
    peakRssBytes = report.peakRssKib * 1024
    cpuSeconds = report.cpuSeconds
  }
  return { elapsedSeconds, peakRssBytes, cpuSeconds, stdoutText: Buffer.concat(stdoutChunks).toString('utf8') }
}

function median(values: number[]): number {
  const sorted = [...values].sort((left, right) => left - right)
  const middle = Math.floor(sorted.length / 2)
  const upper = sorted[middle] ?? Number.NaN
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] ?? Number.NaN) + upper) / 2
}

function summarise(outcomes: ChildOutcome[], sizeBytes: number): StepSummary {
  const secondsPerRun = outcomes.map((outcome) => outcome.elapsedSeconds)
  const throughputsMbPerSecond = secondsPerRun.map((seconds) => sizeBytes / 1e6 / seconds)
  const peakRssValues = outcomes.flatMap((outcome) => (outcome.peakRssBytes === null ? [] : [outcome.peakRssBytes]))
  const cpuValues = outcomes.flatMap((outcome) => (outcome.cpuSeconds === null ? [] : [outcome.cpuSeconds]))
  return {
    medianThroughputMbPerSecond: median(throughputsMbPerSecond),
    medianSeconds: median(secondsPerRun),
    maximumPeakRssBytes: peakRssValues.length === 0 ? null : Math.max(...peakRssValues),
    medianCpuSeconds: cpuValues.length === 0 ? null : median(cpuValues),
    throughputsMbPerSecond,
    secondsPerRun,
  }
}

function formatTable(rows: string[][]): string {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? []
  return rows
    .map((row) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join('  '))
    .join('\n')
}

function progress(line: string): void {
  process.stderr.write(`${line}\n`)
}

async function benchmark(settings: Settings, workFolder: string): Promise<void> {
  const sizeBytes = settings.sizeMib * MIB_BYTES
  const timeoutMs = CHILD_TIMEOUT_BASE_MS + settings.sizeMib * CHILD_TIMEOUT_PER_MIB_MS
  const peakRssSource: PeakRssSource = !settings.forceProcStatus && detectGnuTime(workFolder) ? 'gnu-time' : 'proc-status'
  const hasOpenssl = detectOpenssl()
  const shoalNodeFlags = settings.cpuProfileFolder === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${settings.cpuProfileFolder}`]
  if (settings.cpuProfileFolder !== undefined) await mkdir(settings.cpuProfileFolder, { recursive: true })
  const shoal = (repoPath: string, ...commandArguments: string[]) => [...shoalNodeFlags, SHOAL_SCRIPT_PATH, '--repo', repoPath, ...commandArguments]

  const sourcePath = join(workFolder, 'source.bin')
  progress(`writing ${sizeBytes} pseudo-random bytes to ${sourcePath}`)
  const generationStartedMs = performance.now()
  await writePseudoRandomFile(sourcePath, sizeBytes)
  progress(`  written in ${((performance.now() - generationStartedMs) / 1000).toFixed(2)} s`)

  const devNull = openSync('/dev/null', 'w')
  const runFigures: RunFigures[] = []
  let expectedCid: string | undefined
  let expectedSha256: string | undefined
  try {
    for (let run = 1; run <= settings.runs; run++) {
      // Interleaving the three steps in each run spreads any drift (thermal, other load) over all of them alike.
      const sha256sum = await runChild({
        label: 'sha256sum', command: 'sha256sum', arguments: [sourcePath], stdout: { kind: 'text' }, peakRssSource, timeoutMs,
      }, workFolder)
      const sha256 = sha256sum.stdoutText.split(/\s/)[0] ?? ''
      if (expectedSha256 !== undefined && sha256 !== expectedSha256) throw new Error(`sha256sum changed between runs: ${expectedSha256} then ${sha256}`)
      expectedSha256 = sha256
      const opensslSha256 = hasOpenssl
        ? await runChild({
          label: 'openssl dgst -sha256', command: 'openssl', arguments: ['dgst', '-sha256', sourcePath], stdout: { kind: 'text' }, peakRssSource, timeoutMs,
        }, workFolder)
        : undefined
      // Output is "SHA2-256(path)= hex" (OpenSSL 3) or "SHA256(path)= hex" (1.1).
      const opensslHex = opensslSha256?.stdoutText.trim().split('= ').at(-1)
      if (opensslSha256 !== undefined && opensslHex !== expectedSha256) throw new Error(`openssl and sha256sum disagree: ${opensslHex} and ${expectedSha256}`)

      const repoPath = join(workFolder, `repo-${run}`)
      await runChild({
        label: 'shoal init', command: process.execPath, arguments: shoal(repoPath, 'init'), stdout: { kind: 'text' }, peakRssSource: 'none', timeoutMs,
      }, workFolder)
      const add = await runChild({
        label: 'shoal add', command: process.execPath, arguments: shoal(repoPath, 'add', '-q', sourcePath), stdout: { kind: 'text' }, peakRssSource, timeoutMs,
      }, workFolder)
      const cid = add.stdoutText.trim()
      if (!/^\w+$/.test(cid)) throw new Error(`shoal add printed ${JSON.stringify(add.stdoutText)}, not one CID`)
      if (expectedCid !== undefined && cid !== expectedCid) throw new Error(`shoal add gave ${expectedCid}, then ${cid} for the same file`)
      expectedCid = cid

      const cat = await runChild({
        label: 'shoal cat', command: process.execPath, arguments: shoal(repoPath, 'cat', cid), stdout: { kind: 'file-descriptor', fileDescriptor: devNull }, peakRssSource, timeoutMs,
      }, workFolder)

      if (run === 1) {
        // Untimed: hashing in this process would slow the reader and skew cat's figures.
        const hash = createHash('sha256')
        let catBytes = 0
        await runChild({
          label: 'shoal cat (verification)',
          command: process.execPath,
          arguments: shoal(repoPath, 'cat', cid),
          stdout: { kind: 'stream', onChunk: (chunk) => { hash.update(chunk); catBytes += chunk.byteLength } },
          peakRssSource: 'none',
          timeoutMs,
        }, workFolder)
        const catSha256 = hash.digest('hex')
        if (catBytes !== sizeBytes || catSha256 !== expectedSha256) {
          throw new Error(`shoal cat ${cid} returned ${catBytes} bytes hashing to ${catSha256}; the source is ${sizeBytes} bytes hashing to ${expectedSha256}`)
        }
        progress(`  verified: shoal cat output matches the source (sha256 ${catSha256})`)
      }
      // Each run starts from an empty repository; removing this one also keeps disk use to one copy.
      await rm(repoPath, { recursive: true, force: true })

      runFigures.push({ sha256sum, opensslSha256, add, cat })
      const opensslNote = opensslSha256 === undefined ? '' : `, openssl ${opensslSha256.elapsedSeconds.toFixed(2)} s`
      progress(`run ${run}/${settings.runs}: sha256sum ${sha256sum.elapsedSeconds.toFixed(2)} s${opensslNote}, add ${add.elapsedSeconds.toFixed(2)} s, cat ${cat.elapsedSeconds.toFixed(2)} s`)
    }
  } finally {
    closeSync(devNull)
  }

  const opensslOutcomes = runFigures.flatMap((figures) => (figures.opensslSha256 === undefined ? [] : [figures.opensslSha256]))
  const summaries = {
    sha256sum: summarise(runFigures.map((figures) => figures.sha256sum), sizeBytes),
    opensslSha256: opensslOutcomes.length === 0 ? undefined : summarise(opensslOutcomes, sizeBytes),
    add: summarise(runFigures.map((figures) => figures.add), sizeBytes),
    cat: summarise(runFigures.map((figures) => figures.cat), sizeBytes),
  }
  const ceilingMbPerSecond = summaries.sha256sum.medianThroughputMbPerSecond
  const ratio = (summary: StepSummary) => summary.medianThroughputMbPerSecond / ceilingMbPerSecond
  const megabytes = (bytes: number | null) => (bytes === null ? 'n/a' : (bytes / 1e6).toFixed(1))
  const seconds = (value: number | null) => (value === null ? 'n/a' : value.toFixed(2))
  const reproduce = `npm run bench:add -- --size-mib ${settings.sizeMib} --runs ${settings.runs}`

  const header = ['step', 'median MB/s', 'median s', 'median CPU s', 'peak RSS MB', 'x sha256sum']
  const row = (name: string, summary: StepSummary) => [
    name,
    summary.medianThroughputMbPerSecond.toFixed(1),
    seconds(summary.medianSeconds),
    seconds(summary.medianCpuSeconds),
    megabytes(summary.maximumPeakRssBytes),
    ratio(summary).toFixed(2),
  ]
  console.log(`shoal add/cat of ${sizeBytes} bytes (${settings.sizeMib} MiB), ${settings.runs} run(s), node ${process.version}, peak RSS from ${peakRssSource === 'gnu-time' ? 'GNU time' : '/proc VmHWM polling'}${settings.cpuProfileFolder === undefined ? '' : ', CPU profiling on (figures not comparable)'}`)
  const opensslRows = summaries.opensslSha256 === undefined ? [] : [row('openssl sha256', summaries.opensslSha256)]
  console.log(formatTable([header, row('sha256sum', summaries.sha256sum), ...opensslRows, row('shoal add', summaries.add), row('shoal cat', summaries.cat)]))
  console.log('MB = 1e6 bytes; CPU s = user + system time of the child; peak RSS is the maximum over runs; x sha256sum compares median throughputs')
  if (summaries.opensslSha256 !== undefined) {
    const opensslMbPerSecond = summaries.opensslSha256.medianThroughputMbPerSecond
    console.log(`against openssl sha256 instead: add ${(summaries.add.medianThroughputMbPerSecond / opensslMbPerSecond).toFixed(2)}x, cat ${(summaries.cat.medianThroughputMbPerSecond / opensslMbPerSecond).toFixed(2)}x`)
  }
  console.log(`reproduce: ${reproduce}`)
  console.log(`RESULT ${JSON.stringify({
    sizeBytes,
    runs: settings.runs,
    nodeVersion: process.version,
    peakRssSource,
    cid: expectedCid,
    sha256: expectedSha256,
    addToSha256sumThroughputRatio: ratio(summaries.add),
    catToSha256sumThroughputRatio: ratio(summaries.cat),
    addToOpensslSha256ThroughputRatio: summaries.opensslSha256 === undefined ? null : summaries.add.medianThroughputMbPerSecond / summaries.opensslSha256.medianThroughputMbPerSecond,
    catToOpensslSha256ThroughputRatio: summaries.opensslSha256 === undefined ? null : summaries.cat.medianThroughputMbPerSecond / summaries.opensslSha256.medianThroughputMbPerSecond,
    steps: summaries,
    reproduce,
  })}`)
}

async function main(): Promise<void> {
  const settings = parseSettings(process.argv.slice(2))
  const sizeMib = settings.sizeMib
  const workFolder = await mkdtemp(join(tmpdir(), 'shoal-bench-add-'))
  // A bound on the whole benchmark, above the sum of the per-child bounds, so nothing can run forever.
  const overallTimeoutMs = 10 * 60_000 + settings.runs * 4 * (CHILD_TIMEOUT_BASE_MS + sizeMib * CHILD_TIMEOUT_PER_MIB_MS)
  const deadline = setTimeout(() => stop.abort(new Error(`benchmark exceeded its ${overallTimeoutMs / 1000} s bound`)), overallTimeoutMs)
  deadline.unref()
  for (const name of ['SIGINT', 'SIGTERM'] as const) {
    process.on(name, () => {
      signalCount += 1
      if (signalCount === 1) {
        stop.abort(new Error(`interrupted by ${name}`))
        return
      }
      // A second signal means "now": skip the orderly path but still leave nothing behind.
      for (const child of liveChildren) killGroup(child)
      rmSync(workFolder, { recursive: true, force: true })
      process.exit(130)
    })
  }

  try {
    await benchmark(settings, workFolder)
  } finally {
    for (const child of liveChildren) killGroup(child)
    clearTimeout(deadline)
    await rm(workFolder, { recursive: true, force: true })
  }
}

try {
  await main()
} catch (error) {
  const reason = stop.signal.aborted ? stop.signal.reason : error
  console.error(`bench:add failed: ${reason instanceof Error ? reason.message : String(reason)}`)
  process.exitCode = signalCount > 0 ? 130 : 1
}
