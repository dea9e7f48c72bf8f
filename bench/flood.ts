/**
 * `npm run bench:flood [-- --seconds S --floods connections,streams,frames,http --connections-per-second R
 * --connection-sources N --streams-max M --http-concurrency C --file-mib F]` (defaults: 30 s per flood,
 * 1,000 connection attempts/s from 50 loopback addresses, 10,000 streams, 1,000 HTTP requests in
 * flight, a 32 MiB file): the floods of src/testing/floods.ts against one daemon, a phase each after
 * a quiet baseline, with what each flooder saw, what the daemon counted, the well-behaved peer's
 * fetches and ping round trips, and the daemon's peak RSS against RSS_BOUND_MB.
 * Exits 1 if the daemon died, a fetch failed, a block is corrupt or RSS passed the bound.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { percentile } from '../src/sim/metrics.ts'
import { FLOODS, floodVerdict, runFloods, type FloodName, type FloodReport } from '../src/testing/floods.ts'
import { cleanupScope } from '../src/testing/temp.ts'

const { values } = parseArgs({ options: {
  seconds: { type: 'string', default: '30' },
  floods: { type: 'string', default: FLOODS.join(',') },
  'connections-per-second': { type: 'string', default: '1000' },
  'connection-sources': { type: 'string', default: '50' },
  'streams-max': { type: 'string', default: '10000' },
  'http-concurrency': { type: 'string', default: '1000' },
  'file-mib': { type: 'string', default: '32' },
} })
const floods = values.floods.split(',') as FloodName[]
for (const flood of floods) if (!FLOODS.includes(flood)) throw new Error(`--floods: unknown flood ${flood} (known: ${FLOODS.join(', ')})`)

const directory = await mkdtemp(join(tmpdir(), 'shoal-flood-'))
const context = cleanupScope()
let report: FloodReport
try {
  report = await runFloods(context, directory, {
    seconds: Number(values.seconds),
    floods,
    connectionsPerSecond: Number(values['connections-per-second']),
    connectionSources: Number(values['connection-sources']),
    streamsMax: Number(values['streams-max']),
    httpConcurrency: Number(values['http-concurrency']),
    fileMib: Number(values['file-mib']),
  })
} finally {
  await context.close()
  await rm(directory, { recursive: true, force: true })
}

const quantile = (values: readonly number[], q: number): string => percentile(values, q)?.toFixed(1) ?? '–'
console.log(`floods against one daemon, ${values.seconds} s each; node ${process.version}; target RSS at start ${report.rssStartMb.toFixed(0)} MB`)
console.log('phase | flooder attempts | well-behaved fetches (ms, median / max) | ping ms p50 / p99 (failed) | newcomers in (dial + ping ms, p50 / p99) | target RSS peak MB | alive')
for (const phase of report.phases) {
  const attempts = phase.flooders.map((flooder) => `${flooder.attempts} in ${flooder.seconds.toFixed(1)} s`).join(', ') || '–'
  const pingFailed = phase.ping.attempts - (phase.ping.outcomes.answered ?? 0)
  const newcomersIn = phase.newcomers.outcomes.answered ?? 0
  console.log([phase.name, attempts, `${phase.fetchesMs.length} (${quantile(phase.fetchesMs, 0.5)} / ${quantile(phase.fetchesMs, 1)})${phase.fetchFailures.length > 0 ? ` FAILED: ${phase.fetchFailures.join('; ')}` : ''}`,
    `${quantile(phase.ping.latenciesMs ?? [], 0.5)} / ${quantile(phase.ping.latenciesMs ?? [], 0.99)} (${pingFailed})`,
    `${newcomersIn} of ${phase.newcomers.attempts} (${quantile(phase.newcomers.latenciesMs ?? [], 0.5)} / ${quantile(phase.newcomers.latenciesMs ?? [], 0.99)})`, phase.rssPeakMb.toFixed(0), phase.targetAlive].join(' | '))
  if (newcomersIn < phase.newcomers.attempts) console.log(`    newcomers saw: ${JSON.stringify(phase.newcomers.outcomes)}`)
  for (const flooder of phase.flooders) console.log(`    ${flooder.kind} flooder saw: ${JSON.stringify(flooder.outcomes)}`)
  console.log(`    the target counted: ${JSON.stringify(phase.counted)}`)
}
console.log(`target repo verify: ${report.targetVerify.blockCount} blocks, ${report.targetVerify.corrupt} corrupt`)
const verdict = floodVerdict(report)
console.log(verdict.problems.length === 0 ? `held: every phase, RSS peak ${verdict.rssPeakMb.toFixed(0)} MB under the ${verdict.rssBoundMb} MB bound` : `NOT HELD: ${verdict.problems.join('; ')}`)
console.log(`RESULT ${JSON.stringify({ ...report, verdict })}`)
process.exitCode = verdict.problems.length === 0 ? 0 : 1
