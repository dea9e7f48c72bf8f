/**
 * `npm run reliability [-- --fuzz-inputs N --api-requests M --kills K --flood-seconds S
 * --soak-minutes T --seed S]` (defaults: the sizes issue 8 asks for: 1,000,000 inputs per
 * decoder and 20,000 API requests, 50 kills of `shoal add` and 50 of a download, 30-second
 * floods, a 30-minute soak of 10 daemons): runs the fuzzing, crash, flood and soak benchmarks,
 * each as a process of its own read back from its `RESULT` line, and the adversarial
 * simulation gates in this process; then prints one table of the figures, each row with the
 * command that reproduces it. Exits 1 if any row failed. Takes about 45 minutes at the defaults.
 */
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { percentile } from '../src/sim/metrics.ts'
import { ADVERSARIAL_GATES } from '../src/sim/scenarios/adversarial-gates.ts'
import { runChildProcess } from '../src/testing/child-process.ts'
import type { FloodReport, FloodVerdict } from '../src/testing/floods.ts'
import type { SoakResult } from '../src/testing/soak.ts'

const { values } = parseArgs({ options: {
  'fuzz-inputs': { type: 'string', default: '1000000' },
  'api-requests': { type: 'string', default: '20000' },
  kills: { type: 'string', default: '50' },
  'flood-seconds': { type: 'string', default: '30' },
  'soak-minutes': { type: 'string', default: '30' },
  seed: { type: 'string', default: '1' },
} })

interface Row {
  check: string
  figures: string
  passed: boolean
  command: string
}

const rows: Row[] = []
const HOUR_MS = 3_600_000

/** Runs dist/bench/<name>.js with `args` and returns its RESULT; a benchmark that ends without one is a failed row. */
async function benchmark<Result>(name: string, nodeFlags: readonly string[], args: readonly string[], timeoutMs: number): Promise<Result | Error> {
  const script = fileURLToPath(new URL(`./${name}.js`, import.meta.url))
  const startedMs = performance.now()
  console.log(`running npm run ${name === 'fuzz' || name === 'soak' ? name : `bench:${name}`} -- ${args.join(' ')} …`)
  try {
    return await runChildProcess<Result>(['--enable-source-maps', ...nodeFlags, script, ...args], name, timeoutMs, 'RESULT')
  } catch (error) {
    return error as Error
  } finally {
    console.log(`  done in ${((performance.now() - startedMs) / 60_000).toFixed(1)} min`)
  }
}

const failedRow = (check: string, command: string, error: Error): Row => ({ check, figures: `no result: ${error.message.split('\n')[0]}`, passed: false, command })

const fuzzArgs = ['--inputs', values['fuzz-inputs'], '--api-requests', values['api-requests'], '--seed', values.seed]
const fuzzCommand = `npm run fuzz -- ${fuzzArgs.join(' ')}`
const fuzzed = await benchmark<{ targets: Array<{ name: string; inputs: number; defects: number; heapGrowthMb: number }>; apiRequests: number; apiDefects: number; failed: boolean }>('fuzz', [], fuzzArgs, 4 * HOUR_MS)
if (fuzzed instanceof Error) rows.push(failedRow('fuzzing', fuzzCommand, fuzzed))
else {
  const inputs = fuzzed.targets.reduce((sum, target) => sum + target.inputs, 0)
  const defects = fuzzed.targets.reduce((sum, target) => sum + target.defects, 0) + fuzzed.apiDefects
  const growth = Math.max(...fuzzed.targets.map((target) => target.heapGrowthMb))
  rows.push({ check: 'fuzzing', passed: !fuzzed.failed, command: fuzzCommand,
    figures: `${inputs.toLocaleString('en')} inputs over ${fuzzed.targets.length} decoders and parsers + ${fuzzed.apiRequests.toLocaleString('en')} API requests; ${defects} defects; heap growth ≤ ${growth.toFixed(1)} MB` })
}

const crashArgs = ['--kills', values.kills, '--download-kills', values.kills, '--seed', values.seed]
const crashCommand = `npm run bench:crash -- ${crashArgs.join(' ')}`
const crashed = await benchmark<{ addKills: number; downloadKills: number; refetchedBytes: number; problems: number }>('crash', [], crashArgs, 2 * HOUR_MS)
if (crashed instanceof Error) rows.push(failedRow('crashes', crashCommand, crashed))
else rows.push({ check: 'crashes', passed: crashed.problems === 0, command: crashCommand,
  figures: `${crashed.addKills} SIGKILLs of shoal add + ${crashed.downloadKills} of a downloading daemon survived; ${crashed.problems} problems (unverifiable block, incomplete pin, repository not opening); ${crashed.refetchedBytes} bytes fetched twice` })

const floodArgs = ['--seconds', values['flood-seconds']]
const floodCommand = `npm run bench:flood -- ${floodArgs.join(' ')}`
const flooded = await benchmark<FloodReport & { verdict: FloodVerdict }>('flood', [], floodArgs, HOUR_MS)
if (flooded instanceof Error) rows.push(failedRow('floods', floodCommand, flooded))
else {
  const median = (values: readonly number[]): number => percentile(values, 0.5) ?? NaN
  const baseline = flooded.phases.find((phase) => phase.name === 'baseline')!
  for (const phase of flooded.phases.filter((candidate) => candidate.name !== 'baseline')) {
    const refused = Object.values(phase.counted).reduce((sum, count) => sum + count, 0)
    const attempts = phase.flooders.reduce((sum, flooder) => sum + flooder.attempts, 0)
    rows.push({ check: `flood: ${phase.name}`, command: floodCommand,
      passed: flooded.verdict.phaseProblems[phase.name]!.length === 0 && phase.rssPeakMb <= flooded.verdict.rssBoundMb,
      figures: `${attempts.toLocaleString('en')} attempts; ${refused.toLocaleString('en')} refusals counted; well-behaved fetches ${phase.fetchesMs.length}, median ${(median(phase.fetchesMs) / median(baseline.fetchesMs)).toFixed(2)} × baseline; ping p50 ${median(phase.ping.latenciesMs ?? [])} ms; newcomers in ${phase.newcomers.outcomes.answered ?? 0} of ${phase.newcomers.attempts}; RSS peak ${phase.rssPeakMb.toFixed(0)} MB (bound ${flooded.verdict.rssBoundMb})` })
  }
}

for (const gate of ADVERSARIAL_GATES) {
  const outcome = gate.run(BigInt(values.seed))
  rows.push({ check: `sim gate: ${gate.name}`, passed: outcome.passed, command: outcome.replay,
    figures: gate.thresholds.map((threshold) => `${threshold.figure} ${outcome.figures[threshold.figure]} (${threshold.comparison} ${threshold.bound})`).join('; ') })
}

const soakArgs = ['--minutes', values['soak-minutes']]
const soakCommand = `npm run soak -- ${soakArgs.join(' ')}`
const soaked = await benchmark<SoakResult>('soak', [], soakArgs, Number(values['soak-minutes']) * 60_000 + HOUR_MS)
if (soaked instanceof Error) rows.push(failedRow('soak', soakCommand, soaked))
else {
  const { rss, heap } = soaked.memory
  rows.push({ check: 'soak', passed: soaked.passed, command: soakCommand,
    figures: `${soaked.settings.daemons} daemons, ${soaked.memory.windowMinutes.toFixed(0)} min after warm-up: retained heap change median ${heap.changePercentMedian.toFixed(1)}%, worst ${heap.changePercentWorst.toFixed(1)}%; RSS median ${rss.changePercentMedian.toFixed(1)}%, worst ${rss.changePercentWorst.toFixed(1)}% (goal ±${soaked.settings.changePercentMax}%)${soaked.failures.length > 0 ? `; ${soaked.failures.join('; ')}` : ''}` })
}

console.log(`\nreliability report; node ${process.version}; seed ${values.seed}`)
console.log('check | passed | figures | reproduce with')
for (const row of rows) console.log([row.check, row.passed ? 'yes' : 'NO', row.figures, row.command].join(' | '))
console.log(`RESULT ${JSON.stringify(rows)}`)
process.exitCode = rows.every((row) => row.passed) ? 0 : 1
